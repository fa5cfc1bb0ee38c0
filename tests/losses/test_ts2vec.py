"""TS2Vec's hierarchical contrastive loss against a naive loop over every anchor, its
gradient, the scales it visits and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.losses.ts2vec import (
    hierarchical_contrastive_loss,
    ts2vec_instance_loss,
    ts2vec_temporal_loss,
)


def _pick(candidates: list[torch.Tensor], anchor: int, partner: int) -> float:
    """-log softmax over the dot products of ``candidates[anchor]`` with every other candidate, at the partner."""
    a = candidates[anchor]
    others = [j for j in range(len(candidates)) if j != anchor]
    logits = torch.stack([a @ candidates[j] for j in others])
    return float(-(logits[others.index(partner)] - torch.logsumexp(logits, 0)))


def naive_instance(z1, z2):
    b, t, _ = z1.shape
    if b == 1:
        return 0.0
    total1 = total2 = 0.0
    for s in range(t):
        cands = [z1[i, s] for i in range(b)] + [z2[i, s] for i in range(b)]
        for i in range(b):
            total1 += _pick(cands, i, b + i)
            total2 += _pick(cands, b + i, i)
    return (total1 / (b * t) + total2 / (b * t)) / 2


def naive_temporal(z1, z2):
    b, t, _ = z1.shape
    if t == 1:
        return 0.0
    total1 = total2 = 0.0
    for i in range(b):
        cands = [z1[i, s] for s in range(t)] + [z2[i, s] for s in range(t)]
        for s in range(t):
            total1 += _pick(cands, s, t + s)
            total2 += _pick(cands, t + s, s)
    return (total1 / (b * t) + total2 / (b * t)) / 2


def naive_hierarchical(z1, z2, alpha=0.5, temporal_unit=0):
    loss, scales = 0.0, 0
    while z1.shape[1] > 1:
        loss += alpha * naive_instance(z1, z2)
        if scales >= temporal_unit:
            loss += (1 - alpha) * naive_temporal(z1, z2)
        scales += 1
        t = z1.shape[1] // 2  # max over non-overlapping pairs, an odd last step dropped
        z1 = torch.stack([z1[:, 2 * k : 2 * k + 2].max(dim=1).values for k in range(t)], dim=1)
        z2 = torch.stack([z2[:, 2 * k : 2 * k + 2].max(dim=1).values for k in range(t)], dim=1)
    return (loss + alpha * naive_instance(z1, z2)) / (scales + 1)


@pytest.mark.parametrize("b, t", [(3, 5), (4, 8), (2, 1), (1, 6)])
def test_terms_match_the_naive_loops(b, t):
    g = torch.Generator().manual_seed(b * 10 + t)
    z1, z2 = torch.randn(b, t, 4, generator=g, dtype=torch.float64), torch.randn(b, t, 4, generator=g, dtype=torch.float64)
    assert float(ts2vec_instance_loss(z1, z2)) == pytest.approx(naive_instance(z1, z2), rel=1e-10, abs=1e-12)
    assert float(ts2vec_temporal_loss(z1, z2)) == pytest.approx(naive_temporal(z1, z2), rel=1e-10, abs=1e-12)
    for alpha, unit in [(0.5, 0), (0.3, 1), (1.0, 0), (0.0, 0)]:
        got = float(hierarchical_contrastive_loss(z1, z2, alpha, unit))
        assert got == pytest.approx(naive_hierarchical(z1, z2, alpha, unit), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("t, temporal_lengths", [(8, [8, 4, 2]), (5, [5, 2]), (1, [])])
def test_scales_halve_until_one_step(t, temporal_lengths):
    # all dot products 0: the instance term is log(2B - 1) at every scale, the temporal one log(2T_s - 1)
    z = torch.zeros(4, t, 3)
    scales = len(temporal_lengths) + 1
    expected = (0.5 * math.log(7) * scales + 0.5 * sum(math.log(2 * n - 1) for n in temporal_lengths)) / scales
    assert float(hierarchical_contrastive_loss(z, z)) == pytest.approx(expected)


def test_uninformative_representations_give_log_of_the_candidates():
    z = torch.zeros(4, 1, 3)  # all dot products 0: uniform over 2B - 1 candidates
    assert float(ts2vec_instance_loss(z, z)) == pytest.approx(math.log(7))
    z = torch.zeros(2, 5, 3)
    assert float(ts2vec_temporal_loss(z, z)) == pytest.approx(math.log(9))


def test_gradient_check():
    g = torch.Generator().manual_seed(0)
    z1 = (0.3 * torch.randn(3, 5, 4, generator=g, dtype=torch.float64)).requires_grad_()
    z2 = (0.3 * torch.randn(3, 5, 4, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: hierarchical_contrastive_loss(a, b), (z1, z2))


def test_bad_input():
    with pytest.raises(ValueError, match=r"equal shape, got \(2, 5, 4\) and \(2, 4, 4\)"):
        hierarchical_contrastive_loss(torch.randn(2, 5, 4), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="equal shape"):
        ts2vec_instance_loss(torch.randn(2, 5), torch.randn(2, 5))
    with pytest.raises(ValueError, match="no timestamps"):
        hierarchical_contrastive_loss(torch.randn(2, 0, 4), torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match="alpha"):
        hierarchical_contrastive_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), alpha=1.5)
    with pytest.raises(ValueError, match="temporal_unit"):
        hierarchical_contrastive_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), temporal_unit=-1)
