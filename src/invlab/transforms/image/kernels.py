"""Functional image kernels: affine-map helpers (``(n, 3, 3)`` maps in continuous pixel
coordinates), photometric kernels (images ``(N, C, H, W)`` in [0, 1], per-sample factors
``(N,)``) and the corruption kernels the transforms of this package are built from."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from invlab.transforms.base import (
    Params,
    _bernoulli,
)

__all__ = ["rgb_to_gray", "adjust_brightness", "adjust_contrast", "adjust_saturation", "adjust_hue", "posterize", "sharpen", "seeded_normal", "alpha_channel"]


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
    # the arg-max channel from two comparisons, the first maximum on ties as ``x.max(dim)``
    # picks it (whose index output costs several times a plain reduction on the CPU)
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    not_r = ~((r >= g) & (r >= b))
    argmax = not_r.long() + (not_r & (b > g)).long()
    maxc = x.gather(-3, argmax)
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
