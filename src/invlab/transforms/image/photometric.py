"""Photometric image transforms: brightness, contrast, saturation, hue, colour jitter,
grayscale, blur, solarize and invert (torchvision's definitions as a few batched ops)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
from torch import Tensor

from invlab.transforms.base import (
    ParamSpec,
    Transform,
    _bernoulli,
    _check_probability,
    _check_range,
    _uniform,
)
from invlab.transforms.image.kernels import (
    _per_sample,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    rgb_to_gray,
)

__all__ = ["Brightness", "Contrast", "Saturation", "Hue", "ColorJitter", "Grayscale", "GaussianBlur", "Solarize", "Invert"]


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
