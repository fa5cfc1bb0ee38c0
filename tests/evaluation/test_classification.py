"""The [CLS] linear probe: C is chosen inside the training split, the test split never
influences the choice; accuracy and macro-F1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.evaluation.classification import classification_scores, encode_series, logistic_probe
from invlab.nn import PatchTransformer


def _blobs(n, seed, shift=2.0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 5)) + shift * np.eye(3, 5)[y]
    return x, y


def test_probe_separates_blobs_and_reports_scores():
    tx, ty = _blobs(60, 0)
    qx, qy = _blobs(90, 1)
    result = logistic_probe(tx, ty, qx, qy, folds=5)
    assert result.accuracy > 0.8 and 0 < result.macro_f1 <= 1
    assert result.folds == 5 and set(result.cv_accuracy) == {1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0}
    assert result.c == max(result.cv_accuracy, key=lambda c: (result.cv_accuracy[c], -abs(np.log10(c))))


def test_test_split_never_influences_the_choice():
    tx, ty = _blobs(60, 2)
    qx, qy = _blobs(90, 3)
    a = logistic_probe(tx, ty, qx, qy)
    b = logistic_probe(tx, ty, qx[::-1] * 5, np.random.default_rng(0).permutation(qy))
    assert a.c == b.c and a.cv_accuracy == b.cv_accuracy


def test_few_samples_per_class_reduce_or_skip_cv():
    tx, ty = _blobs(9, 4)  # three per class
    qx, qy = _blobs(30, 5)
    assert logistic_probe(tx, ty, qx, qy, folds=5).folds == 3
    single = logistic_probe(np.vstack([tx, [[9, 9, 9, 9, 9]]]), np.append(ty, 3), qx, qy)
    assert single.folds == 0 and single.c == 1.0 and single.cv_accuracy == {}
    with pytest.raises(ValueError, match="two classes"):
        logistic_probe(tx, np.zeros(9, dtype=int), qx, qy)


def test_scores_and_encoding():
    s = classification_scores(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
    assert s["accuracy"] == 0.75 and s["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    enc = PatchTransformer(2, 24, patch_len=8, stride=8, d_model=8, n_heads=2, channel_independent=False).eval()
    x = np.random.default_rng(0).normal(size=(5, 2, 24)).astype(np.float32)
    feats = encode_series(enc, x, batch_size=2)
    torch.testing.assert_close(feats, enc(torch.from_numpy(x))[:, 0])
