"""Each loss against a naive per-sample loop implementation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invlab.losses import (
    BarlowTwinsLoss,
    NTXentLoss,
    barlow_twins,
    negative_cosine,
    nt_xent,
    simsiam_loss,
)


def naive_nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[pos]) / t)
        den = sum(math.exp(float(z[i] @ z[j]) / t) for j in range(2 * n) if j != i)
        total += -math.log(num / den)
    return total / (2 * n)


def naive_barlow(z1, z2, lam, eps=1e-5):
    n, d = z1.shape

    def std(z):
        mean = [sum(float(z[b, k]) for b in range(n)) / n for k in range(d)]
        var = [sum((float(z[b, k]) - mean[k]) ** 2 for b in range(n)) / n for k in range(d)]
        return [[(float(z[b, k]) - mean[k]) / math.sqrt(var[k] + eps) for k in range(d)] for b in range(n)]

    a, b_ = std(z1), std(z2)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(a[b][i] * b_[b][j] for b in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lam * c**2
    return loss


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_nt_xent_matches_naive_loop(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(7, 5, generator=g, dtype=torch.float64)
    assert float(nt_xent(z1, z2, t)) == pytest.approx(naive_nt_xent(z1, z2, t), rel=1e-9)
    assert float(NTXentLoss(t)(z1, z2)) == pytest.approx(naive_nt_xent(z1, z2, t), rel=1e-9)


def test_nt_xent_gradcheck_and_scale_invariance():
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.5), (z1, z2))
    assert float(nt_xent(3 * z1, z2)) == pytest.approx(float(nt_xent(z1, z2)))


def test_nt_xent_rejects_bad_input():
    with pytest.raises(ValueError, match="equal shape"):
        nt_xent(torch.rand(4, 3), torch.rand(5, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.rand(4, 3), torch.rand(4, 3), temperature=0)
    with pytest.raises(ValueError, match="two samples"):
        nt_xent(torch.rand(1, 3), torch.rand(1, 3))


def test_simsiam_matches_naive_and_stops_gradient():
    g = torch.Generator().manual_seed(2)
    p1, p2, z1, z2 = (torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(4))
    naive = 0.0
    for i in range(6):
        naive += -0.5 * float(F.cosine_similarity(p1[i], z2[i], dim=0)) / 6
        naive += -0.5 * float(F.cosine_similarity(p2[i], z1[i], dim=0)) / 6
    loss = simsiam_loss(p1, p2, z1, z2)
    assert float(loss) == pytest.approx(naive, rel=1e-9)
    loss.backward()
    assert z1.grad is None and z2.grad is None  # stop-gradient on the targets
    assert p1.grad is not None and p2.grad is not None
    with pytest.raises(ValueError):
        negative_cosine(torch.rand(2, 3), torch.rand(2, 4))


@pytest.mark.parametrize("lam", [5e-3, 0.1])
def test_barlow_twins_matches_naive_loop(lam):
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(9, 4, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
    assert float(barlow_twins(z1, z2, lam)) == pytest.approx(naive_barlow(z1, z2, lam), rel=1e-7)
    assert float(BarlowTwinsLoss(lam)(z1, z2)) == pytest.approx(naive_barlow(z1, z2, lam), rel=1e-7)


def test_barlow_twins_is_zero_for_identical_decorrelated_views():
    z = torch.linalg.qr(torch.randn(64, 8, dtype=torch.float64))[0]  # orthonormal columns
    z = z - z.mean(0)
    assert float(barlow_twins(z, z, 1.0)) < 0.05


def test_barlow_twins_gradcheck():
    g = torch.Generator().manual_seed(4)
    z1 = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins(a, b, 0.1), (z1, z2))
