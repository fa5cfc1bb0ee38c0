"""TimeDRL's objectives against naive loops; the stop-gradient switch."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.losses import instance_contrastive_loss, simsiam_loss, timestamp_predictive_loss


def naive_predictive(r1, r2, p):
    total1 = total2 = 0.0
    count = 0
    for b in range(p.shape[0]):
        for t in range(p.shape[1]):
            for k in range(p.shape[2]):
                total1 += (float(r1[b, t, k]) - float(p[b, t, k])) ** 2
                total2 += (float(r2[b, t, k]) - float(p[b, t, k])) ** 2
                count += 1
    return 0.5 * (total1 / count + total2 / count)


def naive_cos(a, b):
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    na = math.sqrt(sum(float(x) ** 2 for x in a))
    nb = math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / max(na * nb, 1e-8)


def naive_contrastive(i1, i2, q1, q2):
    n = len(i1)
    return -0.5 * (sum(naive_cos(i1[b], q2[b]) for b in range(n)) / n + sum(naive_cos(i2[b], q1[b]) for b in range(n)) / n)


def test_predictive_loss_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    r1, r2, p = (torch.randn(3, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    assert float(timestamp_predictive_loss(r1, r2, p)) == pytest.approx(naive_predictive(r1, r2, p), rel=1e-12)
    with pytest.raises(ValueError, match="must match the patches"):
        timestamp_predictive_loss(r1[:, :4], r2, p)


def test_contrastive_loss_matches_naive_loop_and_simsiam():
    g = torch.Generator().manual_seed(1)
    i1, i2, q1, q2 = (torch.randn(6, 8, generator=g, dtype=torch.float64) for _ in range(4))
    loss = instance_contrastive_loss(i1, i2, q1, q2)
    assert float(loss) == pytest.approx(naive_contrastive(i1, i2, q1, q2), rel=1e-12)
    # the same objective as SimSiam's D(p1, z2)/2 + D(p2, z1)/2 with p = q and z = i
    assert float(loss) == pytest.approx(float(simsiam_loss(q1, q2, i1, i2)), rel=1e-12)
    assert float(instance_contrastive_loss(i1, i2, i2, i1)) == pytest.approx(-1.0)  # perfect predictions
    with pytest.raises(ValueError, match="four \\(B, D\\) tensors"):
        instance_contrastive_loss(i1, i2[:, :4], q1, q2)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_stop_gradient_switch(stop_gradient):
    g = torch.Generator().manual_seed(2)
    i1, i2, q1, q2 = (torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4))
    instance_contrastive_loss(i1, i2, q1, q2, stop_gradient=stop_gradient).backward()
    assert q1.grad.abs().sum() > 0 and q2.grad.abs().sum() > 0
    if stop_gradient:
        assert i1.grad is None and i2.grad is None
    else:
        assert i1.grad.abs().sum() > 0 and i2.grad.abs().sum() > 0


def test_contrastive_gradcheck():
    g = torch.Generator().manual_seed(3)
    i1, i2, q1, q2 = (torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4))
    assert torch.autograd.gradcheck(lambda *t: instance_contrastive_loss(*t, stop_gradient=False), (i1, i2, q1, q2))
    r1, r2, p = (torch.randn(2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(timestamp_predictive_loss, (r1, r2, p))
