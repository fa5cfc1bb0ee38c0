"""The supports of *learned* augmentation distributions (InstaAug, Augerino), as plain
tensor code: no ``nn.Parameter`` lives here (the networks that output the distribution
parameters are in :mod:`invlab.nn.invariance_module`, the losses in
:mod:`invlab.losses.instaaug`).

- :class:`CropCandidates`: a fixed set of square candidate patches (one per cell of a
  ``g x g`` grid at each chosen scale, plus the full image) for a categorical crop
  distribution, sampled with the Gumbel trick (:func:`sample_categorical`).
- :class:`LearnedRange`: per-input asymmetric uniform ranges ``[-a_minus, a_plus]`` around
  the identity for the continuous parameters of *any* invlab transform; samples are a
  differentiable function of the ranges (pathwise gradients through ``Transform.apply``).
- :class:`LieAffine`: an affine transform parameterised by coordinates in the affine Lie
  algebra (``x' = expm(sum_i c_i G_i) x`` in normalised image coordinates), Augerino's
  parameterisation.

Random draws follow invlab's convention: on the CPU from a ``torch.Generator``, then moved
to the device, so a seeded run draws the same samples on any accelerator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from invlab.transforms.base import AffineTransform, Params, ParamSpec, Transform
from invlab.transforms.image import RandomResizedCrop

__all__ = [
    "gumbel_noise",
    "sample_categorical",
    "CropCandidates",
    "LearnedRange",
    "LieAffine",
    "LIE_GENERATORS",
    "DEFAULT_CROP_SCALES",
]

# (grid, side) per scale: 16 + 9 + 4 patches of half, 0.65 and 0.8 of the image side, plus
# the full image (30 candidates). The paper's Tiny-ImageNet set has 321 (receptive fields of
# the module's cells at several depths); at 32 px a coarser set keeps each patch meaningful.
DEFAULT_CROP_SCALES: tuple[tuple[int, float], ...] = ((4, 0.5), (3, 0.65), (2, 0.8))


def gumbel_noise(shape: Sequence[int], generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32) -> Tensor:
    """Standard Gumbel noise of ``shape``, drawn on the CPU from ``generator``."""
    u = torch.rand(tuple(shape), generator=generator, dtype=torch.float64)
    g = -torch.log(-torch.log(u.clamp(1e-12, 1.0 - 1e-12)))
    return g.to(device=device, dtype=dtype)


def sample_categorical(logits: Tensor, k: int, generator: torch.Generator | None = None,
                       replacement: bool = True) -> Tensor:
    """Draw ``k`` indices per row of ``logits (N, M)``: ``(N, k)`` int64.

    ``replacement=True``: ``k`` independent draws (Gumbel-max each) -- what the
    leave-one-out baseline of :func:`invlab.losses.instaaug.score_function_loss` needs to
    stay unbiased. ``replacement=False``: Gumbel-top-k, ``k`` *distinct* indices
    (sampling without replacement; e.g. distinct crops for test-time averaging).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, M), got shape {tuple(logits.shape)}")
    n, m = logits.shape
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not replacement and k > m:
        raise ValueError(f"cannot draw {k} distinct candidates out of {m}")
    logits = logits.detach()
    if replacement:
        g = gumbel_noise((k, n, m), generator, logits.device, logits.dtype)
        return (logits.unsqueeze(0) + g).argmax(-1).t().contiguous()
    g = gumbel_noise((n, m), generator, logits.device, logits.dtype)
    return (logits + g).topk(k, dim=-1).indices


class CropCandidates:
    """Square candidate patches for a categorical crop distribution.

    Args:
        scales: ``(grid, side)`` pairs: a ``grid x grid`` lattice of patches whose side is
            ``side`` of the image side, centred on the cells (shifted inwards where they
            would leave the image). Ordered scale by scale, each row-major (y, then x),
            matching a flattened ``(N, 1, grid, grid)`` score map.
        full_image: add the whole image as the last candidate.
        out_size: output size of a crop (default: the input's size).

    Attributes: ``boxes (M, 4)`` as ``(x0, y0, x1, y1)`` fractions (a
    :class:`~invlab.transforms.image.RandomResizedCrop` ``box``), ``scale_index (M,)``
    (which scale each belongs to; the full image is ``len(scales)``).
    """

    def __init__(self, scales: Sequence[Sequence[float]] = DEFAULT_CROP_SCALES, full_image: bool = True,
                 out_size: int | Sequence[int] | None = None):
        boxes, which = [], []
        self.scales: list[tuple[int, float]] = []
        for s, pair in enumerate(scales):
            if len(pair) != 2:
                raise ValueError(f"each crop scale is a (grid, side) pair, got {pair!r}")
            grid, side = int(pair[0]), float(pair[1])
            if grid < 1 or not 0.0 < side <= 1.0:
                raise ValueError(f"crop scale (grid={pair[0]}, side={pair[1]}): grid must be >= 1 and side in (0, 1]")
            self.scales.append((grid, side))
            centre = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
            start = (centre - side / 2).clamp(0.0, 1.0 - side)
            y0, x0 = torch.meshgrid(start, start, indexing="ij")
            x0, y0 = x0.reshape(-1), y0.reshape(-1)
            boxes.append(torch.stack([x0, y0, x0 + side, y0 + side], 1))
            which.append(torch.full((grid * grid,), s))
        if full_image:
            boxes.append(torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64))
            which.append(torch.tensor([len(self.scales)]))
        if not boxes:
            raise ValueError("no crop candidates: give at least one scale or full_image=True")
        self.full_image = bool(full_image)
        self.boxes = torch.cat(boxes).float()
        self.scale_index = torch.cat(which).long()
        self._crop = RandomResizedCrop(size=out_size)

    @property
    def num_candidates(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def num_scales(self) -> int:
        """Scales including the full image (the number of per-scale biases)."""
        return len(self.scales) + int(self.full_image)

    def box_params(self, index: Tensor) -> Params:
        """``{"box": (n, 4)}`` for candidate indices ``index (n,)`` (a crop's parameters)."""
        return {"box": self.boxes.to(index.device)[index]}

    def apply(self, x: Tensor, index: Tensor) -> Tensor:
        """Crop candidate ``index[i]`` out of image ``x[i]`` and resize it: ``(N, C, h, w)``."""
        if index.shape != (x.shape[0],):
            raise ValueError(f"index must be ({x.shape[0]},) (one candidate per image), got {tuple(index.shape)}")
        return self._crop.apply(x, self.box_params(index))

    def coverage(self, probs: Tensor, size: tuple[int, int]) -> Tensor:
        """Probability that each pixel lies inside the sampled crop: ``probs (N, M)`` ->
        ``(N, H, W)`` (the crop heat-map)."""
        h, w = size
        ys = (torch.arange(h, device=probs.device, dtype=probs.dtype) + 0.5) / h
        xs = (torch.arange(w, device=probs.device, dtype=probs.dtype) + 0.5) / w
        b = self.boxes.to(device=probs.device, dtype=probs.dtype)
        in_x = (xs >= b[:, :1]) & (xs < b[:, 2:3])  # (M, W)
        in_y = (ys >= b[:, 1:2]) & (ys < b[:, 3:4])  # (M, H)
        inside = (in_y.unsqueeze(2) & in_x.unsqueeze(1)).to(probs.dtype)  # (M, H, W)
        return torch.einsum("nm,mhw->nhw", probs, inside)

    def __repr__(self) -> str:
        return f"CropCandidates(scales={self.scales}, full_image={self.full_image})"


def _learnable_keys(transform: Transform) -> dict[str, ParamSpec]:
    return {k: s for k, s in transform.param_specs().items() if s.kind in ("continuous", "angle")}


class LearnedRange:
    """Per-input asymmetric uniform ranges over the continuous parameters of ``transform``.

    For each scalar component ``d`` of the learned parameters, the range around the
    identity value ``e_d`` is ``[e_d - a_minus_d, e_d + a_plus_d]`` with
    ``a = sigmoid(raw) * max`` (InstaAug's parameterisation). ``raw (N, 2 D)`` holds the
    minus halves then the plus halves. A sample is ``e - a_minus + u (a_minus + a_plus)``
    with ``u ~ U[0, 1]`` drawn from a generator: differentiable in ``raw``, so gradients
    flow pathwise through ``transform.apply``.

    Args:
        transform: any invlab transform with at least one ``continuous`` or ``angle``
            parameter (a ``Compose`` too: its keys are dotted).
        keys: which parameters to learn (default: all continuous/angle ones). Parameters
            not learned (e.g. a ``RandomApply``'s ``fired``, a noise ``seed``) are drawn
            from the transform's own sampler.
        max_minus, max_plus: the largest ``a_minus`` / ``a_plus`` (a number, or one per
            component). Default: the distance from the identity to the ends of the
            parameter's configured range (``Rotate((-180, 180))`` allows +-180 degrees).
    """

    def __init__(self, transform: Transform, keys: Sequence[str] | None = None,
                 max_minus: float | Sequence[float] | None = None,
                 max_plus: float | Sequence[float] | None = None):
        if not isinstance(transform, Transform):
            raise TypeError(f"LearnedRange expects an invlab Transform, got {type(transform).__name__}")
        specs = transform.param_specs()
        learnable = _learnable_keys(transform)
        kinds = {k: s.kind for k, s in specs.items()}
        if not learnable:
            raise ValueError(
                f"transform {transform.name!r} ({type(transform).__name__}) has no continuous parameter "
                f"to learn a range for (its parameters: {kinds or 'none'}); use a transform with a "
                "continuous or angle parameter (rotate, translate, scale, brightness, hue, ...)"
            )
        if keys is None:
            keys = list(learnable)
        keys = list(keys)
        for k in keys:
            if k not in specs:
                raise KeyError(f"transform {transform.name!r} has no parameter {k!r} (it has {sorted(specs)})")
            if k not in learnable:
                raise ValueError(
                    f"parameter {k!r} of transform {transform.name!r} is {specs[k].kind}, not continuous: "
                    "a learned range needs a continuous or angle parameter"
                )
        if not keys:
            raise ValueError("keys is empty: name at least one parameter to learn a range for")
        self.transform, self.keys = transform, keys
        self.shapes = {k: specs[k].shape for k in keys}
        identity = transform.identity_params(1)
        centre, lo, hi = [], [], []
        for k in keys:
            e = identity[k].reshape(-1).double()
            centre.append(e)
            lo.append(torch.full_like(e, specs[k].low))
            hi.append(torch.full_like(e, specs[k].high))
        self.centre = torch.cat(centre).float()
        dim = self.centre.numel()
        self.max_minus = self._max(max_minus, (self.centre - torch.cat(lo).float()).clamp_min(0), dim, "max_minus")
        self.max_plus = self._max(max_plus, (torch.cat(hi).float() - self.centre).clamp_min(0), dim, "max_plus")
        if float((self.max_minus + self.max_plus).max()) <= 0:
            raise ValueError(
                f"transform {transform.name!r}: the configured range of {keys} has zero width around the "
                "identity, so there is nothing to learn; widen the transform's range or give max_minus/max_plus"
            )

    @staticmethod
    def _max(value, default: Tensor, dim: int, name: str) -> Tensor:
        if value is None:
            return default
        t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
        if t.numel() == 1:
            t = t.expand(dim).clone()
        if t.numel() != dim or bool((t < 0).any()):
            raise ValueError(f"{name} must be one non-negative number or {dim} of them, got {value!r}")
        return t

    @property
    def dim(self) -> int:
        """Number of scalar components with a learned range."""
        return int(self.centre.numel())

    @property
    def num_outputs(self) -> int:
        """How many raw numbers per input the invariance module outputs (``2 * dim``)."""
        return 2 * self.dim

    def ranges(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        """``raw (N, 2 D)`` -> ``(a_minus, a_plus)``, each ``(N, D)`` in ``[0, max]``."""
        if raw.dim() != 2 or raw.shape[1] != self.num_outputs:
            raise ValueError(f"raw range outputs must be (N, {self.num_outputs}), got {tuple(raw.shape)}")
        mm = self.max_minus.to(raw.device, raw.dtype)
        mp = self.max_plus.to(raw.device, raw.dtype)
        return torch.sigmoid(raw[:, : self.dim]) * mm, torch.sigmoid(raw[:, self.dim :]) * mp

    def sample(self, a_minus: Tensor, a_plus: Tensor, generator: torch.Generator | None = None,
               size: tuple[int, int] | None = None) -> Params:
        """Parameters for ``transform.apply``: learned keys uniform in their per-input
        ranges (differentiable in ``a_minus``, ``a_plus``), the others from the transform."""
        n = a_minus.shape[0]
        u = torch.rand(n, self.dim, generator=generator).to(a_minus.device, a_minus.dtype)
        value = self.centre.to(a_minus.device, a_minus.dtype) - a_minus + u * (a_minus + a_plus)
        params = self.transform.sample(n, generator, device=a_minus.device, size=size)
        start = 0
        for k in self.keys:
            width = math.prod(self.shapes[k])
            params[k] = value[:, start : start + width].reshape(n, *self.shapes[k])
            start += width
        return params

    def apply(self, x: Tensor, a_minus: Tensor, a_plus: Tensor,
              generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        """Transform each image with parameters drawn from its own range."""
        params = self.sample(a_minus, a_plus, generator, size=tuple(x.shape[-2:]))
        return self.transform.apply(x, params), params

    def component_names(self) -> list[str]:
        """One name per scalar component (``"angle"``, ``"shift[0]"``, ...)."""
        out = []
        for k in self.keys:
            width = math.prod(self.shapes[k])
            out += [k] if not self.shapes[k] else [f"{k}[{i}]" for i in range(width)]
        return out

    def __repr__(self) -> str:
        return f"LearnedRange({self.transform!r}, keys={self.keys})"


# Generators of the affine Lie algebra in normalised coordinates ([-1, 1], y down), as
# Augerino; rotation is counter-clockwise on screen for a positive coordinate (as Rotate).
LIE_GENERATORS: dict[str, tuple[tuple[float, ...], ...]] = {
    "tx": ((0, 0, 1), (0, 0, 0), (0, 0, 0)),
    "ty": ((0, 0, 0), (0, 0, 1), (0, 0, 0)),
    "rotation": ((0, 1, 0), (-1, 0, 0), (0, 0, 0)),
    "scale": ((1, 0, 0), (0, 1, 0), (0, 0, 0)),
    "stretch": ((1, 0, 0), (0, -1, 0), (0, 0, 0)),
    "shear": ((0, 1, 0), (1, 0, 0), (0, 0, 0)),
}


class LieAffine(AffineTransform):
    """``x -> expm(sum_i c_i G_i) x`` in normalised image coordinates (Augerino).

    Args:
        generators: which of :data:`LIE_GENERATORS` (tx, ty, rotation, scale, stretch,
            shear), in this order in the parameter vector.
        widths: sampling width per generator: ``c_i ~ U[-w_i/2, w_i/2]`` (Augerino's
            convention; the learned version draws with learned widths instead).

    Parameter ``coords (n, G)``; rotation in radians, translation in half image sides
    (normalised units), scale/stretch as log-factors. Zeros are the identity.
    """

    name = "lie_affine"

    def __init__(self, generators: Sequence[str] = tuple(LIE_GENERATORS), widths: float | Sequence[float] = 0.0,
                 padding_mode: str = "zeros"):
        generators = list(generators)
        unknown = [g for g in generators if g not in LIE_GENERATORS]
        if unknown or not generators or len(set(generators)) != len(generators):
            raise ValueError(f"generators must be distinct names from {list(LIE_GENERATORS)}, got {generators}")
        self.generators = generators
        w = torch.as_tensor(widths, dtype=torch.float32).reshape(-1)
        if w.numel() == 1:
            w = w.expand(len(generators)).clone()
        if w.numel() != len(generators) or bool((w < 0).any()):
            raise ValueError(f"widths must be one non-negative number or one per generator, got {widths!r}")
        self.widths = w
        self.basis = torch.tensor([LIE_GENERATORS[g] for g in generators], dtype=torch.float32)  # (G, 3, 3)
        self.padding_mode = padding_mode

    def param_specs(self):
        half = float(self.widths.max()) / 2 if float(self.widths.max()) > 0 else math.pi
        return {"coords": ParamSpec("continuous", -half, half, shape=(len(self.generators),))}

    def _sample(self, n, generator, size=None):
        u = torch.rand(n, len(self.generators), generator=generator)
        return {"coords": (u - 0.5) * self.widths}

    def identity_params(self, n, device=None):
        return {"coords": torch.zeros(n, len(self.generators), device=device)}

    def normalised_matrix(self, coords: Tensor) -> Tensor:
        """``expm(sum_i c_i G_i)``: ``(n, 3, 3)`` in normalised coordinates."""
        c = coords if coords.is_floating_point() else coords.float()
        basis = self.basis.to(device=c.device, dtype=c.dtype)
        return torch.linalg.matrix_exp(torch.einsum("ng,gij->nij", c, basis))

    def matrix(self, params, size):
        h, w = size
        m = self.normalised_matrix(params["coords"])
        to_norm = torch.tensor([[2.0 / w, 0, -1], [0, 2.0 / h, -1], [0, 0, 1]], dtype=m.dtype, device=m.device)
        return torch.linalg.inv(to_norm) @ m @ to_norm

    def __repr__(self):
        return f"LieAffine(generators={self.generators}, widths={self.widths.tolist()})"
