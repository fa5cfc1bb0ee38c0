"""How invariant is a representation to a transformation? (Speicher et al., TMLR 2024)

For a representation ``f`` (any layer of any ``torch.nn.Module``) and a transformation
``T``, with ``x_i`` and ``x~_i`` twins (the same object/background or image under two
independent draws of ``T``) and ``pi`` a random derangement of the samples::

    inv(f, T) = mean_i ||f(x_i) - f(x~_i)||_2  /  mean_i ||f(x_i) - f(x_pi(i))||_2

0 means invariant; about 1 means ``T`` moves the representation as far as swapping the
image for another. The cosine variant replaces the distance by ``1 - cos``. The
confidence interval is a percentile bootstrap over samples (pairs fixed, indices
resampled). Feature maps are flattened (every unit counts) unless ``pool="mean"``.

>>> scores = invariance_score(encoder, controlled_set, "rotate", layers=["layer3", "output"])
>>> scores["output"].score, scores["output"].ci
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.evaluation.layers import LayerTaps, flatten_representation, resolve_layers
from invlab.evaluation.paired_views import PairedViews
from invlab.progress import progress as _progress

__all__ = ["InvarianceScore", "invariance_score", "invariance_profile", "bootstrap_ratio"]


@dataclass
class InvarianceScore:
    transform: str
    layer: str
    metric: str  # l2 | cosine
    score: float
    ci_low: float
    ci_high: float
    twin_distance: float  # mean distance between twins (numerator)
    swap_distance: float  # mean distance to another sample (denominator)
    num_samples: int

    @property
    def ci(self) -> tuple[float, float]:
        return self.ci_low, self.ci_high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``mean(num[idx]) / mean(den[idx])`` over index resamples."""
    n = len(num)
    if n < 2 or resamples < 1:
        r = float(num.mean() / max(den.mean(), 1e-12)) if n else float("nan")
        return r, r
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    block = max(1, min(200, (1 << 22) // n))  # at most 4M indices (32 MiB) at a time, whatever n
    for s in range(0, resamples, block):
        idx = rng.integers(0, n, (min(block, resamples - s), n))
        ratios[s : s + len(idx)] = num[idx].mean(1) / np.maximum(den[idx].mean(1), 1e-12)
    alpha = (1 - confidence) / 2
    return float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


def _distance(a: Tensor, b: Tensor, metric: str) -> Tensor:
    if metric == "l2":
        return (a - b).norm(dim=1)
    if metric == "cosine":
        return 1 - F.cosine_similarity(a, b, dim=1, eps=1e-12)
    raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")


def _device(model: nn.Module, device) -> torch.device:
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


@torch.no_grad()
def invariance_score(
    encoder: nn.Module,
    data: Any,
    transform: str | dict | Any,
    layers: Sequence[str] | str | None = None,
    *,
    metrics: Sequence[str] = ("l2",),
    num_samples: int | None = 1000,
    batch_size: int = 256,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    pool: str = "flatten",
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, InvarianceScore]:
    """Invariance of ``encoder`` to ``transform`` at each of ``layers``.

    Args:
        encoder: any module taking image batches ``(N, C, H, W)`` in ``[0, 1]``; run in
            eval mode (BatchNorm uses its running statistics), mode restored afterwards.
        data: ControlledImages (``transform`` acts on the object before pasting),
            TransformedImages, an ImageArray or an image tensor (it acts on the image).
        transform: a Transforms-2D name (``"rotate"``), a spec mapping, or (whole images
            only) a Transform instance.
        layers: module names (see :mod:`invlab.evaluation.layers`); default the output.
        metrics: ``"l2"`` (the paper's) and/or ``"cosine"``.

    Returns ``{layer: InvarianceScore}`` for one metric, else ``{f"{layer}/{metric}": ...}``.
    """
    pairs = PairedViews(data, transform, num_samples, seed)
    taps_spec = resolve_layers(encoder, layers)
    dev = _device(encoder, device)
    n = pairs.n
    if n < 2:
        raise ValueError("invariance needs at least 2 samples")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)
    num = {(label, m): np.empty(n) for label, _ in taps_spec for m in metrics}
    den = {(label, m): np.empty(n) for label, _ in taps_spec for m in metrics}
    was_training = encoder.training
    encoder.eval()
    try:
        with LayerTaps(encoder, taps_spec) as taps:
            starts = list(range(0, n, batch_size))
            for s in _progress(starts, f"invariance to {pairs.name}", len(starts), progress, "batch"):
                idx = order[s : s + batch_size]
                if len(idx) < 2:  # a lone last sample: pair it within the previous batch
                    idx = order[s - 1 : s + 1]
                a = taps(pairs.render(idx, 0).to(dev))
                b = taps(pairs.render(idx, 1).to(dev))
                shift = torch.roll(torch.arange(len(idx)), 1)  # a derangement within the batch
                for label, _ in taps_spec:
                    fa = flatten_representation(a[label], pool)
                    fb = flatten_representation(b[label], pool)
                    for m in metrics:
                        d_twin = _distance(fa, fb, m).cpu().numpy()
                        d_swap = _distance(fa, fa[shift], m).cpu().numpy()
                        num[(label, m)][idx.numpy()] = d_twin
                        den[(label, m)][idx.numpy()] = d_swap
    finally:
        encoder.train(was_training)
    out = {}
    for label, _ in taps_spec:
        for m in metrics:
            nu, de = num[(label, m)], den[(label, m)]
            lo, hi = bootstrap_ratio(nu, de, bootstrap, confidence, seed)
            key = label if len(metrics) == 1 else f"{label}/{m}"
            out[key] = InvarianceScore(pairs.name, label, m, float(nu.mean() / max(de.mean(), 1e-12)), lo, hi,
                                       float(nu.mean()), float(de.mean()), n)
    return out


def invariance_profile(
    encoder: nn.Module, data: Any, transforms: Sequence[str | dict], layers: Sequence[str] | str | None = None,
    **kwargs: Any,
) -> list[InvarianceScore]:
    """:func:`invariance_score` for each transformation: one row per (transform, layer, metric)."""
    rows: list[InvarianceScore] = []
    for t in transforms:
        rows.extend(invariance_score(encoder, data, t, layers, **kwargs).values())
    return rows
