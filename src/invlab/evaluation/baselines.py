"""Peer baselines a practitioner reaches for instead of a learnt representation, run through
their own library so that the comparison is with the real thing.

MiniRocket (Dempster, Schmidt, Webb, KDD 2021) as aeon implements it:
``aeon.classification.convolution_based.MiniRocketClassifier`` (the MiniRocket transform,
which handles univariate and multivariate series ``(N, C, T)`` itself, then a scaler and
``RidgeClassifierCV`` with its built-in leave-one-out choice of the penalty on the training
split). Nothing here re-implements it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from invlab.evaluation.classification import classification_scores

__all__ = ["minirocket_scores", "warm_up_minirocket"]


def _classifier(seed: int, n_jobs: int):
    try:
        from aeon.classification.convolution_based import MiniRocketClassifier
    except ImportError:  # pragma: no cover - aeon is in the timeseries extra
        raise ImportError("the MiniRocket baseline needs aeon (pip install 'invlab[timeseries]')") from None
    return MiniRocketClassifier(random_state=seed, n_jobs=n_jobs)


def minirocket_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      seed: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """Fit aeon's MiniRocketClassifier on ``train_x (N, C, T)`` / ``train_y (N,)`` (default
    settings: 10,000 kernels; ``seed`` draws them), score ``test_x`` once. Returns accuracy,
    macro-F1, ``fit_seconds``, ``predict_seconds`` and which aeon classes ran."""
    import aeon

    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    if train_x.ndim != 3 or test_x.ndim != 3 or train_x.shape[1:] != test_x.shape[1:]:
        raise ValueError(f"expected series (N, C, T) of equal C and T, got {train_x.shape} and {test_x.shape}")
    clf = _classifier(seed, n_jobs)
    t0 = time.perf_counter()
    clf.fit(train_x, np.asarray(train_y))
    t1 = time.perf_counter()
    pred = clf.predict(test_x)
    t2 = time.perf_counter()
    transform = type(clf.pipeline_.steps[0][1])
    return {
        **classification_scores(pred, np.asarray(test_y)),
        "fit_seconds": t1 - t0, "predict_seconds": t2 - t1,
        "estimator": f"{type(clf).__module__}.{type(clf).__qualname__}",
        "transform": f"{transform.__module__}.{transform.__qualname__}",
        "aeon_version": aeon.__version__,
    }


def warm_up_minirocket(channels: tuple[int, ...] = (1, 2)) -> float:
    """Compile aeon's numba kernels on tiny random data (univariate and multivariate) so that
    the timed fits measure the method, not the compiler. Returns the seconds it took."""
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for c in channels:
        x = rng.normal(size=(8, c, 32))
        y = np.arange(8) % 2
        minirocket_scores(x, y, x, y)
    return time.perf_counter() - t0
