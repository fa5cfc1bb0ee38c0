"""HDC's multi-stage loss and stage weights against naive loops."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.losses.hdc import StageWeights, global_pool, multi_stage_nt_xent, positive_similarity
from tests.losses.test_losses import naive_nt_xent

STAGES = ["res3", "res4", "res5"]


def _views(seed=0, b=6, d=4):
    g = torch.Generator().manual_seed(seed)
    return ({s: torch.randn(b, d, generator=g, dtype=torch.float64) for s in STAGES},
            {s: torch.randn(b, d, generator=g, dtype=torch.float64) for s in STAGES})


def naive_cos_mean(a, b):
    total = 0.0
    for i in range(len(a)):
        dot = sum(float(a[i, k]) * float(b[i, k]) for k in range(a.shape[1]))
        na = math.sqrt(sum(float(a[i, k]) ** 2 for k in range(a.shape[1])))
        nb = math.sqrt(sum(float(b[i, k]) ** 2 for k in range(a.shape[1])))
        total += dot / (na * nb)
    return total / len(a)


def test_multi_stage_loss_is_per_stage_nt_xent():
    z1, z2 = _views()
    out = multi_stage_nt_xent(z1, z2, 0.3)
    for s in STAGES:
        assert float(out[s]) == pytest.approx(naive_nt_xent(z1[s], z2[s], 0.3), rel=1e-9)
    with pytest.raises(ValueError, match="same stages"):
        multi_stage_nt_xent(z1, {"res3": z2["res3"]})


def test_global_pool_and_positive_similarity():
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    assert torch.allclose(global_pool(x), x.mean((2, 3, 4)))
    z1, z2 = _views(1)
    assert float(positive_similarity(z1["res3"], z2["res3"])) == pytest.approx(naive_cos_mean(z1["res3"], z2["res3"]))


def test_invariance_weights_follow_a_running_estimate_and_sum_to_one():
    w = StageWeights(STAGES, "invariance", momentum=0.8).train()
    assert torch.allclose(w.weights(), torch.full((3,), 1 / 3))
    expected = [1.0, 1.0, 1.0]
    losses = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for step in range(4):
        sims = torch.tensor([0.1 * step - 0.5, 0.2, 0.9])
        total, weights = w(losses, sims)
        expected = [0.8 * e + 0.2 * min(1.0, max(0.01, float(c))) for e, c in zip(expected, sims)]
        norm = [e / sum(expected) for e in expected]
        assert weights.tolist() == pytest.approx(norm, rel=1e-6)
        assert float(weights.sum()) == pytest.approx(1.0)
        assert float(total.detach()) == pytest.approx(sum(n * v for n, v in zip(norm, [1.0, 2.0, 3.0])), rel=1e-6)
    total.backward()
    assert torch.allclose(losses.grad, weights)  # the weights are constants for the gradient
    assert not weights.requires_grad
    assert torch.allclose(w.state_dict()["invariance"], torch.tensor(expected))  # checkpointed
    frozen = w.invariance.clone()
    w.eval()
    w(losses, torch.tensor([-1.0, -1.0, -1.0]))
    assert torch.equal(w.invariance, frozen)  # evaluation does not update the estimate


def test_fixed_and_learned_weights_sum_to_one():
    fixed = StageWeights(STAGES, "fixed", fixed=[1, 1, 2])
    total, weights = fixed(torch.tensor([1.0, 2.0, 4.0]))
    assert weights.tolist() == [0.25, 0.25, 0.5] and float(total) == pytest.approx(0.25 + 0.5 + 2.0)
    learned = StageWeights(STAGES, "learned")
    losses = torch.tensor([1.0, 2.0, 3.0])
    total, weights = learned(losses)
    assert float(weights.sum()) == pytest.approx(1.0)
    assert float(total.detach()) == pytest.approx(6.0)  # eta = 0
    total.backward()
    # d/d eta_s [exp(-eta_s) L_s + eta_s] = 1 - L_s at eta = 0
    assert learned.log_precision_neg.grad.tolist() == pytest.approx([0.0, -1.0, -2.0])
    with torch.no_grad():
        learned.log_precision_neg.copy_(torch.tensor([0.0, 1.0, 2.0]))
    e = [math.exp(-v) for v in (0.0, 1.0, 2.0)]
    assert learned.weights().tolist() == pytest.approx([v / sum(e) for v in e])


def test_bad_configurations():
    with pytest.raises(ValueError, match="one of"):
        StageWeights(STAGES, "mean")
    with pytest.raises(ValueError, match="3 non-negative"):
        StageWeights(STAGES, "fixed", fixed=[1, 2])
    with pytest.raises(ValueError, match="3 stage losses"):
        StageWeights(STAGES)(torch.ones(2), torch.ones(2))
