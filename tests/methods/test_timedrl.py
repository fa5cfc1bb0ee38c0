"""TimeDRL and the supervised baseline: the algorithm's pieces, its ablation switches,
learning on small synthetic series, and the divergence guard."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invlab.errors import DivergenceError
from invlab.methods import SupervisedTimeSeries, TimeDRL
from invlab.methods.optim import OptimSpec
from invlab.nn import PatchTransformer
from invlab.transforms import Compose, Jitter, Scaling


def _encoder(channels=2, length=48, dropout=0.1, ci=True):
    return PatchTransformer(channels, length, patch_len=8, stride=8, d_model=16, n_heads=2, n_layers=1,
                            dropout=dropout, channel_independent=ci)


def _sines(n=32, channels=2, length=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float32)
    freq = 0.1 + 0.3 * torch.rand(n, channels, 1, generator=g)
    phase = 6.28 * torch.rand(n, channels, 1, generator=g)
    return 3 * torch.sin(freq * t + phase) + 5 + 0.05 * torch.randn(n, channels, length, generator=g)


def _train(module, x, steps=30, lr=3e-3, labels=None):
    opt = torch.optim.AdamW(module.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        if labels is None:
            loss = module.pretext_losses(x)["loss"]
        else:
            loss = F.cross_entropy(module.logits(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach().item())
    return losses


def test_pretext_terms_follow_the_algorithm():
    torch.manual_seed(0)
    model = TimeDRL(_encoder(dropout=0.0), contrastive_weight=0.5).eval()
    x = _sines(8)
    terms = model.pretext_losses(x)
    enc = model.encoder
    xn, _ = enc.normalize(x)
    tokens = enc(x)
    recon = model.predictive_head(tokens[:, 1:])
    expected_pred = F.mse_loss(recon, enc.patchify(xn))  # both passes equal without dropout
    i = tokens[:, 0]
    q = model.predictor(i)
    expected_con = -F.cosine_similarity(i, q, dim=-1).mean()
    torch.testing.assert_close(terms["predictive"], expected_pred)
    torch.testing.assert_close(terms["contrastive"], expected_con)
    torch.testing.assert_close(terms["loss"], expected_pred + 0.5 * expected_con)


def test_raw_target_reconstructs_the_unnormalised_patches():
    model = TimeDRL(_encoder(dropout=0.0), predictive_target="raw", contrastive_weight=0.0).eval()
    x = _sines(4)
    recon = model.predictive_head(model.encoder(x)[:, 1:])
    torch.testing.assert_close(model.pretext_losses(x)["predictive"], F.mse_loss(recon, model.encoder.patchify(x)))


def test_pretraining_reduces_the_loss_on_real_structure():
    torch.manual_seed(1)
    model = TimeDRL(_encoder()).train()
    losses = _train(model, _sines(32), steps=40)
    assert losses[-1] < 0.7 * losses[0] and all(math.isfinite(v) for v in losses)


def test_stop_gradient_ablation_changes_encoder_gradients():
    x = _sines(8)
    grads = {}
    for stop in (True, False):
        torch.manual_seed(2)
        model = TimeDRL(_encoder(dropout=0.0), predictive_weight=0.0, contrastive_weight=1.0, stop_gradient=stop).eval()
        model.pretext_losses(x)["loss"].backward()
        grads[stop] = model.encoder.cls_token.grad.clone()
    assert not torch.allclose(grads[True], grads[False])


@pytest.mark.parametrize("instance", ["last", "mean"])
def test_instance_embedding_ablations(instance):
    model = TimeDRL(_encoder(), instance=instance)
    terms = model.pretext_losses(_sines(8))
    assert torch.isfinite(terms["loss"]) and "contrastive" in terms


def test_augmentation_instead_of_dropout_makes_different_views():
    model = TimeDRL(_encoder(dropout=0.0), randomness="augmentation", augment=Compose([Jitter(0.2), Scaling(0.2)]))
    xn, _ = model.encoder.normalize(_sines(4))
    v1, v2 = model.two_views(xn, batch_idx=0)
    assert not torch.allclose(v1, v2)
    w1, w2 = model.two_views(xn, batch_idx=0)  # the same step draws the same views (resumable)
    torch.testing.assert_close(v1, w1)
    assert torch.isfinite(model.pretext_losses(_sines(4))["loss"])
    with pytest.raises(ValueError, match="needs an augment transform"):
        TimeDRL(_encoder(), randomness="augmentation")


def test_switching_terms_off_and_bad_options():
    model = TimeDRL(_encoder(), contrastive_weight=0.0)
    assert "contrastive" not in model.pretext_losses(_sines(4))
    with pytest.raises(ValueError, match="not both 0"):
        TimeDRL(_encoder(), contrastive_weight=0.0, predictive_weight=0.0)
    with pytest.raises(ValueError, match="instance must be"):
        TimeDRL(_encoder(), instance="first")


def test_non_finite_loss_names_step_and_term(monkeypatch):
    model = TimeDRL(_encoder())
    monkeypatch.setattr(TimeDRL, "current_epoch", property(lambda self: 3))
    monkeypatch.setattr(TimeDRL, "global_step", property(lambda self: 17))
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    x = _sines(4)
    x[0, 0, 5] = float("nan")
    model.training_step({"series": x}, 0)  # recorded without waiting for the device ...
    with pytest.raises(DivergenceError, match=r"epoch 3, step 17: term\(s\) predictive"):
        model.raise_if_diverged()  # ... and reported at the next check


def test_supervised_baseline_learns_separable_classes():
    torch.manual_seed(3)
    slow, fast = _sines(16, seed=4), _sines(16, seed=5)
    t = torch.arange(48, dtype=torch.float32)
    fast = fast + 3 * torch.sin(1.3 * t)  # class 1 has an extra fast oscillation
    x = torch.cat([slow, fast])
    y = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    model = SupervisedTimeSeries(_encoder(ci=False), 2, optim=OptimSpec(name="adamw", lr=3e-3))
    losses = _train(model, x, steps=40, labels=y)
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    assert (model.logits(x).argmax(1) == y).float().mean() > 0.9
    with pytest.raises(ValueError, match="at least 2 classes"):
        SupervisedTimeSeries(_encoder(), 1)


@pytest.mark.parametrize("seed", [0, 42, 2**31, 2**62])
def test_time_series_methods_train_at_any_seed(seed, monkeypatch):
    for model in (TimeDRL(_encoder(), randomness="augmentation", augment=Compose([Jitter(0.2), Scaling(0.2)]), seed=seed),
                  TimeDRL(_encoder(), seed=seed),
                  SupervisedTimeSeries(_encoder(), num_classes=2, seed=seed)):
        monkeypatch.setattr(model, "log", lambda *a, **k: None)
        batch = {"series": _sines(8), "label": torch.arange(8) % 2}
        loss = model.training_step(batch, 9)
        assert torch.isfinite(loss)
