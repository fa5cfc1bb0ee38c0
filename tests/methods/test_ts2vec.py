"""TS2Vec: the contextual crops, the masks and the weight average of the algorithm,
learning on small synthetic series, the divergence guard and bad input."""

from __future__ import annotations

import pytest
import torch

from invlab.errors import DataError, DivergenceError
from invlab.losses.ts2vec import hierarchical_contrastive_loss
from invlab.methods.ts2vec import (
    TS2Vec,
    contextual_crops,
    epochs_for_iterations,
    take_per_row,
    ts2vec_iterations,
)
from invlab.nn.dilated_conv import TS2VecEncoder
from invlab.nn.patch_transformer import PatchTransformer


def _encoder(channels=2, length=48, dropout=0.0):
    return TS2VecEncoder(channels, length, hidden_dim=8, output_dim=16, depth=2, dropout=dropout)


def _sines(n=16, channels=2, length=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float32)
    freq = 0.1 + 0.3 * torch.rand(n, channels, 1, generator=g)
    phase = 6.28 * torch.rand(n, channels, 1, generator=g)
    return torch.sin(freq * t + phase) + 0.05 * torch.randn(n, channels, length, generator=g)


def test_crops_overlap_inside_the_series_and_align_the_same_timestamps():
    g = torch.Generator().manual_seed(0)
    length = 30
    steps = torch.arange(length, dtype=torch.float32).expand(6, 1, length)  # each step holds its index
    for _ in range(300):
        c = contextual_crops(6, length, g)
        assert 2 <= c.length <= length and c.right - c.left == c.length
        assert 0 <= c.extended_left <= c.left and c.right <= c.extended_right <= length
        assert (c.offsets + c.extended_left >= 0).all() and (c.offsets + c.extended_right <= length).all()
        view1 = take_per_row(steps, c.offsets + c.extended_left, c.right - c.extended_left)
        view2 = take_per_row(steps, c.offsets + c.left, c.extended_right - c.left)
        torch.testing.assert_close(view1[:, :, -c.length :], view2[:, :, : c.length])  # the overlap, in both
        torch.testing.assert_close(view2[:, 0, 0], (c.offsets + c.left).float())


def test_loss_is_the_hierarchical_loss_of_the_overlap():
    torch.manual_seed(0)
    model = TS2Vec(_encoder(), max_train_length=None)
    x = _sines(4)
    loss = model.pretext_loss(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # replay the same draws by hand
    c = contextual_crops(4, 48, g)
    len1, len2 = c.right - c.extended_left, c.extended_right - c.left
    v1, v2 = take_per_row(x, c.offsets + c.extended_left, len1), take_per_row(x, c.offsets + c.left, len2)
    m1, m2 = model.timestamp_mask(4, len1, g, x.device), model.timestamp_mask(4, len2, g, x.device)
    assert 0.3 < m1.float().mean() < 0.7  # about half the steps masked
    r1, r2 = model.network(v1, m1)[:, -c.length :], model.network(v2, m2)[:, : c.length]
    torch.testing.assert_close(loss, hierarchical_contrastive_loss(r1, r2))


def test_long_series_train_on_a_window():
    model = TS2Vec(_encoder(length=100), max_train_length=16)
    seen = []
    model.network.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
    model.pretext_loss(_sines(4, length=100), torch.Generator().manual_seed(1))
    assert max(seen) <= 16


def test_encoder_is_the_uniform_average_of_every_step():
    torch.manual_seed(0)
    model = TS2Vec(_encoder())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    iterates = [torch.cat([p.detach().flatten() for p in model.network.parameters()])]
    for step in range(3):
        loss = model.pretext_loss(_sines(8), torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_average()
        iterates.append(torch.cat([p.detach().flatten() for p in model.network.parameters()]))
    average = torch.cat([p.flatten() for p in model.encoder.parameters()])
    torch.testing.assert_close(average, torch.stack(iterates).mean(0))
    assert int(model.averaged_steps) == 4 and not any(p.requires_grad for p in model.encoder.parameters())
    assert "averaged_steps" in model.state_dict()  # survives a resume


def test_pretraining_lowers_the_loss_on_fixed_draws():
    torch.manual_seed(0)
    x = _sines(16, channels=1)
    model = TS2Vec(_encoder(channels=1))

    def held_out() -> float:  # the same crops and masks before and after training
        with torch.no_grad():
            return sum(float(model.pretext_loss(x, torch.Generator().manual_seed(1000 + k))) for k in range(8)) / 8

    before = held_out()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for step in range(60):
        loss = model.pretext_loss(x, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_out() < 0.85 * before


def test_iteration_rule_and_epochs():
    assert ts2vec_iterations(100_000) == 200 and ts2vec_iterations(100_001) == 600
    assert epochs_for_iterations(200, 50, 8) == 34  # 6 batches per epoch
    assert epochs_for_iterations(600, 100, 8) == 50
    assert epochs_for_iterations(200, 5, 8) == 200  # a single (partial) batch per epoch


def test_series_shorter_than_the_shortest_crop_are_refused():
    with pytest.raises(DataError, match=r"have 1 step\(s\), fewer than the shortest crop TS2Vec draws"):
        TS2Vec(_encoder(length=1))
    model = TS2Vec(_encoder(length=8))
    with pytest.raises(ValueError, match=r"series of 1 steps are shorter than the shortest crop TS2Vec draws"):
        model.pretext_loss(torch.randn(4, 2, 1), torch.Generator())
    with pytest.raises(ValueError, match="shorter than the shortest crop"):
        contextual_crops(4, 3, torch.Generator(), temporal_unit=1)


def test_bad_options():
    with pytest.raises(TypeError, match="TS2VecEncoder"):
        TS2Vec(PatchTransformer(1, 16, 8, 8, 8, 2, 1))
    with pytest.raises(ValueError, match="alpha"):
        TS2Vec(_encoder(), alpha=2.0)
    with pytest.raises(ValueError, match="mask_prob"):
        TS2Vec(_encoder(), mask_prob=1.0)
    with pytest.raises(ValueError, match="max_train_length must be >= 2"):
        TS2Vec(_encoder(), max_train_length=1)
    with pytest.raises(ValueError, match="no augment pipeline"):
        TS2Vec(_encoder(), augment=object())


def test_non_finite_loss_names_step_and_term(monkeypatch):
    model = TS2Vec(_encoder())
    monkeypatch.setattr(TS2Vec, "current_epoch", property(lambda self: 2))
    monkeypatch.setattr(TS2Vec, "global_step", property(lambda self: 11))
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    x = _sines(4)
    x[:, 0, :] = float("nan")
    model.training_step({"series": x}, 0)
    with pytest.raises(DivergenceError, match=r"epoch 2, step 11: term\(s\) hierarchical_contrastive"):
        model.raise_if_diverged()
