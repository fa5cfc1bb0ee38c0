"""Methods: a real training step on real images, the probe never touches the encoder,
and the divergence guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.errors import DivergenceError
from invlab.methods import BarlowTwins, SimCLR, SimSiam
from invlab.methods.base import step_generator
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop


def _method(cls, **kw):
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()]))
    return cls(enc, views, num_classes=10, **kw)


def _batch():
    from invlab.data import load_digits_array

    d = load_digits_array("train")
    idx = np.arange(32)
    return {"image": torch.from_numpy(d.images[idx]), "label": torch.from_numpy(d.labels[idx]), "index": torch.from_numpy(idx)}


class _NoTrainer:
    global_rank = 0
    current_epoch = 0


@pytest.mark.parametrize(
    "cls, kw",
    [
        (SimCLR, {"projector": HeadSpec([16], 8)}),
        (SimSiam, {"projector": HeadSpec([16], 16, last_norm="batch"), "predictor": HeadSpec([8], 16)}),
        (BarlowTwins, {"projector": HeadSpec([16], 16)}),
    ],
)
def test_a_few_steps_reduce_the_loss_on_real_images(cls, kw, monkeypatch):
    torch.manual_seed(0)
    m = _method(cls, **kw)
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    batch = _batch()
    losses = []
    for _ in range(12):
        loss = m.training_step(batch, 0)  # batch_idx fixed: the same views every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]


def test_online_probe_gradients_never_reach_the_encoder(monkeypatch):
    m = _method(SimCLR, projector=HeadSpec([16], 8))
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    batch = _batch()
    views = m.make_views(batch, 0)
    out = m.training_loss(views)
    probe_loss = torch.nn.functional.cross_entropy(m.probe(out.features.detach()), batch["label"])
    probe_loss.backward()
    assert all(p.grad is None for p in m.encoder.parameters())
    assert m.probe.weight.grad is not None


def test_views_depend_only_on_seed_rank_epoch_and_batch():
    a = torch.rand(4, generator=step_generator(0, 0, 2, 5))
    assert torch.equal(a, torch.rand(4, generator=step_generator(0, 0, 2, 5)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(0, 1, 2, 5)))
    assert not torch.equal(a, torch.rand(4, generator=step_generator(0, 0, 3, 5)))


def test_divergence_guard_names_the_term(monkeypatch):
    m = _method(SimCLR, projector=HeadSpec([16], 8))
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 3), raising=False)
    monkeypatch.setattr(type(m), "global_step", property(lambda self: 77), raising=False)
    finite = {"nt_xent": torch.tensor(1.0), "probe": torch.tensor(1.0)}
    m.check_finite(torch.tensor(2.0), finite)
    m.raise_if_diverged()  # all finite: nothing to report
    # recorded on the device, reported at the next check: the first non-finite step counts
    m.check_finite(torch.tensor(float("nan")), {"nt_xent": torch.tensor(float("nan")), "probe": torch.tensor(1.0)})
    monkeypatch.setattr(type(m), "global_step", property(lambda self: 78), raising=False)
    m.check_finite(torch.tensor(float("inf")), {"nt_xent": torch.tensor(1.0), "probe": torch.tensor(float("inf"))})
    m.check_finite(torch.tensor(2.0), finite)
    with pytest.raises(DivergenceError, match=r"epoch 3, step 77: term\(s\) nt_xent = nan"):
        m.raise_if_diverged()
    with pytest.raises(DivergenceError, match="step 77"):  # checkpoints are refused too
        m.on_save_checkpoint({})


def test_two_view_methods_refuse_other_view_counts():
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    with pytest.raises(ValueError, match="exactly 2 views"):
        SimCLR(enc, MultiViewSampler(RandomResizedCrop(8), 3))


LARGE_SEEDS = [0, 42, 2**31, 2**62]


def _every_step_generator_method():
    """Every registered base image method and its E-SSL variant (all draw their views from
    the step generator); the other families test large seeds in their own files."""
    from invlab.methods import METHODS, EquivarianceSpec, SSLMethod

    small_view = [{"name": "crop", "size": 4, "scale": [0.2, 1.0]}]
    kw = {"simclr": {"projector": HeadSpec([16], 8)},
          "simsiam": {"projector": HeadSpec([16], 16, last_norm="batch"), "predictor": HeadSpec([8], 16)},
          "barlow_twins": {"projector": HeadSpec([16], 16)}, "supervised": {}}
    for name, spec in METHODS.items():
        if not issubclass(spec.cls, SSLMethod):
            continue  # the time-series methods: tests/methods/test_timedrl.py
        base = name.removeprefix("e_")
        if base not in kw:
            continue  # learned-augmentation and video methods: large seeds in test_instaaug.py / test_hdc.py
        extra = {"equivariance": EquivarianceSpec(weight=0.4, view=small_view, hidden=[16])} if name != base else {}
        yield pytest.param(spec.cls, {**kw[base], **extra}, id=name)


@pytest.mark.parametrize("seed", LARGE_SEEDS)
@pytest.mark.parametrize("cls, kw", list(_every_step_generator_method()))
def test_every_method_trains_at_any_seed(cls, kw, seed, monkeypatch):
    """Seeds from 19 up overflowed the step generator ("Overflow when unpacking long long")."""
    if cls.__name__ == "Supervised":
        enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
        views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()]), num_views=1)
        m = cls(enc, views, num_classes=10, seed=seed)
    else:
        m = _method(cls, seed=seed, **kw)
    monkeypatch.setattr(type(m), "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(type(m), "current_epoch", property(lambda self: 3), raising=False)
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    loss = m.training_step(_batch(), 17)
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.parametrize("seed", LARGE_SEEDS)
def test_augmentation_dropout_and_equivariance_streams_are_distinct(seed):
    """The global RNG (dropout) is seeded from a different derivation than the views, so
    dropout masks do not replay the view draws; E-SSL's extra view has a third stream."""
    from invlab.runs.pretrain_run import StepSeeder

    class _Trainer:
        global_rank, current_epoch = 1, 2

    StepSeeder(seed).on_train_batch_start(_Trainer(), None, None, 5)
    global_draw = torch.rand(64)
    views = torch.rand(64, generator=step_generator(seed, 1, 2, 5))
    eq = torch.rand(64, generator=step_generator(seed, 1, 2, 5, stream="equivariance"))
    assert not torch.equal(global_draw, views) and not torch.equal(views, eq) and not torch.equal(global_draw, eq)
    StepSeeder(seed).on_train_batch_start(_Trainer(), None, None, 5)
    assert torch.equal(global_draw, torch.rand(64))  # still a pure function of the position
