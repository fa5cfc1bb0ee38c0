"""How equivariant is a representation to a transformation?

Two complementary measures for a representation ``f`` and a transformation ``T_g``:

1. **Parameter recovery**: a held-out linear probe predicts each of ``g``'s parameters
   from ``f(T_g x)`` (the transform's :class:`~invlab.transforms.ParamSpec` s say what
   each is): accuracy for discrete and binary parameters (with the majority-class
   chance level beside it), R^2 for continuous ones, and R^2 on ``(cos, sin)`` for angles.
   Parameters that only matter when a RandomApply fired are probed on the fired samples.
2. **Linear map error** (Lenc & Vedaldi, CVPR 2015): how well the best linear map ``M_g``
   sends ``f(x)`` to ``f(T_g x)``, on held-out pairs: the fraction of variance of
   ``f(T_g x)`` left unexplained. ``g`` is grouped into ``bins`` cells (exact values for
   discrete parameters, k-means on the embedded parameters otherwise) with one map per
   cell; the ridge penalty shrinks ``M_g`` towards the identity. 0: ``T`` acts linearly
   on the representation (equivariance; ``M = I`` is invariance, reported beside it as
   ``identity_error``).

Features with more than ``max_dim`` (512) dimensions are projected onto their top
principal components (fit on the training split) first; linear probes on them are still
linear in the representation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from invlab.evaluation.invariance import _device
from invlab.evaluation.layers import LayerTaps, flatten_representation, resolve_layers
from invlab.evaluation.paired_views import PairedViews
from invlab.progress import progress as _progress
from invlab.seeding import bounded_seed
from invlab.transforms.base import ParamSpec

__all__ = ["ParamRecovery", "EquivarianceScore", "equivariance_score", "equivariance_profile"]


@dataclass
class ParamRecovery:
    param: str
    kind: str  # continuous | angle | discrete | binary
    metric: str  # r2 | accuracy
    score: float
    chance: float  # accuracy of the majority class (discrete), 0 for R^2
    num_train: int
    num_test: int


@dataclass
class EquivarianceScore:
    transform: str
    layer: str
    params: dict[str, ParamRecovery] = field(default_factory=dict)
    map_error: float = float("nan")  # held-out unexplained variance of the best linear maps
    identity_error: float = float("nan")  # the same for M = I (0 = invariant)
    bins: int = 0
    feature_dim: int = 0
    num_samples: int = 0

    @property
    def recovery(self) -> float:
        """Mean probe score over the parameters (accuracy or R^2)."""
        scores = [p.score for p in self.params.values()]
        return float(np.mean(scores)) if scores else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recovery"] = self.recovery
        return out


# -- helpers --------------------------------------------------------------------------------
class _Projection:
    """Standardise, then (if wide) project onto the top principal components."""

    def __init__(self, x: np.ndarray, max_dim: int):
        self.mean = x.mean(0)
        self.std = x.std(0) + 1e-6
        z = (x - self.mean) / self.std
        self.basis = None
        if z.shape[1] > max_dim:
            _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
            self.basis = vt[:max_dim].T

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return z if self.basis is None else z @ self.basis


def _ridge_r2(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import RidgeCV

    keep = ytr.std(0) > 1e-8
    if not keep.any():
        return float("nan")
    ytr, yte = ytr[:, keep], yte[:, keep]
    model = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(xtr, ytr)
    pred = model.predict(xte).reshape(yte.shape)
    ss_res = ((yte - pred) ** 2).sum(0)
    ss_tot = ((yte - ytr.mean(0)) ** 2).sum(0)
    return float(np.mean(1 - ss_res / np.maximum(ss_tot, 1e-12)))


def _logistic_accuracy(xtr, ytr, xte, yte, seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    values, counts = np.unique(ytr, return_counts=True)
    chance = float(np.mean(yte == values[np.argmax(counts)]))
    if len(values) < 2:
        return float("nan"), chance
    model = LogisticRegression(C=1.0, max_iter=2000, random_state=bounded_seed(seed)).fit(xtr, ytr)
    return float(np.mean(model.predict(xte) == yte)), chance


def _targets(spec: ParamSpec, v: np.ndarray) -> np.ndarray:
    v = v.reshape(len(v), -1).astype(np.float64)
    if spec.kind == "angle":
        a = 2 * math.pi * v / spec.period
        return np.concatenate([np.cos(a), np.sin(a)], 1)
    return v


def _param_embedding(specs: dict[str, ParamSpec], params: dict[str, np.ndarray]) -> np.ndarray:
    """Each sample's parameters as a vector for grouping: one-hot for discrete/binary,
    (cos, sin) for angles, standardised values for continuous ones (zero when a
    RandomApply did not fire)."""
    cols = []
    for key, spec in specs.items():
        v = params[key].reshape(len(params[key]), -1)
        if spec.kind in ("discrete", "binary"):
            for c in np.unique(v):
                cols.append((v == c).all(1, keepdims=True).astype(np.float64))
            continue
        t = _targets(spec, v)
        t = (t - t.mean(0)) / (t.std(0) + 1e-8)
        fired = _fired(key, params)
        if fired is not None:
            t = t * fired[:, None]
        cols.append(t)
    return np.concatenate(cols, 1) if cols else np.zeros((len(next(iter(params.values()))), 1))


def _fired(key: str, params: dict[str, np.ndarray]) -> np.ndarray | None:
    prefix = key.rsplit(".", 1)[0]
    fired_key = f"{prefix}.fired"
    if key == fired_key or fired_key not in params:
        return None
    return params[fired_key].astype(bool).reshape(-1)


def _groups(embedding: np.ndarray, bins: int, seed: int) -> np.ndarray:
    rows, inverse = np.unique(np.round(embedding, 6), axis=0, return_inverse=True)
    if len(rows) <= bins:
        return inverse.reshape(-1)
    from sklearn.cluster import KMeans

    return KMeans(bins, n_init=4, random_state=bounded_seed(seed)).fit_predict(embedding)


def _map_errors(f0: np.ndarray, ft: np.ndarray, groups: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """Held-out unexplained variance of per-group ridge maps f0 -> ft, and of the identity."""
    from sklearn.linear_model import RidgeCV

    total = ((ft[test] - ft[train].mean(0)) ** 2).sum()
    if total <= 1e-12:
        return float("nan"), float("nan")
    residual = 0.0
    for gid in np.unique(groups):
        tr, te = train[groups[train] == gid], test[groups[test] == gid]
        if len(te) == 0:
            continue
        if len(tr) < 3:
            residual += ((ft[te] - ft[train].mean(0)) ** 2).sum()
            continue
        # fit M - I (ridge shrinks towards the identity map, not towards zero)
        model = RidgeCV(alphas=np.logspace(-3, 4, 15)).fit(f0[tr], ft[tr] - f0[tr])
        residual += ((ft[te] - f0[te] - model.predict(f0[te])) ** 2).sum()
    identity = ((ft[test] - f0[test]) ** 2).sum()
    return float(residual / total), float(identity / total)


# -- the measure ------------------------------------------------------------------------
@torch.no_grad()
def equivariance_score(
    encoder: nn.Module,
    data: Any,
    transform: str | dict | Any,
    layers: Sequence[str] | str | None = None,
    *,
    num_samples: int | None = 2000,
    test_fraction: float = 0.3,
    bins: int = 8,
    max_dim: int = 512,
    batch_size: int = 256,
    pool: str = "flatten",
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, EquivarianceScore]:
    """Parameter recovery and linear-map error of ``encoder`` under ``transform`` at
    each of ``layers`` (arguments as :func:`~invlab.evaluation.invariance.invariance_score`).

    Feature maps are average-pooled down to at most ``8 * max_dim`` units before the
    projection to ``max_dim`` principal components."""
    if not 0.05 <= test_fraction <= 0.95:
        raise ValueError(f"test_fraction must lie within [0.05, 0.95], got {test_fraction}")
    pairs = PairedViews(data, transform, num_samples, seed)
    taps_spec = resolve_layers(encoder, layers)
    dev = _device(encoder, device)
    n = pairs.n
    if n < 10:
        raise ValueError(f"equivariance needs at least 10 samples, got {n}")
    feats_t: dict[str, list[np.ndarray]] = {label: [] for label, _ in taps_spec}
    feats_0: dict[str, list[np.ndarray]] = {label: [] for label, _ in taps_spec}
    was_training = encoder.training
    encoder.eval()
    try:
        with LayerTaps(encoder, taps_spec) as taps:
            starts = list(range(0, n, batch_size))
            for s in _progress(starts, f"equivariance to {pairs.name}", len(starts), progress, "batch"):
                idx = torch.arange(s, min(s + batch_size, n))
                at = taps(pairs.render(idx, 0).to(dev))
                a0 = taps(pairs.render(idx, "identity").to(dev))
                for label, _ in taps_spec:
                    feats_t[label].append(flatten_representation(at[label], pool, 8 * max_dim).cpu().numpy())
                    feats_0[label].append(flatten_representation(a0[label], pool, 8 * max_dim).cpu().numpy())
    finally:
        encoder.train(was_training)

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = max(2, int(round(n * test_fraction)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    specs = pairs.transform.param_specs()
    params = {k: v.numpy() for k, v in pairs.params[0].items()}
    groups = _groups(_param_embedding(specs, params), bins, seed)

    out = {}
    for label, _ in taps_spec:
        ft = np.concatenate(feats_t[label]).astype(np.float64)
        f0 = np.concatenate(feats_0[label]).astype(np.float64)
        proj = _Projection(np.concatenate([ft[train], f0[train]]), max_dim)
        zt, z0 = proj(ft), proj(f0)
        result = EquivarianceScore(pairs.name, label, bins=int(len(np.unique(groups))), feature_dim=int(ft.shape[1]),
                                   num_samples=n)
        for key, spec in specs.items():
            fired = _fired(key, params)
            tr = train if fired is None else train[fired[train]]
            te = test if fired is None else test[fired[test]]
            if len(tr) < 5 or len(te) < 2:
                continue
            v = params[key]
            if spec.kind in ("discrete", "binary"):
                y = v.reshape(len(v), -1)
                if y.shape[1] != 1:
                    continue
                acc, chance = _logistic_accuracy(zt[tr], y[tr, 0].astype(np.int64), zt[te], y[te, 0].astype(np.int64), seed)
                if not math.isnan(acc):
                    result.params[key] = ParamRecovery(key, spec.kind, "accuracy", acc, chance, len(tr), len(te))
            else:
                y = _targets(spec, v)
                r2 = _ridge_r2(zt[tr], y[tr], zt[te], y[te])
                if not math.isnan(r2):
                    result.params[key] = ParamRecovery(key, spec.kind, "r2", r2, 0.0, len(tr), len(te))
        result.map_error, result.identity_error = _map_errors(z0, zt, groups, train, test)
        out[label] = result
    return out


def equivariance_profile(
    encoder: nn.Module, data: Any, transforms: Sequence[str | dict], layers: Sequence[str] | str | None = None,
    **kwargs: Any,
) -> list[EquivarianceScore]:
    """:func:`equivariance_score` for each transformation: one row per (transform, layer)."""
    rows: list[EquivarianceScore] = []
    for t in transforms:
        rows.extend(equivariance_score(encoder, data, t, layers, **kwargs).values())
    return rows
