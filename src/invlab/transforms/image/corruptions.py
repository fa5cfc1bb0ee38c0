"""Corruptions of the Transforms-2D catalogue (Speicher et al. 2024): posterize, sharpen,
Gaussian noise, pixelate, elastic warp and erasing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from invlab.transforms.base import (
    ParamSpec,
    Transform,
    _check_range,
    _uniform,
)
from invlab.transforms.image.kernels import _per_sample, _real, posterize, seeded_normal, sharpen
from invlab.transforms.image.photometric import _Photometric

__all__ = ["Posterize", "Sharpen", "GaussianNoise", "Pixelate", "ElasticWarp", "Erase"]


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
