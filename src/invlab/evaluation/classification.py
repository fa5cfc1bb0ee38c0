"""Classification by a linear probe on frozen time-series encoders.

What the probe reads (``features``; ``D`` model width, ``C`` channels)::

    "instance"  the method's instance embedding ([CLS] for TimeDRL)        (N, D)
    "tokens"    mean, then max, over the timestamp (patch) tokens          (N, 2D)
    "all"       instance, then mean, then max                              (N, 3D)
    + level_scale: each input series' per-channel means, then the logs of
      its per-channel standard deviations [m_1..m_C, log s_1..log s_C]     (N, ... + 2C)

A channel-independent encoder reads every channel's tokens separately: ``C`` blocks of
``D`` / ``2D`` / ``3D``, channel by channel, before the level/scale columns.

The level and scale are what the encoder's instance normalisation removes; they are
computed from each series alone (no labels, no other series), so the test features of a
series never depend on the training split or on other test series.

The probe is multinomial logistic regression on standardised features (statistics of the
training split), or (``classifier="svm"``) a support-vector machine with an RBF kernel
(``gamma="scale"``) on the raw features, the classifier TS2Vec's paper evaluates with. Its
inverse regularisation ``C`` is chosen by stratified k-fold cross-validation **inside the
training split** (the validation folds); the test split is used once, for the final score.
Accuracy and macro-F1 are reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from invlab.progress import progress as progress_bar
from invlab.seeding import bounded_seed

__all__ = [
    "encode_series", "series_level_scale", "ProbeSelection", "logistic_probe", "classification_scores",
    "DEFAULT_C_GRID", "SVM_C_GRID", "PROBE_FEATURES", "PROBE_CLASSIFIERS",
]

DEFAULT_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
SVM_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)  # TS2Vec's grid (less its C = inf)
PROBE_CLASSIFIERS = ("logistic", "svm")
PROBE_FEATURES = ("instance", "tokens", "all")


def series_level_scale(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-series, per-channel level and scale of ``x (N, C, T)`` -> ``(N, 2C)``: the means
    over time, then the logs of the standard deviations (biased, ``sqrt(var + eps)``, the
    statistics instance normalisation divides by). Row ``i`` depends on series ``i`` only."""
    if x.dim() != 3:
        raise ValueError(f"expected series (N, C, T), got shape {tuple(x.shape)}")
    x = x.double()
    mean = x.mean(dim=-1)
    std = torch.sqrt(x.var(dim=-1, unbiased=False) + eps)
    return torch.cat([mean, std.log()], dim=1).float()


def _pool(encoder, tokens: Tensor, instance: str, features: str) -> Tensor:
    """Tokens ``(B', 1 + T_p, D)`` -> probe features per series (see the module docstring).
    An encoder without an instance token (TS2Vec: ``(B, T, D)``) pools its own (``encoder.pool``)."""
    own = getattr(encoder, "pool", None)
    if own is not None:
        return own(tokens, features)
    parts = []
    if features in ("instance", "all"):
        parts.append(encoder.instance_embedding(tokens, instance))
    if features in ("tokens", "all"):
        timestamps = tokens[:, 1:]
        parts += [timestamps.mean(dim=1), timestamps.amax(dim=1)]
    return encoder.per_series(torch.cat(parts, dim=-1))


@torch.no_grad()
def encode_series(encoder, x: np.ndarray | Tensor, batch_size: int = 256, instance: str = "cls",
                  show_progress: bool = False, features: str = "instance", level_scale: bool = False) -> Tensor:
    """Probe features of series ``x (N, C, T)``, encoder in eval mode: the instance
    embeddings ``(N, D)`` by default (``(N, C * D)`` for a channel-independent encoder);
    ``features`` and ``level_scale`` as in the module docstring."""
    if features not in PROBE_FEATURES:
        raise ValueError(f"probe features must be one of {', '.join(PROBE_FEATURES)}, got {features!r}")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    try:
        starts = range(0, len(x), batch_size)
        for s in progress_bar(starts, "series", len(starts), show_progress, "batch"):
            batch = torch.as_tensor(np.asarray(x[s : s + batch_size]), dtype=torch.float32).to(device)
            pooled = _pool(encoder, encoder(batch), instance, features)
            if level_scale:
                pooled = torch.cat([pooled, series_level_scale(batch).to(pooled.dtype)], dim=1)
            out.append(pooled.float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out)


def classification_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (over the classes occurring in ``target`` or ``pred``)."""
    from sklearn.metrics import f1_score

    pred, target = np.asarray(pred), np.asarray(target)
    return {
        "accuracy": float((pred == target).mean()),
        "macro_f1": float(f1_score(target, pred, average="macro", zero_division=0)),
    }


@dataclass
class ProbeSelection:
    accuracy: float
    macro_f1: float
    c: float
    folds: int
    cv_accuracy: dict[float, float] = field(default_factory=dict)
    train_accuracy: float = 0.0


def _fit(train_x: np.ndarray, train_y: np.ndarray, c: float, seed: int, classifier: str = "logistic"):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if classifier == "svm":
        model = SVC(C=c, kernel="rbf", gamma="scale", random_state=bounded_seed(seed))
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=bounded_seed(seed)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at extreme C are expected in a grid
        model.fit(train_x, train_y)
    return model


def logistic_probe(
    train_x: Tensor | np.ndarray, train_y: Tensor | np.ndarray, test_x: Tensor | np.ndarray, test_y: Tensor | np.ndarray,
    grid: Sequence[float] | None = None, folds: int = 5, seed: int = 0, classifier: str = "logistic",
) -> ProbeSelection:
    """Select ``C`` by stratified ``folds``-fold CV on the training split (fewer folds when
    a class has fewer samples; no selection, ``C = 1``, when a class has a single sample),
    refit on the whole training split and score the test split once. ``classifier``:
    ``"logistic"`` (grid ``DEFAULT_C_GRID``) or ``"svm"`` (RBF kernel, grid ``SVM_C_GRID``)."""
    from sklearn.model_selection import StratifiedKFold

    if classifier not in PROBE_CLASSIFIERS:
        raise ValueError(f"probe classifier must be one of {', '.join(PROBE_CLASSIFIERS)}, got {classifier!r}")
    if grid is None:
        grid = SVM_C_GRID if classifier == "svm" else DEFAULT_C_GRID
    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected (N, D) features with equal D, got {train_x.shape} and {test_x.shape}")
    if len(np.unique(train_y)) < 2:
        raise ValueError("the probe needs at least two classes in the training split")
    counts = np.bincount(train_y)
    k = min(folds, int(counts[counts > 0].min()))
    cv: dict[float, float] = {}
    if k >= 2:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=bounded_seed(seed))
        for c in grid:
            correct = 0
            for fit_idx, held_idx in splitter.split(train_x, train_y):
                model = _fit(train_x[fit_idx], train_y[fit_idx], c, seed, classifier)
                correct += int((model.predict(train_x[held_idx]) == train_y[held_idx]).sum())
            cv[float(c)] = correct / len(train_y)
        best = max(cv, key=lambda c: (cv[c], -abs(np.log10(c))))  # ties: the C closest to 1
    else:
        best = 1.0
    model = _fit(train_x, train_y, best, seed, classifier)
    scores = classification_scores(model.predict(test_x), test_y)
    train_acc = float((model.predict(train_x) == train_y).mean())
    return ProbeSelection(scores["accuracy"], scores["macro_f1"], best, k if k >= 2 else 0, cv, train_acc)
