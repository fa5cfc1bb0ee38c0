"""Forecasting evaluation: the weighted ridge against a direct least-squares solution,
sufficient statistics against direct errors, validation-only selection, the SGD head, and
the row order of encoded windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.evaluation.forecasting import (
    EncodedWindows,
    RidgeProblem,
    encode_windows,
    fit_ridge,
    fit_sgd,
    forecast_errors,
    gram_matrix,
    tail_gram,
)
from invlab.nn import PatchTransformer


def _problem(rows=300, features=6, horizon=3, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(rows, features, generator=g)
    std = 0.5 + torch.rand(rows, generator=g)
    mean = torch.randn(rows, generator=g)
    w = torch.randn(features, horizon, generator=g)
    b = torch.randn(horizon, generator=g)
    y = std[:, None] * (f @ w + b) + mean[:, None] + noise * torch.randn(rows, horizon, generator=g)
    return EncodedWindows(f, mean, std, channels=1), y


def _direct_ridge(enc, y, alpha):
    """argmin sum (s (f W + b) + m - y)^2 + alpha ||W||^2, by solving the augmented least squares."""
    a = (enc.std[:, None] * torch.cat([enc.features, torch.ones(enc.rows, 1)], 1)).double().numpy()
    t = (y - enc.mean[:, None]).double().numpy()
    d = a.shape[1]
    reg = np.sqrt(alpha) * np.eye(d)[:-1]  # no penalty on the bias
    full = np.vstack([a, reg])
    rhs = np.vstack([t, np.zeros((d - 1, t.shape[1]))])
    return np.linalg.lstsq(full, rhs, rcond=None)[0]


def test_ridge_solution_matches_direct_least_squares():
    train, ytr = _problem(seed=0)
    val, yva = _problem(seed=1)
    fit = fit_ridge(RidgeProblem(train, ytr), RidgeProblem(val, yva), grid=(1e-3,), extend_edges=0)
    scale = float(torch.diagonal(gram_matrix(train))[:-1].mean())
    expected = _direct_ridge(train, ytr, 1e-3 * scale)
    np.testing.assert_allclose(fit.weight.numpy(), expected, rtol=1e-4, atol=1e-5)  # float32 products
    pred = fit.predict(val)
    direct = forecast_errors(pred, yva)
    assert fit.val["mse"] == pytest.approx(direct["mse"], rel=1e-5)
    assert fit.val_mse_by_alpha[1e-3] == pytest.approx(direct["mse"], rel=1e-4)  # from statistics alone


def test_selection_uses_validation_and_extends_the_grid():
    train, ytr = _problem(rows=40, features=30, noise=2.0, seed=2)  # few rows, noisy: wants a penalty
    val, yva = _problem(rows=200, features=30, noise=2.0, seed=3)
    fit = fit_ridge(RidgeProblem(train, ytr), RidgeProblem(val, yva))
    assert fit.alpha == min(fit.val_mse_by_alpha, key=fit.val_mse_by_alpha.get)
    # if the best were on the upper edge, larger penalties were tried
    if fit.alpha == max(fit.val_mse_by_alpha):
        assert len(fit.val_mse_by_alpha) > 5


def test_tail_gram_equals_gram_of_the_prefix():
    enc, _ = _problem(rows=50)
    torch.testing.assert_close(tail_gram(enc, gram_matrix(enc), 30), gram_matrix(enc.head(30)), rtol=1e-5, atol=1e-4)
    assert enc.head(30).rows == 30


def test_sgd_head_selects_its_best_validation_epoch():
    train, ytr = _problem(rows=320, seed=4)
    val, yva = _problem(rows=100, seed=5)
    fit = fit_sgd(train, ytr, val, yva, epochs=8, lr=0.05, dropout=0.0, batch_windows=32, patience=8)
    best = min(fit.history, key=lambda h: h["val_mse"])
    assert fit.epoch == best["epoch"]
    assert fit.val["mse"] == pytest.approx(best["val_mse"], rel=1e-6)
    assert fit.history[-1]["train_mse"] < fit.history[0]["train_mse"]


def test_encoded_rows_are_window_major_channel_minor():
    enc = PatchTransformer(3, 32, patch_len=8, stride=8, d_model=8, n_heads=2).eval()
    x = torch.randn(4, 3, 32)
    out = encode_windows(enc, x.numpy(), batch_size=3)
    assert out.features.shape == (12, enc.num_patches * 8) and out.channels == 3
    tokens = enc(x)
    torch.testing.assert_close(out.features[5], tokens[5, 1:].flatten())  # window 1, channel 2
    torch.testing.assert_close(out.mean[5], x[1, 2].mean())
    with pytest.raises(ValueError, match="channel-independent"):
        encode_windows(PatchTransformer(3, 32, patch_len=8, stride=8, d_model=8, n_heads=2,
                                        channel_independent=False), x.numpy())


def test_forecast_errors():
    e = forecast_errors(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]]))
    assert e == {"mse": 2.5, "mae": 1.5}
    with pytest.raises(ValueError, match="differ in shape"):
        forecast_errors(torch.zeros(2, 3), torch.zeros(3, 2))
