"""Image transforms on float batches ``(N, C, H, W)`` with values in ``[0, 1]``.

Geometric transforms are :class:`~invlab.transforms.base.AffineTransform` s (fused and
resampled once inside :class:`~invlab.transforms.base.Compose`). Photometric transforms
follow torchvision's definitions (blend-and-clamp for brightness, contrast, saturation;
an HSV hue rotation) but are written as a handful of batched tensor operations: kornia's
HSV-based saturation and hue cost ~45 ms and ~20 ms per 512 CIFAR images on two cores,
these cost ~1 ms and ~3 ms. Kernels that are already fast in kornia (blur, solarize) are
used from kornia.

Conventions: angles in degrees, counter-clockwise positive (torchvision's); crop boxes
are ``(x0, y0, x1, y1)`` as fractions of the input width/height; pixel geometry is
``align_corners=False``. Inputs with 2 or 4 channels carry an alpha channel last (grey +
alpha, RGBA): :class:`ColourChannels` applies a colour transform to the colour channels
only, and :class:`PlaceObject` finds the object where alpha is positive (the controlled
data sets transform an RGBA object layer before pasting it onto a background).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
from torch import Tensor

from invlab.transforms.base import (
    AffineTransform,
    Params,
    ParamSpec,
    Transform,
    _bernoulli,
    _check_probability,
    _check_range,
    _uniform,
)

__all__ = [
    "RandomResizedCrop",
    "Resize",
    "HorizontalFlip",
    "VerticalFlip",
    "Rotate90",
    "Rotate",
    "Translate",
    "Scale",
    "Shear",
    "Brightness",
    "Contrast",
    "Saturation",
    "Hue",
    "ColorJitter",
    "Grayscale",
    "GaussianBlur",
    "Solarize",
    "Invert",
    "Posterize",
    "Sharpen",
    "GaussianNoise",
    "Pixelate",
    "ElasticWarp",
    "Erase",
    "PlaceObject",
    "ColourChannels",
    "rgb_to_gray",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "posterize",
    "sharpen",
    "seeded_normal",
    "alpha_channel",
]

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2, as torchvision and PIL


# ---------------------------------------------------------------------------------------
# affine helpers: (n, 3, 3) maps in continuous pixel coordinates
# ---------------------------------------------------------------------------------------
def _eye(n: int, device, dtype=torch.float32) -> Tensor:
    return torch.eye(3, device=device, dtype=dtype).repeat(n, 1, 1)


def _real(t: Tensor) -> Tensor:
    """Floating copy of a parameter (keeps float64 for gradcheck, float32 otherwise)."""
    return t if t.is_floating_point() else t.float()


def _about_centre(linear: Tensor, size: tuple[int, int]) -> Tensor:
    """Embed ``(n, 2, 2)`` linear maps acting about the image centre into ``(n, 3, 3)``."""
    h, w = size
    centre = torch.tensor([w / 2.0, h / 2.0], device=linear.device, dtype=linear.dtype)
    m = _eye(linear.shape[0], linear.device, linear.dtype)
    m[:, :2, :2] = linear
    m[:, :2, 2] = centre - linear @ centre
    return m


def _rotation(angle_deg: Tensor) -> Tensor:
    """Counter-clockwise (as seen on screen, y pointing down) rotation matrices (n, 2, 2)."""
    a = torch.deg2rad(_real(angle_deg))
    c, s = torch.cos(a), torch.sin(a)
    return torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)


def _flip_params(n: int, p: float, generator) -> Params:
    return {"flip": _bernoulli(n, p, generator)}


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


# ---------------------------------------------------------------------------------------
# photometric kernels (plain functions: images (N, C, H, W) in [0, 1], per-sample factors (N,))
# ---------------------------------------------------------------------------------------
def _per_sample(v: Tensor, x: Tensor) -> Tensor:
    return v.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))


def rgb_to_gray(x: Tensor) -> Tensor:
    """``(N, 3, H, W) -> (N, 1, H, W)`` luma; single-channel input is returned as is."""
    if x.shape[-3] == 1:
        return x
    r, g, b = x.unbind(-3)
    return (_GRAY_WEIGHTS[0] * r + _GRAY_WEIGHTS[1] * g + _GRAY_WEIGHTS[2] * b).unsqueeze(-3)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return (x * _per_sample(factor, x)).clamp(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    mean = rgb_to_gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    f = _per_sample(factor, x)
    return (f * x + (1 - f) * mean).clamp(0.0, 1.0)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    if x.shape[-3] == 1:
        return x
    f = _per_sample(factor, x)
    return (f * x + (1 - f) * rgb_to_gray(x)).clamp(0.0, 1.0)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate hue by ``shift`` turns (in ``[-0.5, 0.5]``), as an exact HSV round trip.

    With ``V = max``, ``m = min`` and ``d = V - m`` per pixel, the hue in sextants is
    ``h = (c_{i+1} - c_{i+2}) / d + 2 i`` where ``i`` is the arg-max channel (indices mod 3);
    the closed form of HSV -> RGB is ``c_k = V - d * clamp(2 - |q_k - 2|, 0, 1)`` with
    ``q_k = (n_k + h) mod 6`` and ``n = (5, 3, 1)``. It keeps each pixel's max and min and
    needs no branches: a handful of batched ops instead of a full HSV conversion. Without
    autograd (augmentation) the ops run in place.
    """
    if x.shape[-3] == 1:
        return x
    inplace = not (torch.is_grad_enabled() and (x.requires_grad or shift.requires_grad))
    maxc, argmax = x.max(dim=-3, keepdim=True)
    delta = maxc - x.amin(dim=-3, keepdim=True)
    diff = x.roll(-1, dims=-3) - x.roll(-2, dims=-3)  # c_{k+1} - c_{k+2} for every channel k
    h = diff.gather(-3, argmax) / torch.where(delta > 0, delta, torch.ones_like(delta))
    h = h + (2.0 * argmax.to(x.dtype) + 6.0 * _per_sample(shift, x))
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(3, 1, 1)
    if inplace:
        q = torch.add(h, n).remainder_(6.0)
        q.sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)
        return q.mul_(delta).neg_().add_(maxc)
    q = torch.remainder(h + n, 6.0)
    return maxc - delta * (2.0 - (q - 2.0).abs()).clamp(0.0, 1.0)


class _Photometric(Transform):
    """One scalar factor per sample drawn from ``factor``; kernel ``fn(x, factor)``."""

    fn = None
    identity_value = 1.0
    kind = "continuous"

    def __init__(self, factor: Sequence[float]):
        self.factor = _check_range("factor", factor, *self._bounds)

    _bounds = (0.0, math.inf)

    def param_specs(self):
        return {"factor": ParamSpec(self.kind, *self.factor)}

    def _sample(self, n, generator, size=None):
        return {"factor": _uniform(n, *self.factor, generator)}

    def identity_params(self, n, device=None):
        return {"factor": torch.full((n,), self.identity_value, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        return type(self).fn(x, params["factor"])

    def __repr__(self):
        return f"{type(self).__name__}(factor={self.factor})"


class Brightness(_Photometric):
    """``x * f``, clamped. Parameter ``factor``."""

    name = "brightness"
    fn = staticmethod(adjust_brightness)

    def __init__(self, factor: Sequence[float] = (0.6, 1.4)):
        super().__init__(factor)


class Contrast(_Photometric):
    """Blend with the image's mean grey level: ``f x + (1 - f) mean``. Parameter ``factor``."""

    name = "contrast"
    fn = staticmethod(adjust_contrast)

    def __init__(self, factor: Sequence[float] = (0.6, 1.4)):
        super().__init__(factor)


class Saturation(_Photometric):
    """Blend with the grey version: ``f x + (1 - f) gray(x)``. Parameter ``factor``."""

    name = "saturation"
    fn = staticmethod(adjust_saturation)

    def __init__(self, factor: Sequence[float] = (0.6, 1.4)):
        super().__init__(factor)


class Hue(_Photometric):
    """HSV hue rotation by ``shift`` turns. Parameter ``factor`` (the shift, in turns)."""

    name = "hue"
    fn = staticmethod(adjust_hue)
    identity_value = 0.0
    _bounds = (-0.5, 0.5)

    def __init__(self, factor: Sequence[float] = (-0.1, 0.1)):
        super().__init__(factor)

    def param_specs(self):
        return {"factor": ParamSpec("angle", *self.factor, period=1.0)}


def _jitter_range(name: str, strength: float | Sequence[float], centre: float, bound: float):
    if isinstance(strength, (int, float)):
        if strength < 0:
            raise ValueError(f"{name} jitter strength must be >= 0, got {strength}")
        lo, hi = centre - float(strength), centre + float(strength)
        return (lo, hi) if centre == 0 else (max(lo, 0.0), hi)
    return _check_range(name, strength)


class ColorJitter(Transform):
    """torchvision-style colour jitter with strengths ``brightness``, ``contrast``,
    ``saturation`` (factor ``U[max(0, 1-s), 1+s]``) and ``hue`` (shift ``U[-s, s]`` turns,
    ``s <= 0.5``); a pair gives the range directly.

    Applied in the fixed order brightness, contrast, saturation, hue (torchvision draws
    a random order per image; a fixed order keeps the batch fused and the parameters a
    plain vector). Parameters: one factor per enabled component.
    """

    name = "jitter"

    def __init__(self, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1):
        self.ranges: dict[str, tuple[float, float]] = {}
        for key, strength, centre in (
            ("brightness", brightness, 1.0),
            ("contrast", contrast, 1.0),
            ("saturation", saturation, 1.0),
            ("hue", hue, 0.0),
        ):
            rng = _jitter_range(key, strength, centre, 0.5)
            if key == "hue" and (rng[0] < -0.5 or rng[1] > 0.5):
                raise ValueError(f"hue jitter must lie within [-0.5, 0.5], got {rng}")
            if rng != (centre, centre):
                self.ranges[key] = rng

    _kernels = {
        "brightness": adjust_brightness,
        "contrast": adjust_contrast,
        "saturation": adjust_saturation,
        "hue": adjust_hue,
    }

    def param_specs(self):
        return {
            k: ParamSpec("angle", *r, period=1.0) if k == "hue" else ParamSpec("continuous", *r)
            for k, r in self.ranges.items()
        }

    def _sample(self, n, generator, size=None):
        return {k: _uniform(n, *r, generator) for k, r in self.ranges.items()}

    def identity_params(self, n, device=None):
        return {
            k: torch.full((n,), 0.0 if k == "hue" else 1.0, device=device) for k in self.ranges
        }

    def apply(self, x, params):
        self.check_params(x, params)
        for key in ("brightness", "contrast", "saturation", "hue"):
            if key in self.ranges:
                x = self._kernels[key](x, params[key])
        return x

    def __repr__(self):
        return f"ColorJitter({self.ranges})"


class _Toggle(Transform):
    """A transform that is either applied or not, per sample, with probability ``p``;
    its one parameter (bool) is named ``key``."""

    key = "on"

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p)

    def param_specs(self):
        return {self.key: ParamSpec("binary")}

    def _sample(self, n, generator, size=None):
        return {self.key: _bernoulli(n, self.p, generator)}

    def identity_params(self, n, device=None):
        return {self.key: torch.zeros(n, dtype=torch.bool, device=device)}

    def _on(self, x, params) -> Tensor:
        return _per_sample(params[self.key], x).bool()

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class Grayscale(_Toggle):
    """Convert to grey (kept at the input's channel count) with probability ``p``.
    Parameter ``gray`` (bool)."""

    name = "grayscale"
    key = "gray"

    def __init__(self, p: float = 0.2):
        super().__init__(p)

    def apply(self, x, params):
        self.check_params(x, params)
        if x.shape[-3] == 1:
            return x
        return torch.where(self._on(x, params), rgb_to_gray(x).expand_as(x), x)


class GaussianBlur(Transform):
    """Gaussian blur with ``sigma`` (pixels) drawn from ``sigma``; kernel size
    ``kernel_size`` (odd), by default about 10% of the image side (SimCLR), at least 3.
    Parameter ``sigma``. Uses kornia's ``gaussian_blur2d`` with reflect padding."""

    name = "blur"

    def __init__(self, sigma: Sequence[float] = (0.1, 2.0), kernel_size: int | None = None):
        self.sigma = _check_range("sigma", sigma, 1e-3)
        if kernel_size is not None and (kernel_size < 1 or kernel_size % 2 == 0):
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        self.kernel_size = kernel_size

    def param_specs(self):
        return {"sigma": ParamSpec("continuous", *self.sigma)}

    def _sample(self, n, generator, size=None):
        return {"sigma": _uniform(n, *self.sigma, generator)}

    def identity_params(self, n, device=None):
        # sigma -> 0 is the identity; the smallest positive value keeps the kernel defined
        return {"sigma": torch.full((n,), 1e-3, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        k = self.kernel_size
        if k is None:
            k = max(3, int(round(0.1 * min(x.shape[-2:]))) // 2 * 2 + 1)
        sigma = params["sigma"].to(device=x.device, dtype=x.dtype).clamp_min(1e-3)
        return kornia.filters.gaussian_blur2d(
            x, (k, k), torch.stack([sigma, sigma], -1), border_type="reflect"
        )

    def __repr__(self):
        return f"GaussianBlur(sigma={self.sigma}, kernel_size={self.kernel_size})"


class Solarize(Transform):
    """Invert pixels at or above ``threshold`` (drawn from ``threshold``).

    Parameter ``threshold``; 1.0 leaves the image unchanged. Not differentiable in the
    threshold (a step function).
    """

    name = "solarize"

    def __init__(self, threshold: Sequence[float] | float = (0.5, 0.5)):
        if isinstance(threshold, (int, float)):
            threshold = (float(threshold), float(threshold))
        self.threshold = _check_range("threshold", threshold, 0.0, 1.0)

    def param_specs(self):
        return {"threshold": ParamSpec("continuous", *self.threshold)}

    def _sample(self, n, generator, size=None):
        return {"threshold": _uniform(n, *self.threshold, generator)}

    def identity_params(self, n, device=None):
        return {"threshold": torch.full((n,), 1.0 + 1e-6, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        t = _per_sample(params["threshold"], x)
        return torch.where(x >= t, 1.0 - x, x)

    def __repr__(self):
        return f"Solarize(threshold={self.threshold})"


class Invert(_Toggle):
    """Colour inversion ``1 - x`` with probability ``p``. Parameter ``invert`` (bool)."""

    name = "invert"
    key = "invert"

    def apply(self, x, params):
        self.check_params(x, params)
        return torch.where(self._on(x, params), 1.0 - x, x)


# ---------------------------------------------------------------------------------------
# corruptions and object-level transforms (Transforms-2D, Speicher et al. 2024)
# ---------------------------------------------------------------------------------------
def alpha_channel(x: Tensor) -> Tensor | None:
    """The alpha channel ``(N, 1, H, W)`` of grey+alpha or RGBA input, else ``None``."""
    return x[:, -1:] if x.shape[-3] in (2, 4) else None


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the top ``bits`` (per sample, 1..8) of each 8-bit channel value, as PIL and
    torchvision do on uint8 images. ``bits >= 8`` returns the input unchanged."""
    bits = bits.to(device=x.device).long().clamp(1, 8)
    q = torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5).long()
    shift = (8 - bits).view(-1, *([1] * (x.dim() - 1)))
    out = torch.bitwise_left_shift(torch.bitwise_right_shift(q, shift), shift).to(x.dtype) / 255.0
    return torch.where(shift == 0, x, out)


def sharpen(x: Tensor, factor: Tensor) -> Tensor:
    """torchvision's ``adjust_sharpness``: blend with a smoothed copy (3x3 kernel
    ``[[1,1,1],[1,5,1],[1,1,1]] / 13``, border pixels kept) by ``factor`` per sample
    (1 = unchanged, > 1 sharper), clamped to ``[0, 1]``."""
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        return x
    # the kernel is a 3x3 box sum plus 4x the centre: cheaper as an average pool
    smooth = (torch.nn.functional.avg_pool2d(x, 3, stride=1) * 9.0 + 4.0 * x[..., 1:-1, 1:-1]) / 13.0
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    f = _per_sample(factor, x)
    return (f * x + (1 - f) * degenerate).clamp(0.0, 1.0)


def seeded_normal(seed: Tensor, shape: Sequence[int], dtype=torch.float32, device=None) -> Tensor:
    """Standard normal noise ``(n, *shape)``: sample ``i`` drawn from a CPU generator
    seeded with ``seed[i]``, so the noise is a pure function of its seed, the same on any
    device and whatever the batch it is drawn in (a replayable parameter)."""
    out = torch.empty(len(seed), *shape, dtype=torch.float32)
    g = torch.Generator()
    for i, s in enumerate(seed.tolist()):
        g.manual_seed(int(s))
        torch.randn(tuple(shape), generator=g, out=out[i])
    return out.to(device=device, dtype=dtype)


class Posterize(Transform):
    """Reduce each channel to ``bits`` bits (``bits`` drawn uniformly from the integers in
    ``bits``). Parameter ``bits`` (int64, 1..8; 8 = unchanged)."""

    name = "posterize"

    def __init__(self, bits: Sequence[int] | int = 1):
        if isinstance(bits, int):
            bits = (bits, bits)
        lo, hi = (int(b) for b in _check_range("bits", bits, 1, 8))
        self.bits = (lo, hi)

    def param_specs(self):
        return {"bits": ParamSpec("discrete", num_classes=9)}

    def _sample(self, n, generator, size=None):
        return {"bits": torch.randint(self.bits[0], self.bits[1] + 1, (n,), generator=generator)}

    def identity_params(self, n, device=None):
        return {"bits": torch.full((n,), 8, dtype=torch.long, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        return posterize(x, params["bits"])

    def __repr__(self):
        return f"Posterize(bits={self.bits})"


class Sharpen(_Photometric):
    """torchvision's sharpness adjustment by a factor drawn from ``factor`` (1 = unchanged).
    Parameter ``factor``."""

    name = "sharpen"
    fn = staticmethod(sharpen)

    def __init__(self, factor: Sequence[float] | float = (7.0, 7.0)):
        if isinstance(factor, (int, float)):
            factor = (float(factor), float(factor))
        super().__init__(factor)


class GaussianNoise(Transform):
    """Additive Gaussian noise ``x + std * z``, clamped; ``std`` drawn from ``std``.

    Parameters ``std`` and ``seed`` (int64): the noise image is a pure function of the seed
    (:func:`seeded_normal`), so a sample's noise is replayable from its parameters. Only
    ``std`` is listed in :meth:`param_specs` (the seed is not a property of the image a
    probe could recover)."""

    name = "noise"

    def __init__(self, std: Sequence[float] | float = (0.05, 0.15)):
        if isinstance(std, (int, float)):
            std = (float(std), float(std))
        self.std = _check_range("std", std, 0.0)

    def param_specs(self):
        return {"std": ParamSpec("continuous", *self.std)}

    def _sample(self, n, generator, size=None):
        return {
            "std": _uniform(n, *self.std, generator),
            "seed": torch.randint(0, 2**31 - 1, (n,), generator=generator),
        }

    def identity_params(self, n, device=None):
        return {"std": torch.zeros(n, device=device), "seed": torch.zeros(n, dtype=torch.long, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        if "seed" not in params:
            raise KeyError(f"{self.name}: parameter 'seed' is missing; draw parameters with GaussianNoise.sample()")
        z = seeded_normal(params["seed"], x.shape[1:], x.dtype, x.device)
        return (x + _per_sample(params["std"], x) * z).clamp(0.0, 1.0)

    def __repr__(self):
        return f"GaussianNoise(std={self.std})"


class Pixelate(Transform):
    """Downsample by ``factor`` (drawn from ``factor``; antialiased bilinear) and scale back
    up with nearest neighbours: blocky pixels. Parameter ``factor`` (1 = unchanged)."""

    name = "pixelate"

    def __init__(self, factor: Sequence[float] | float = (0.3, 0.3)):
        if isinstance(factor, (int, float)):
            factor = (float(factor), float(factor))
        self.factor = _check_range("factor", factor, 1e-3, 1.0)

    def param_specs(self):
        return {"factor": ParamSpec("continuous", *self.factor)}

    def _sample(self, n, generator, size=None):
        return {"factor": _uniform(n, *self.factor, generator)}

    def identity_params(self, n, device=None):
        return {"factor": torch.ones(n, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        h, w = x.shape[-2:]
        f = params["factor"].to(x.device).double()
        low_h = (f * h).round().clamp(1, h).long()
        low_w = (f * w).round().clamp(1, w).long()
        out = x
        for lh, lw in sorted({(int(a), int(b)) for a, b in zip(low_h.tolist(), low_w.tolist())}):
            if (lh, lw) == (h, w):
                continue
            idx = ((low_h == lh) & (low_w == lw)).nonzero().flatten()
            small = torch.nn.functional.interpolate(
                x.index_select(0, idx), size=(lh, lw), mode="bilinear", antialias=True, align_corners=False
            )
            up = torch.nn.functional.interpolate(small, size=(h, w), mode="nearest")
            out = out.index_copy(0, idx, up)
        return out

    def __repr__(self):
        return f"Pixelate(factor={self.factor})"


class ElasticWarp(Transform):
    """Smooth random displacement of every pixel (elastic deformation).

    A ``grid x grid`` field of 2-D displacements, uniform in ``[-1, 1]``, is upsampled
    bicubically to the image and scaled so a node's displacement has standard deviation
    ``magnitude`` (a fraction of the image side). The default (7.5%, 5x5 nodes) matches
    the strength and smoothness of torchvision's ``ElasticTransform(alpha=150, sigma=5)`` on
    32 px images (displacement std ~2.4 px, correlated over ~5-8 px), but scales with the
    image. Parameter ``field (n, 2, grid, grid)`` (x then y displacement); zeros = identity.
    """

    name = "elastic"

    def __init__(self, magnitude: float = 0.075, grid: int = 5):
        if magnitude < 0:
            raise ValueError(f"magnitude must be >= 0, got {magnitude}")
        if grid < 2:
            raise ValueError(f"grid must be >= 2, got {grid}")
        self.magnitude, self.grid = float(magnitude), int(grid)

    def param_specs(self):
        return {"field": ParamSpec("continuous", -1.0, 1.0, shape=(2, self.grid, self.grid))}

    def _sample(self, n, generator, size=None):
        return {"field": torch.rand(n, 2, self.grid, self.grid, generator=generator) * 2 - 1}

    def identity_params(self, n, device=None):
        return {"field": torch.zeros(n, 2, self.grid, self.grid, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        n, _, h, w = x.shape
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        field = _real(params["field"]).to(device=x.device, dtype=dtype)
        disp = torch.nn.functional.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
        disp = disp * (2.0 * self.magnitude * math.sqrt(3.0))  # normalised units: 2 = one side
        ys = (torch.arange(h, device=x.device, dtype=dtype) + 0.5) / h * 2 - 1
        xs = (torch.arange(w, device=x.device, dtype=dtype) + 0.5) / w * 2 - 1
        base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (h, w, 2) as (x, y)
        grid = base.unsqueeze(0) + disp.permute(0, 2, 3, 1)
        return torch.nn.functional.grid_sample(
            x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
        )

    def __repr__(self):
        return f"ElasticWarp(magnitude={self.magnitude}, grid={self.grid})"


class Erase(Transform):
    """Set a rectangle to ``value`` in every channel (random erasing with a fixed size).

    The rectangle is ``size`` of the height and width (default 14/32, the paper's 14x14 at
    32 px), placed uniformly where it fits. On an RGBA layer erasing alpha too cuts a hole
    through which the background shows. Parameter ``box (n, 4)``: ``(x0, y0, x1, y1)`` as
    fractions; an empty box erases nothing.
    """

    name = "erase"

    def __init__(self, size: Sequence[float] | float = 14 / 32, value: float = 0.0):
        if isinstance(size, (int, float)):
            size = (float(size), float(size))
        size = tuple(float(s) for s in size)
        if len(size) != 2 or not all(0.0 < s <= 1.0 for s in size):
            raise ValueError(f"size must be one or two fractions in (0, 1], got {size}")
        self.size, self.value = size, float(value)

    def param_specs(self):
        return {"box": ParamSpec("continuous", 0.0, 1.0, shape=(4,))}

    def _sample(self, n, generator, size=None):
        u = torch.rand(n, 2, generator=generator)
        x0 = u[:, 0] * (1 - self.size[1])
        y0 = u[:, 1] * (1 - self.size[0])
        return {"box": torch.stack([x0, y0, x0 + self.size[1], y0 + self.size[0]], 1)}

    def identity_params(self, n, device=None):
        return {"box": torch.zeros(n, 4, device=device)}

    def apply(self, x, params):
        self.check_params(x, params)
        h, w = x.shape[-2:]
        box = params["box"].to(device=x.device, dtype=torch.float64)
        cx = (torch.arange(w, device=x.device, dtype=torch.float64) + 0.5) / w
        cy = (torch.arange(h, device=x.device, dtype=torch.float64) + 0.5) / h
        inside_x = (cx >= box[:, :1]) & (cx < box[:, 2:3])  # (n, w)
        inside_y = (cy >= box[:, 1:2]) & (cy < box[:, 3:4])  # (n, h)
        mask = (inside_y.unsqueeze(2) & inside_x.unsqueeze(1)).unsqueeze(1)
        return torch.where(mask, torch.full_like(x, self.value), x)

    def __repr__(self):
        return f"Erase(size={self.size}, value={self.value})"


class PlaceObject(Transform):
    """Move the object so its bounding box lands uniformly anywhere it fits (the
    Transforms-2D translation), by whole pixels (no resampling).

    The object is where the alpha channel (last of 2 or 4 channels) exceeds
    ``threshold``; 1- and 3-channel images are one full-size box and do not move.
    Parameter ``position (n, 2)``: ``(u, v)`` in ``[0, 1]``, where the box lands within the
    free horizontal / vertical range (0 = left/top edge, 0.5 = centred, 1 = right/bottom).
    ``identity_params`` centres the box, which leaves a centred object in place.
    """

    name = "translate"

    def __init__(self, threshold: float = 0.02):
        self.threshold = float(threshold)

    def param_specs(self):
        return {"position": ParamSpec("continuous", 0.0, 1.0, shape=(2,))}

    def _sample(self, n, generator, size=None):
        return {"position": torch.rand(n, 2, generator=generator)}

    def identity_params(self, n, device=None):
        return {"position": torch.full((n, 2), 0.5, device=device)}

    @staticmethod
    def _span(occupied: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """First and last occupied index along the last dim, and whether any is."""
        length = occupied.shape[-1]
        any_ = occupied.any(-1)
        first = occupied.float().argmax(-1)
        last = length - 1 - occupied.flip(-1).float().argmax(-1)
        return first, last, any_

    def shifts(self, x: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        """Integer pixel shifts ``(dx, dy)``, each ``(n,)``, that place the object."""
        n, _, h, w = x.shape
        alpha = alpha_channel(x)
        position = position.to(device=x.device, dtype=torch.float64)
        if alpha is None:
            zero = torch.zeros(n, dtype=torch.long, device=x.device)
            return zero, zero
        occupied = alpha[:, 0].detach() > self.threshold  # (n, h, w)
        c0, c1, any_c = self._span(occupied.any(1))
        r0, r1, _ = self._span(occupied.any(2))
        lo_x, hi_x = -c0.double(), (w - 1 - c1).double()
        lo_y, hi_y = -r0.double(), (h - 1 - r1).double()
        dx = torch.round(lo_x + position[:, 0] * (hi_x - lo_x)).long()
        dy = torch.round(lo_y + position[:, 1] * (hi_y - lo_y)).long()
        return torch.where(any_c, dx, 0), torch.where(any_c, dy, 0)

    def apply(self, x, params):
        self.check_params(x, params)
        n, _, h, w = x.shape
        dx, dy = self.shifts(x, params["position"])
        src_r = torch.arange(h, device=x.device).view(1, h) - dy.view(n, 1)  # (n, h)
        src_c = torch.arange(w, device=x.device).view(1, w) - dx.view(n, 1)  # (n, w)
        valid = ((src_r >= 0) & (src_r < h)).unsqueeze(2) & ((src_c >= 0) & (src_c < w)).unsqueeze(1)
        b = torch.arange(n, device=x.device).view(n, 1, 1)
        out = x[b, :, src_r.clamp(0, h - 1).unsqueeze(2), src_c.clamp(0, w - 1).unsqueeze(1)]  # (n, h, w, c)
        out = out.permute(0, 3, 1, 2)
        return out * valid.unsqueeze(1).to(x.dtype)

    def __repr__(self):
        return f"PlaceObject(threshold={self.threshold})"


class ColourChannels(Transform):
    """Apply ``transform`` to the colour channels only; an alpha channel (the last of 2
    or 4 channels) passes through unchanged. Same name, parameters and specs as
    ``transform``, so it can replace it inside a :class:`~invlab.transforms.base.Compose`."""

    def __init__(self, transform: Transform):
        if not isinstance(transform, Transform):
            raise TypeError(f"ColourChannels expects an invlab Transform, got {type(transform).__name__}")
        if transform.output_size((8, 8)) != (8, 8):
            raise ValueError(f"ColourChannels cannot wrap {transform.name}: it changes the image size")
        self.transform = transform
        self.name = transform.name

    def param_specs(self):
        return self.transform.param_specs()

    def _sample(self, n, generator, size=None):
        return self.transform.sample(n, generator, size=size)

    def identity_params(self, n, device=None):
        return self.transform.identity_params(n, device)

    def apply(self, x, params):
        if alpha_channel(x) is None:
            return self.transform.apply(x, params)
        colour = self.transform.apply(x[:, :-1], params)
        return torch.cat([colour, x[:, -1:]], 1)

    def __repr__(self):
        return f"ColourChannels({self.transform!r})"
