"""E-SSL: lambda = 0 is the base method exactly, the head's gradients stay in the head and
the backbone, the extra view, and the recipes (validation and a real run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from invlab.errors import ConfigError
from invlab.methods import (
    BarlowTwins,
    EBarlowTwins,
    EquivarianceSpec,
    ESimCLR,
    ESimSiam,
    SimCLR,
    SimSiam,
)
from invlab.nn import Encoder, HeadSpec, resnet18
from invlab.runs.config import load_recipe
from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop

BASES = [
    (SimCLR, ESimCLR, {"projector": HeadSpec([16], 8), "loss": "info_nce"}),
    (SimSiam, ESimSiam, {"projector": HeadSpec([16], 16, last_norm="batch"), "predictor": HeadSpec([8], 16)}),
    (BarlowTwins, EBarlowTwins, {"projector": HeadSpec([16], 16)}),
]
SMALL_VIEW = [{"name": "crop", "size": 4, "scale": [0.2, 1.0]}, {"name": "hflip", "p": 0.5}]


def _spec(weight: float, **kw) -> EquivarianceSpec:
    return EquivarianceSpec(weight=weight, view=SMALL_VIEW, hidden=[16, 16], **kw)


def _build(cls, seed: int = 0, **kw):
    torch.manual_seed(seed)
    enc = Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])
    views = MultiViewSampler(Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()]))
    return cls(enc, views, num_classes=10, **kw)


@pytest.fixture
def batch():
    from invlab.data import load_digits_array

    d = load_digits_array("train")
    idx = np.arange(32)
    return {"image": torch.from_numpy(d.images[idx]), "label": torch.from_numpy(d.labels[idx]),
            "index": torch.from_numpy(idx)}


@pytest.fixture
def no_trainer(monkeypatch):
    """Unit tests call the methods outside a Trainer."""
    from invlab.methods.base import SSLMethod

    monkeypatch.setattr(SSLMethod, "global_rank", property(lambda self: 0), raising=False)
    monkeypatch.setattr(SSLMethod, "current_epoch", property(lambda self: 0), raising=False)
    monkeypatch.setattr(SSLMethod, "log", lambda *a, **k: None)


def _step(m, batch, steps: int = 2):
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    losses = []
    for i in range(steps):
        loss = m.training_step(batch, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses


@pytest.mark.parametrize("base_cls, e_cls, kw", BASES)
def test_lambda_zero_is_exactly_the_base_method(base_cls, e_cls, kw, batch, no_trainer):
    base = _build(base_cls, **kw)
    wrapped = _build(e_cls, equivariance=_spec(0.0), **kw)
    views = wrapped.make_views(batch, 0)
    assert "equivariance" not in views.extra  # no extra view is even drawn
    assert torch.equal(base.training_loss(base.make_views(batch, 0)).loss, wrapped.training_loss(views).loss)
    # and training is identical step for step: same losses, same weights
    for a, b in zip(_step(base, batch), _step(wrapped, batch)):
        assert torch.equal(a, b)
    wrapped_state = wrapped.state_dict()
    for name, value in base.state_dict().items():
        assert torch.equal(value, wrapped_state[name]), name


@pytest.mark.parametrize("base_cls, e_cls, kw", BASES)
def test_base_views_and_loss_are_untouched_when_lambda_is_positive(base_cls, e_cls, kw, batch, no_trainer):
    base = _build(base_cls, **kw)
    wrapped = _build(e_cls, equivariance=_spec(0.4), **kw)
    views = wrapped.make_views(batch, 0)
    base_views = base.make_views(batch, 0)
    assert all(torch.equal(a, b) for a, b in zip(views.tensors, base_views.tensors))
    out = wrapped.training_loss(views)
    base_out = base.training_loss(base_views)
    name = next(iter(base_out.terms))
    assert torch.equal(out.terms[name], base_out.loss)
    assert torch.allclose(out.loss, base_out.loss + 0.4 * out.terms["equivariance"])


def test_extra_view_is_all_four_rotations_of_a_small_crop(batch, no_trainer):
    m = _build(ESimCLR, equivariance=_spec(0.4), **BASES[0][2])
    x, params = m.make_views(batch, 3).extra["equivariance"]
    assert x.shape == (4 * 32, 1, 4, 4)
    assert params["rot90.k"].tolist() == [k for k in range(4) for _ in range(32)]
    for i in range(32):
        for k in (1, 2, 3):
            assert torch.equal(x[k * 32 + i], torch.rot90(x[i], k, dims=(-2, -1)))
    # the extra view is a pure function of (seed, rank, epoch, batch) and differs between batches
    again, _ = m.make_views(batch, 3).extra["equivariance"]
    other, _ = m.make_views(batch, 4).extra["equivariance"]
    assert torch.equal(x, again) and not torch.equal(x, other)


@pytest.mark.parametrize("base_cls, e_cls, kw", BASES)
def test_head_gradients_reach_the_backbone_and_nothing_else_outside_the_head(base_cls, e_cls, kw, batch, no_trainer):
    m = _build(e_cls, equivariance=_spec(0.4), **kw)
    x, params = m.make_views(batch, 0).extra["equivariance"]
    loss, terms = m.equivariance_terms(x, params)
    loss.backward()
    assert set(terms) == {"equivariance/rot90.k", "equivariance/rot90.k/acc"}
    head = {id(p) for p in m.equivariance_head.parameters()}
    backbone = {id(p) for p in m.encoder.parameters()}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.equivariance_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    for name, p in m.named_parameters():
        if id(p) not in head and id(p) not in backbone:
            assert p.grad is None, f"{name} received gradient from the equivariance head"


def test_any_transform_can_be_the_target(batch, no_trainer):
    target = [{"name": "jigsaw", "grid": 2}, {"name": "blur", "sigma": [0.5, 1.5], "p": 0.5}]
    m = _build(ESimCLR, equivariance=_spec(1.0, target=target, copies=2), **BASES[0][2])
    assert m.enumerate_key is None  # two discrete-like parameters: nothing to enumerate automatically
    out = m.training_loss(m.make_views(batch, 0))
    assert {"equivariance/jigsaw.perm", "equivariance/blur.fired", "equivariance/blur.sigma"} <= set(out.terms)
    assert m.equivariance_loss.out_dim == 24 + 2 + 1
    assert torch.isfinite(out.loss)


def test_default_weights_follow_the_paper():
    enc = lambda: Encoder(resnet18(width=4, in_channels=1), [0.3], [0.3])  # noqa: E731
    views = MultiViewSampler(RandomResizedCrop(8))
    assert ESimCLR(enc(), views).equivariance_weight == 0.4
    assert ESimSiam(enc(), views).equivariance_weight == 0.4
    assert EBarlowTwins(enc(), views).equivariance_weight == 8.0
    with pytest.raises(ValueError, match="must be >= 0"):
        ESimCLR(enc(), views, equivariance=EquivarianceSpec(weight=-1))


@pytest.mark.parametrize("recipe", ["e-simclr-cifar10", "e-simsiam-cifar10", "e-barlow-cifar10", "simclr-cifar10-essl"])
def test_shipped_recipes_validate(recipe):
    cfg = load_recipe(recipe)
    assert cfg.data.mean == [0.4914, 0.4822, 0.4465]
    if recipe.startswith("e-"):
        assert cfg.params.equivariance.target == [{"name": "rot90"}]
        assert cfg.params.equivariance.weight == (8.0 if "barlow" in recipe else 0.4)


@pytest.mark.parametrize("override, message", [
    ("params.equivariance.target=[{name: rotat90}]", r"params.equivariance.target\[0\]: unknown transform 'rotat90'"),
    ("params.equivariance.weight=-0.5", "'params.equivariance.weight' must be >= 0"),
    ("params.equivariance.enumerate=k", r"params.equivariance.*cannot enumerate 'k'"),
    ("params.equivariance.predict=[rot90.angle]", r"cannot predict \['rot90.angle'\]"),
    ("params.equivariance.norm=group", "'params.equivariance.norm' must be"),
    ("params.equivariance.wieght=1", "did you mean 'params.equivariance.weight'"),
    ("params.loss=infonce", "'params.loss' must be nt_xent or info_nce"),
])
def test_bad_equivariance_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe("e-simclr-cifar10", [override])


@pytest.mark.slow
def test_e_simclr_runs_end_to_end_on_digits(tmp_path):
    from invlab.runs.pretrain_run import pretrain

    cfg = load_recipe("simclr-digits", ["method=e_simclr", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
                                        "model.width=4", "params.loss=info_nce",
                                        "params.equivariance.view=[{name: crop, size: 4, scale: [0.3, 1.0]}]",
                                        "params.equivariance.hidden=[32, 32]", "trainer.enable_progress_bar=false"])
    summary = pretrain(cfg, tmp_path / "run", progress=False)
    assert summary["method"] == "e_simclr" and summary["global_step"] == 3
    assert 0.0 <= summary["metrics"]["train/equivariance/rot90.k/acc"] <= 1.0
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
    assert json.loads((tmp_path / "run" / "encoder.json").read_text())["method"] == "e_simclr"
