"""Time-series transforms on float batches ``(N, C, T)`` (batch, channels, time).

The augmentations of Um et al. ("Data augmentation of wearable sensor data", 2017) and Le
Guennec et al. ("Data augmentation for time series classification using CNNs", 2016), and
the ones TimeDRL ablates, as invlab :class:`~invlab.transforms.base.Transform` s: every
draw is returned as parameters, so a view can be replayed, predicted or used to measure
(in)variance exactly as for images.

``sample(n, generator, size=(C, T))`` needs the channel count and length for transforms
whose draws have one value per channel or per time step (``Transform.__call__`` passes
them from the batch). :meth:`param_specs` lists the parameters of fixed per-sample shape,
which heads and probes can predict (a noise level, knot values, a window, a segment order);
per-channel factors and per-step realisations (noise, masks) are kept in the parameters so
``apply`` is exact, but their shape depends on the series, so they are not listed.
``identity_params`` give broadcastable identities (e.g. a ``(n, 1, 1)`` zero noise).

Resampling (time warp, window slice) interpolates linearly with ``grid_sample``
(``align_corners=True``: sample ``t`` sits at position ``t``), so it is batched,
differentiable in the series and in the warp parameters, and exact at integer positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from invlab.transforms.base import Params, ParamSpec, Transform, _check_range, _uniform

__all__ = [
    "Jitter", "Scaling", "MagnitudeWarp", "TimeWarp", "WindowSlice", "WindowCrop", "SegmentPermutation", "Masking",
    "smooth_curve", "resample_series",
]


def _as_range(value: float | Sequence[float], name: str, lo: float = 0.0, hi: float = float("inf")) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        value = (float(value), float(value))
    return _check_range(name, value, lo, hi)


def _series_size(size, name: str) -> tuple[int, int]:
    if size is None or len(size) != 2:
        raise ValueError(f"{name}: sampling needs size=(channels, length) of the series, got {size!r}")
    return int(size[0]), int(size[1])


def _check_series(x: Tensor, name: str) -> None:
    if x.dim() != 3:
        raise ValueError(f"{name}: expected a batch of series (N, C, T), got shape {tuple(x.shape)}")


def _real(t: Tensor, like: Tensor) -> Tensor:
    return t.to(device=like.device, dtype=like.dtype if like.is_floating_point() else torch.float32)


def smooth_curve(knots: Tensor, length: int) -> Tensor:
    """Cubic (Keys) interpolation of knot values ``(..., K)`` placed evenly from position 0
    to ``length - 1``: returns ``(..., length)``. Differentiable in ``knots``."""
    lead = knots.shape[:-1]
    k = knots.reshape(-1, 1, 1, knots.shape[-1])
    curve = F.interpolate(k, size=(1, length), mode="bicubic", align_corners=True)
    return curve.reshape(*lead, length)


def resample_series(x: Tensor, positions: Tensor) -> Tensor:
    """``y[n, c, t] = x[n, c, positions[n, t]]`` with linear interpolation (positions in
    samples, clamped to the ends). ``x (N, C, T)``, ``positions (N, T')`` -> ``(N, C, T')``."""
    n, _, length = x.shape
    denom = max(length - 1, 1)
    gx = positions.to(x.dtype) / denom * 2 - 1
    grid = torch.stack([gx, torch.zeros_like(gx)], dim=-1).unsqueeze(1)  # (N, 1, T', 2)
    out = F.grid_sample(x.unsqueeze(2), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.squeeze(2)


class Jitter(Transform):
    """Add Gaussian noise: ``x + sigma * noise``.

    Parameters: ``sigma (n,)`` drawn uniformly from ``sigma`` (a number fixes it) and
    ``noise (n, C, T)`` standard normal (not listed in :meth:`param_specs`).
    """

    name = "ts_jitter"

    def __init__(self, sigma: float | Sequence[float] = 0.1):
        self.sigma = _as_range(sigma, "sigma")

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"sigma": ParamSpec("continuous", *self.sigma)}

    def _sample(self, n, generator, size=None) -> Params:
        c, t = _series_size(size, self.name)
        return {"sigma": _uniform(n, *self.sigma, generator), "noise": torch.randn(n, c, t, generator=generator)}

    def identity_params(self, n, device=None) -> Params:
        return {"sigma": torch.zeros(n, device=device), "noise": torch.zeros(n, 1, 1, device=device)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        if "noise" not in params:
            raise KeyError(f"{self.name}: parameter 'noise' is missing (got {sorted(params)})")
        return x + _real(params["sigma"], x).view(-1, 1, 1) * _real(params["noise"], x)

    def __repr__(self) -> str:
        return f"Jitter(sigma={self.sigma})"


class Scaling(Transform):
    """Multiply by a random factor ~ N(1, sigma): one per channel (``per_channel``, as Um et
    al. and TimeDRL) or one per series. Parameter ``factor``: ``(n, C)`` or ``(n,)``."""

    name = "ts_scaling"

    def __init__(self, sigma: float = 0.1, per_channel: bool = True):
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma, self.per_channel = float(sigma), bool(per_channel)

    def param_specs(self) -> dict[str, ParamSpec]:
        if self.per_channel:
            return {}
        return {"factor": ParamSpec("continuous", 1 - 4 * self.sigma, 1 + 4 * self.sigma)}

    def _sample(self, n, generator, size=None) -> Params:
        shape = (n, _series_size(size, self.name)[0]) if self.per_channel else (n,)
        return {"factor": 1 + self.sigma * torch.randn(*shape, generator=generator)}

    def identity_params(self, n, device=None) -> Params:
        return {"factor": torch.ones((n, 1) if self.per_channel else (n,), device=device)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        if "factor" not in params:
            raise KeyError(f"{self.name}: parameter 'factor' is missing (got {sorted(params)})")
        factor = _real(params["factor"], x)
        return x * factor.reshape(x.shape[0], -1, 1)

    def __repr__(self) -> str:
        return f"Scaling(sigma={self.sigma}, per_channel={self.per_channel})"


class MagnitudeWarp(Transform):
    """Multiply by a smooth random curve through ``knots + 2`` evenly spaced values ~ N(1,
    sigma) (Um et al.). Parameter ``knots``: ``(n, knots + 2)`` shared by the channels, or
    ``(n, C, knots + 2)`` with ``per_channel``."""

    name = "magnitude_warp"

    def __init__(self, sigma: float = 0.2, knots: int = 4, per_channel: bool = False):
        if sigma < 0 or knots < 0:
            raise ValueError(f"need sigma >= 0 and knots >= 0, got sigma={sigma}, knots={knots}")
        self.sigma, self.knots, self.per_channel = float(sigma), int(knots), bool(per_channel)

    def param_specs(self) -> dict[str, ParamSpec]:
        if self.per_channel:
            return {}
        return {"knots": ParamSpec("continuous", 1 - 4 * self.sigma, 1 + 4 * self.sigma, shape=(self.knots + 2,))}

    def _sample(self, n, generator, size=None) -> Params:
        shape = (n, _series_size(size, self.name)[0], self.knots + 2) if self.per_channel else (n, self.knots + 2)
        return {"knots": 1 + self.sigma * torch.randn(*shape, generator=generator)}

    def identity_params(self, n, device=None) -> Params:
        return {"knots": torch.ones(n, self.knots + 2, device=device)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        knots = _real(params["knots"], x)
        if knots.dim() == 2:
            knots = knots.unsqueeze(1)
        return x * smooth_curve(knots, x.shape[-1])

    def __repr__(self) -> str:
        return f"MagnitudeWarp(sigma={self.sigma}, knots={self.knots}, per_channel={self.per_channel})"


class TimeWarp(Transform):
    """Warp the time axis smoothly (Um et al.): a speed curve through ``knots + 2`` values ~
    N(1, sigma) (floored at 0.05) is integrated into a monotone map from output step ``t``
    to a source position in ``[0, T - 1]`` (both ends fixed), shared by all channels.
    Parameter ``knots (n, knots + 2)``; all ones is the identity."""

    name = "time_warp"

    def __init__(self, sigma: float = 0.2, knots: int = 4):
        if sigma < 0 or knots < 0:
            raise ValueError(f"need sigma >= 0 and knots >= 0, got sigma={sigma}, knots={knots}")
        self.sigma, self.knots = float(sigma), int(knots)

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"knots": ParamSpec("continuous", 1 - 4 * self.sigma, 1 + 4 * self.sigma, shape=(self.knots + 2,))}

    def _sample(self, n, generator, size=None) -> Params:
        return {"knots": 1 + self.sigma * torch.randn(n, self.knots + 2, generator=generator)}

    def identity_params(self, n, device=None) -> Params:
        return {"knots": torch.ones(n, self.knots + 2, device=device)}

    @staticmethod
    def positions(knots: Tensor, length: int) -> Tensor:
        """Source positions ``(n, length)`` of the output steps."""
        speed = smooth_curve(knots, length).clamp_min(0.05)
        travelled = torch.cumsum(speed, dim=-1) - speed[:, :1]
        return travelled / travelled[:, -1:].clamp_min(1e-12) * (length - 1)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        if x.shape[-1] < 2:
            return x
        return resample_series(x, self.positions(_real(params["knots"], x), x.shape[-1]))

    def __repr__(self) -> str:
        return f"TimeWarp(sigma={self.sigma}, knots={self.knots})"


class _Window(Transform):
    def __init__(self, scale: float | Sequence[float]):
        self.scale = _as_range(scale, "scale", 0.0, 1.0)
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"start": ParamSpec("continuous", 0.0, 1.0 - self.scale[0]), "length": ParamSpec("continuous", *self.scale)}

    def _sample(self, n, generator, size=None) -> Params:
        length = _uniform(n, *self.scale, generator)
        start = torch.rand(n, generator=generator) * (1 - length)
        return {"start": start, "length": length}

    def identity_params(self, n, device=None) -> Params:
        return {"start": torch.zeros(n, device=device), "length": torch.ones(n, device=device)}


class WindowSlice(_Window):
    """Cut a window covering a fraction ``length`` of the series from ``start`` (fractions)
    and stretch it back to the full length (Le Guennec et al.'s window slicing).
    Parameters ``start (n,)``, ``length (n,)``."""

    name = "window_slice"

    def __init__(self, scale: float | Sequence[float] = 0.9):
        super().__init__(scale)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        n, _, length = x.shape
        if length < 2:
            return x
        start, frac = _real(params["start"], x).view(-1, 1), _real(params["length"], x).view(-1, 1)
        t = torch.linspace(0, 1, length, device=x.device, dtype=start.dtype).view(1, -1)
        return resample_series(x, (start + frac * t) * (length - 1))

    def __repr__(self) -> str:
        return f"WindowSlice(scale={self.scale})"


class WindowCrop(_Window):
    """Keep the window ``[start, start + length)`` (fractions of ``T``) and zero the rest,
    keeping the length (TimeDRL's "cropping" ablation). Parameters ``start``, ``length``."""

    name = "window_crop"

    def __init__(self, scale: float | Sequence[float] = (0.5, 1.0)):
        super().__init__(scale)

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        length = x.shape[-1]
        start, frac = _real(params["start"], x).view(-1, 1), _real(params["length"], x).view(-1, 1)
        pos = (torch.arange(length, device=x.device, dtype=start.dtype) / length).view(1, -1)
        keep = (pos >= start - 1e-6) & (pos < start + frac - 1e-6)
        return x * keep.unsqueeze(1).to(x.dtype)

    def __repr__(self) -> str:
        return f"WindowCrop(scale={self.scale})"


class SegmentPermutation(Transform):
    """Split the series into ``k`` near-equal consecutive segments (``numpy.array_split``
    sizes) and concatenate them in a random order (Um et al.). ``k`` is uniform on
    ``segments`` (default 1..4, as TimeDRL's augmentation code).

    Parameters: ``segments (n,)`` (long) and ``order (n, max_segments)`` (long): the output's
    ``j``-th segment is input segment ``order[j]``; entries ``>= k`` are unused and kept in
    place.
    """

    name = "segment_permutation"

    def __init__(self, segments: int | Sequence[int] = (1, 4)):
        if isinstance(segments, int):
            segments = (segments, segments)
        lo, hi = (int(s) for s in segments)
        if not 1 <= lo <= hi:
            raise ValueError(f"segments must be a range (low, high) with 1 <= low <= high, got {segments}")
        self.segments = (lo, hi)

    @property
    def max_segments(self) -> int:
        return self.segments[1]

    def param_specs(self) -> dict[str, ParamSpec]:
        m = self.max_segments
        specs = {"segments": ParamSpec("discrete", num_classes=m + 1)}
        if m >= 2:
            specs["order"] = ParamSpec("discrete", num_classes=m, shape=(m,))
        return specs

    def _sample(self, n, generator, size=None) -> Params:
        lo, hi = self.segments
        k = torch.randint(lo, hi + 1, (n,), generator=generator)
        slot = torch.arange(self.max_segments)
        keys = torch.where(slot < k.view(-1, 1), torch.rand(n, self.max_segments, generator=generator), 1.0 + slot.float())
        return {"segments": k, "order": keys.argsort(dim=1)}

    def identity_params(self, n, device=None) -> Params:
        return {
            "segments": torch.ones(n, dtype=torch.long, device=device),
            "order": torch.arange(self.max_segments, device=device).repeat(n, 1),
        }

    @staticmethod
    def source_index(segments: Tensor, order: Tensor, length: int) -> Tensor:
        """``(n, length)`` input index of every output step."""
        n, m = order.shape
        k = segments.view(-1, 1)
        slot = torch.arange(m, device=order.device).view(1, -1)
        base, extra = length // k, length % k
        sizes = torch.where(slot < k, base + (slot < extra).long(), torch.zeros_like(slot))  # array_split sizes
        starts = torch.cumsum(sizes, dim=1) - sizes
        out_sizes = sizes.gather(1, order)
        out_ends = torch.cumsum(out_sizes, dim=1)
        t = torch.arange(length, device=order.device).expand(n, length).contiguous()
        seg = torch.searchsorted(out_ends, t, right=True).clamp_max(m - 1)  # output segment of each step
        offset = t - (out_ends - out_sizes).gather(1, seg)
        return starts.gather(1, order.gather(1, seg)) + offset

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        segments, order = params["segments"].to(x.device).long(), params["order"].to(x.device).long()
        index = self.source_index(segments, order, x.shape[-1])
        return x.gather(2, index.unsqueeze(1).expand(-1, x.shape[1], -1))

    def __repr__(self) -> str:
        return f"SegmentPermutation(segments={self.segments})"


class Masking(Transform):
    """Zero each value independently with probability ``ratio`` (drawn per series from a
    range, or fixed). Parameters ``ratio (n,)`` and ``keep (n, C, T)`` (bool)."""

    name = "ts_masking"

    def __init__(self, ratio: float | Sequence[float] = 0.3):
        self.ratio = _as_range(ratio, "ratio", 0.0, 1.0)

    def param_specs(self) -> dict[str, ParamSpec]:
        return {"ratio": ParamSpec("continuous", *self.ratio)}

    def _sample(self, n, generator, size=None) -> Params:
        c, t = _series_size(size, self.name)
        ratio = _uniform(n, *self.ratio, generator)
        keep = torch.rand(n, c, t, generator=generator) >= ratio.view(-1, 1, 1)
        return {"ratio": ratio, "keep": keep}

    def identity_params(self, n, device=None) -> Params:
        return {"ratio": torch.zeros(n, device=device), "keep": torch.ones(n, 1, 1, dtype=torch.bool, device=device)}

    def apply(self, x: Tensor, params: Params) -> Tensor:
        _check_series(x, self.name)
        self.check_params(x, params)
        if "keep" not in params:
            raise KeyError(f"{self.name}: parameter 'keep' is missing (got {sorted(params)})")
        return x * params["keep"].to(device=x.device, dtype=x.dtype)

    def __repr__(self) -> str:
        return f"Masking(ratio={self.ratio})"
