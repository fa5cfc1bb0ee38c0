from __future__ import annotations

import math

import pytest
import torch

from invlab.methods.optim import LARS, OptimSpec, build_optimizer, param_groups, warmup_cosine


def test_warmup_then_cosine():
    f = warmup_cosine(total_steps=110, warmup_steps=10, min_ratio=0.0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)
    assert warmup_cosine(10, 0, 0.1, "constant")(5) == 1.0
    assert warmup_cosine(100, 0, 0.2)(100) == pytest.approx(0.2)


def test_lars_matches_manual_update():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = LARS([w], lr=0.1, momentum=0.0, weight_decay=0.0, eta=0.02)
    w.grad = torch.tensor([0.6, 0.8])
    opt.step()
    trust = 0.02 * 5.0 / 1.0
    torch.testing.assert_close(w.detach(), torch.tensor([3.0, 4.0]) - 0.1 * trust * torch.tensor([0.6, 0.8]))


def test_param_groups_exclude_bias_and_norm():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    groups = param_groups(model, OptimSpec(exclude_bias_and_norm=True, weight_decay=0.1))
    assert len(groups[0]["params"]) == 2  # the two weight matrices
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4
    probe = torch.nn.Linear(3, 2)
    assert len(param_groups(torch.nn.ModuleList([model, probe]), OptimSpec(), exclude=[probe])[0]["params"]) == 6
    for name, cls in (("sgd", torch.optim.SGD), ("lars", LARS), ("adamw", torch.optim.AdamW)):
        spec = OptimSpec(name=name, lr=0.3, weight_decay=0.01, exclude_bias_and_norm=True)
        opt = build_optimizer(param_groups(model, spec), spec)
        assert type(opt) is cls
        assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
        assert all(g["lr"] == 0.3 for g in opt.param_groups)
        assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    with pytest.raises(ValueError):
        build_optimizer(groups, OptimSpec(name="rmsprop"))


def test_lars_zero_weights_fall_back_to_plain_sgd():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = LARS([w], lr=1.0, momentum=0.0)
    w.grad = torch.ones(2)
    opt.step()
    assert not math.isnan(float(w.sum())) and float(w.sum()) == pytest.approx(-2.0)
