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


def test_svm_probe_separates_what_a_linear_probe_cannot():
    rng = np.random.default_rng(6)
    def rings(n):  # class = inside or outside the unit circle: not linearly separable
        x = rng.normal(size=(n, 2)) * 1.2
        return x, (np.linalg.norm(x, axis=1) > 1.0).astype(int)
    (tx, ty), (qx, qy) = rings(120), rings(200)
    svm = logistic_probe(tx, ty, qx, qy, classifier="svm")
    linear = logistic_probe(tx, ty, qx, qy)
    assert svm.accuracy > 0.85 and svm.accuracy > linear.accuracy + 0.1
    assert set(svm.cv_accuracy) == {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4}
    shuffled = logistic_probe(tx, ty, qx[::-1], qy[::-1], classifier="svm")  # test never influences the choice
    assert shuffled.c == svm.c and shuffled.cv_accuracy == svm.cv_accuracy
    with pytest.raises(ValueError, match="probe classifier must be one of logistic, svm"):
        logistic_probe(tx, ty, qx, qy, classifier="forest")


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


@pytest.mark.parametrize("channel_independent", [False, True])
@pytest.mark.parametrize("features, width", [("instance", 1), ("tokens", 2), ("all", 3)])
@pytest.mark.parametrize("level_scale", [False, True])
def test_probe_features_have_the_documented_shapes_and_values(channel_independent, features, width, level_scale):
    c, d = 3, 8
    enc = PatchTransformer(c, 32, patch_len=8, stride=8, d_model=d, n_heads=2,
                           channel_independent=channel_independent).eval()
    x = np.random.default_rng(1).normal(size=(5, c, 32)).astype(np.float32) * 3 + 2
    feats = encode_series(enc, x, batch_size=2, features=features, level_scale=level_scale)
    per_series = c * width * d if channel_independent else width * d
    assert feats.shape == (5, per_series + (2 * c if level_scale else 0))
    # a naive reading of the tokens: [CLS], then mean and max over tokens 1..T_p, per channel block
    with torch.no_grad():
        tokens = enc(torch.from_numpy(x))
    parts = {"instance": [tokens[:, 0]], "tokens": [tokens[:, 1:].mean(1), tokens[:, 1:].max(1).values]}
    parts["all"] = parts["instance"] + parts["tokens"]
    expected = torch.cat(parts[features], dim=-1).reshape(5, per_series)
    torch.testing.assert_close(feats[:, :per_series], expected)
    if level_scale:
        naive = [[s[k].mean() for k in range(c)] + [np.log(np.sqrt(s[k].var() + 1e-5)) for k in range(c)] for s in x]
        torch.testing.assert_close(feats[:, per_series:], torch.tensor(naive, dtype=torch.float32), rtol=1e-5, atol=1e-5)


def test_level_scale_features_depend_on_each_series_alone():
    """No label, no other series (of the training or the test split) enters a row."""
    from invlab.evaluation.classification import series_level_scale

    enc = PatchTransformer(2, 24, patch_len=8, stride=8, d_model=8, n_heads=2, channel_independent=False).eval()
    rng = np.random.default_rng(2)
    train = rng.normal(size=(4, 2, 24)).astype(np.float32)
    alone = encode_series(enc, train, level_scale=True, features="all")
    with_test = encode_series(enc, np.concatenate([train, 100 * rng.normal(size=(7, 2, 24)).astype(np.float32)]),
                              batch_size=3, level_scale=True, features="all")
    torch.testing.assert_close(with_test[:4], alone)
    ls = series_level_scale(torch.from_numpy(train))
    torch.testing.assert_close(series_level_scale(torch.from_numpy(train[[2]])), ls[[2]])
    # the level and scale are exactly what instance normalisation removes
    from invlab.nn.patch_transformer import instance_normalize

    _, stats = instance_normalize(torch.from_numpy(train))
    torch.testing.assert_close(ls, torch.cat([stats.mean[..., 0], stats.std[..., 0].log()], 1))


def test_probe_features_refuse_unknown_options_and_bad_shapes():
    from invlab.evaluation.classification import series_level_scale

    enc = PatchTransformer(1, 16, patch_len=8, stride=8, d_model=8, n_heads=2, channel_independent=False)
    with pytest.raises(ValueError, match="instance, tokens, all.*'cls'"):
        encode_series(enc, np.zeros((2, 1, 16), np.float32), features="cls")
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        series_level_scale(torch.zeros(4, 16))


@pytest.mark.parametrize("channels", [1, 3])
def test_minirocket_rows_come_from_aeon(channels, monkeypatch):
    """The peer row is aeon's MiniRocketClassifier, called as aeon ships it (fit, predict)."""
    from aeon.classification.convolution_based import MiniRocketClassifier

    from invlab.evaluation.baselines import minirocket_scores

    rng = np.random.default_rng(3)
    y = np.arange(40) % 2
    x = rng.normal(size=(40, channels, 50)) + 2 * y[:, None, None] * np.sin(np.linspace(0, 6, 50))
    calls = []
    original_fit = MiniRocketClassifier.fit

    def spy(self, *args, **kwargs):
        calls.append((type(self), self.random_state))
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(MiniRocketClassifier, "fit", spy)
    row = minirocket_scores(x[:20], y[:20], x[20:], y[20:], seed=5)
    assert calls == [(MiniRocketClassifier, 5)]
    assert row["estimator"] == "aeon.classification.convolution_based._minirocket.MiniRocketClassifier"
    assert row["transform"].startswith("aeon.transformations.collection.convolution_based")
    reference = MiniRocketClassifier(random_state=5).fit(x[:20], y[:20]).predict(x[20:])
    assert row["accuracy"] == pytest.approx(float((reference == y[20:]).mean()))
    assert row["accuracy"] > 0.9 and row["fit_seconds"] > 0
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        minirocket_scores(x[:20, 0], y[:20], x[20:, 0], y[20:])
