"""Geometric image transforms: crops, resizes, flips, rotations, translations, scaling and
shear, all :class:`~invlab.transforms.base.AffineTransform` s (fused and resampled once in a
``Compose``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from invlab.transforms.base import (
    AffineTransform,
    Params,
    ParamSpec,
    _check_probability,
    _check_range,
    _uniform,
)
from invlab.transforms.image.kernels import (
    _about_centre,
    _eye,
    _flip_params,
    _per_sample,
    _real,
    _rotation,
)

__all__ = ["RandomResizedCrop", "Resize", "HorizontalFlip", "VerticalFlip", "Rotate90", "Rotate", "Translate", "Scale", "Shear"]


class RandomResizedCrop(AffineTransform):
    """Crop a box of random area fraction ``scale`` and aspect ratio ``ratio`` and resize
    it to ``size`` (torchvision's RandomResizedCrop, with continuous boxes).

    Parameter ``box (n, 4)``: ``(x0, y0, x1, y1)`` as fractions of the input size.
    """

    name = "crop"
    preserves_canvas = True

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        aspect: float = 1.0,
    ):
        if size is not None:
            size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"crop size must be a positive int or (height, width), got {size}")
        self.size = size
        self.scale = _check_range("scale", scale, 0.0, 1.0)
        if self.scale[1] <= 0:
            raise ValueError("scale must allow a positive area")
        self.ratio = _check_range("ratio", ratio, 1e-6)
        self.aspect = float(aspect)  # input height / width when sample() is not told the size

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"box": ParamSpec("continuous", 0.0, 1.0, shape=(4,))}

    def _sample(self, n: int, generator, size=None) -> Params:
        aspect = size[0] / size[1] if size is not None else self.aspect
        attempts = 10
        area = _uniform(n * attempts, *self.scale, generator).view(n, attempts)
        log_r = _uniform(n * attempts, math.log(self.ratio[0]), math.log(self.ratio[1]), generator)
        r = torch.exp(log_r).view(n, attempts)
        w = torch.sqrt(area * r * aspect)
        h = torch.sqrt(area / r / aspect)
        ok = (w <= 1) & (h <= 1) & (w > 0) & (h > 0)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
        # fallback (as torchvision): the largest centred box with a clamped aspect ratio
        in_ratio = 1.0 / aspect
        if in_ratio < self.ratio[0]:
            fw, fh = 1.0, in_ratio / self.ratio[0]
        elif in_ratio > self.ratio[1]:
            fw, fh = self.ratio[1] / in_ratio, 1.0
        else:
            fw, fh = 1.0, 1.0
        idx = first.clamp_min(0).view(n, 1)
        bw = torch.where(first >= 0, w.gather(1, idx).squeeze(1), torch.full((n,), fw))
        bh = torch.where(first >= 0, h.gather(1, idx).squeeze(1), torch.full((n,), fh))
        u = torch.rand(n, 2, generator=generator)
        x0 = torch.where(first >= 0, u[:, 0] * (1 - bw), torch.full((n,), (1 - fw) / 2))
        y0 = torch.where(first >= 0, u[:, 1] * (1 - bh), torch.full((n,), (1 - fh) / 2))
        return {"box": torch.stack([x0, y0, x0 + bw, y0 + bh], 1)}

    def identity_params(self, n: int, device=None) -> Params:
        return {"box": torch.tensor([0.0, 0.0, 1.0, 1.0], device=device).repeat(n, 1)}

    def output_size(self, size):
        return self.size if self.size is not None else size

    def matrix(self, params: Params, size: tuple[int, int]) -> Tensor:
        h, w = size
        oh, ow = self.output_size(size)
        box = _real(params["box"])
        x0, y0 = box[:, 0] * w, box[:, 1] * h
        bw = (box[:, 2] - box[:, 0]).clamp_min(1e-6) * w
        bh = (box[:, 3] - box[:, 1]).clamp_min(1e-6) * h
        m = _eye(box.shape[0], box.device, box.dtype)
        sx, sy = ow / bw, oh / bh
        m = torch.stack(
            [
                torch.stack([sx, torch.zeros_like(sx), -x0 * sx], -1),
                torch.stack([torch.zeros_like(sy), sy, -y0 * sy], -1),
                m[:, 2, :],
            ],
            -2,
        )
        return m

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class Resize(AffineTransform):
    """Deterministic bilinear resize to ``size``; no parameters."""

    name = "resize"
    preserves_canvas = True

    def __init__(self, size: int | Sequence[int]):
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)

    def output_size(self, size):
        return self.size

    def matrix(self, params, size):
        m = _eye(1, None)
        m[:, 0, 0], m[:, 1, 1] = self.size[1] / size[1], self.size[0] / size[0]
        return m

    def __repr__(self):
        return f"Resize(size={self.size})"


class HorizontalFlip(AffineTransform):
    """Mirror left-right with probability ``p``. Parameter ``flip`` (bool)."""

    name = "hflip"
    _axis = 0
    preserves_canvas = True

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p)

    def param_specs(self):
        return {"flip": ParamSpec("binary")}

    def _sample(self, n, generator, size=None):
        return _flip_params(n, self.p, generator)

    def identity_params(self, n, device=None):
        return {"flip": torch.zeros(n, dtype=torch.bool, device=device)}

    def apply_exact(self, x: Tensor, params: Params) -> Tensor:
        flip = _per_sample(params["flip"], x).bool()
        return torch.where(flip, x.flip(-1 if self._axis == 0 else -2), x)

    def matrix(self, params, size):
        flip = params["flip"]
        n = flip.shape[0]
        m = _eye(n, flip.device)
        extent = size[1] if self._axis == 0 else size[0]
        sign = 1.0 - 2.0 * flip.float()
        m[:, self._axis, self._axis] = sign
        m[:, self._axis, 2] = flip.float() * extent
        return m

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class VerticalFlip(HorizontalFlip):
    """Mirror top-bottom with probability ``p``. Parameter ``flip`` (bool)."""

    name = "vflip"
    _axis = 1


class Rotate90(AffineTransform):
    """Rotate by ``k * 90`` degrees counter-clockwise, ``k`` uniform over ``ks``.

    Matches ``torch.rot90(x, k, dims=(-2, -1))`` exactly on square images. Parameter ``k``
    (int64, the multiple of 90 degrees, 0..3).
    """

    name = "rot90"
    preserves_canvas = True

    def __init__(self, ks: Sequence[int] = (0, 1, 2, 3)):
        ks = sorted({int(k) % 4 for k in ks})
        if not ks:
            raise ValueError("rot90 needs at least one multiple of 90 degrees in ks")
        self.ks = ks

    def param_specs(self):
        return {"k": ParamSpec("discrete", num_classes=4)}

    def _sample(self, n, generator, size=None):
        choice = torch.randint(len(self.ks), (n,), generator=generator)
        return {"k": torch.tensor(self.ks)[choice]}

    def identity_params(self, n, device=None):
        return {"k": torch.zeros(n, dtype=torch.long, device=device)}

    def matrix(self, params, size):
        if size[0] != size[1]:
            raise ValueError(f"rot90 needs square images, got {size[0]}x{size[1]}")
        return _about_centre(_rotation(params["k"].float() * 90.0), size)

    def apply_exact(self, x: Tensor, params: Params) -> Tensor:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"rot90 needs square images, got {x.shape[-2]}x{x.shape[-1]}")
        k = params["k"].to(x.device) % 4
        out = x
        for j in (1, 2, 3):
            idx = (k == j).nonzero().flatten()
            if idx.numel():
                out = out.index_copy(0, idx, torch.rot90(x.index_select(0, idx), j, dims=(-2, -1)))
        return out

    def __repr__(self):
        return f"Rotate90(ks={self.ks})"


class Rotate(AffineTransform):
    """Rotate by an angle drawn uniformly from ``degrees`` (counter-clockwise positive).

    Parameter ``angle`` (degrees). Corners are filled with zeros (``padding_mode``).
    """

    name = "rotate"

    def __init__(self, degrees: Sequence[float] | float = (-180.0, 180.0), padding_mode: str = "zeros"):
        if isinstance(degrees, (int, float)):
            degrees = (-float(degrees), float(degrees))
        self.degrees = _check_range("degrees", degrees)
        self.padding_mode = padding_mode

    def param_specs(self):
        return {"angle": ParamSpec("angle", *self.degrees, period=360.0)}

    def _sample(self, n, generator, size=None):
        return {"angle": _uniform(n, *self.degrees, generator)}

    def identity_params(self, n, device=None):
        return {"angle": torch.zeros(n, device=device)}

    def matrix(self, params, size):
        return _about_centre(_rotation(params["angle"]), size)

    def __repr__(self):
        return f"Rotate(degrees={self.degrees})"


class Translate(AffineTransform):
    """Shift by fractions of the image size drawn from ``[-max_x, max_x] x [-max_y, max_y]``.

    Parameter ``shift (n, 2)``: ``(dx, dy)`` as fractions of width and height.
    """

    name = "translate"

    def __init__(self, max_fraction: Sequence[float] | float = (0.1, 0.1), padding_mode: str = "zeros"):
        if isinstance(max_fraction, (int, float)):
            max_fraction = (float(max_fraction), float(max_fraction))
        self.max_fraction = tuple(float(v) for v in max_fraction)
        if len(self.max_fraction) != 2 or min(self.max_fraction) < 0:
            raise ValueError(f"max_fraction must be two non-negative numbers, got {max_fraction}")
        self.padding_mode = padding_mode

    def param_specs(self):
        mx = max(self.max_fraction)
        return {"shift": ParamSpec("continuous", -mx, mx, shape=(2,))}

    def _sample(self, n, generator, size=None):
        u = torch.rand(n, 2, generator=generator) * 2 - 1
        return {"shift": u * torch.tensor(self.max_fraction)}

    def identity_params(self, n, device=None):
        return {"shift": torch.zeros(n, 2, device=device)}

    def matrix(self, params, size):
        shift = _real(params["shift"])
        m = _eye(shift.shape[0], shift.device, shift.dtype)
        m[:, 0, 2] = shift[:, 0] * size[1]
        m[:, 1, 2] = shift[:, 1] * size[0]
        return m

    def __repr__(self):
        return f"Translate(max_fraction={self.max_fraction})"


class Scale(AffineTransform):
    """Zoom about the centre by a factor drawn from ``factor``. Parameter ``factor``."""

    name = "scale"

    def __init__(self, factor: Sequence[float] = (0.8, 1.2), padding_mode: str = "zeros"):
        self.factor = _check_range("factor", factor, 1e-3)
        self.padding_mode = padding_mode

    def param_specs(self):
        return {"factor": ParamSpec("continuous", *self.factor)}

    def _sample(self, n, generator, size=None):
        return {"factor": _uniform(n, *self.factor, generator)}

    def identity_params(self, n, device=None):
        return {"factor": torch.ones(n, device=device)}

    def matrix(self, params, size):
        f = _real(params["factor"])
        lin = torch.diag_embed(torch.stack([f, f], -1))
        return _about_centre(lin, size)

    def __repr__(self):
        return f"Scale(factor={self.factor})"


class Shear(AffineTransform):
    """Shear about the centre: x-shear angle from ``degrees``, y-shear from ``y_degrees``
    (default none). Parameter ``angle (n, 2)`` in degrees."""

    name = "shear"

    def __init__(
        self,
        degrees: Sequence[float] | float = (-20.0, 20.0),
        y_degrees: Sequence[float] | float | None = None,
        padding_mode: str = "zeros",
    ):
        if isinstance(degrees, (int, float)):
            degrees = (-float(degrees), float(degrees))
        if isinstance(y_degrees, (int, float)):
            y_degrees = (-float(y_degrees), float(y_degrees))
        self.degrees = _check_range("degrees", degrees, -89.0, 89.0)
        self.y_degrees = _check_range("y_degrees", y_degrees or (0.0, 0.0), -89.0, 89.0)
        self.padding_mode = padding_mode

    def param_specs(self):
        lo = min(self.degrees[0], self.y_degrees[0])
        hi = max(self.degrees[1], self.y_degrees[1])
        return {"angle": ParamSpec("continuous", lo, hi, shape=(2,))}

    def _sample(self, n, generator, size=None):
        return {
            "angle": torch.stack(
                [_uniform(n, *self.degrees, generator), _uniform(n, *self.y_degrees, generator)], 1
            )
        }

    def identity_params(self, n, device=None):
        return {"angle": torch.zeros(n, 2, device=device)}

    def matrix(self, params, size):
        t = torch.tan(torch.deg2rad(_real(params["angle"])))
        one = torch.ones_like(t[:, 0])
        lin = torch.stack([torch.stack([one, t[:, 0]], -1), torch.stack([t[:, 1], one], -1)], -2)
        return _about_centre(lin, size)

    def __repr__(self):
        return f"Shear(degrees={self.degrees}, y_degrees={self.y_degrees})"
