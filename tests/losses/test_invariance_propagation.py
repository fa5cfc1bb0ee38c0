"""Invariance Propagation: propagation on a hand-worked graph and against a naive
breadth-first search, hard positive selection, and the loss (value and gradient) against
a naive loop over anchors and bank entries."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from invlab.losses.invariance_propagation import (
    hard_positives,
    invariance_propagation_loss,
    propagate,
)

# A directed 2-NN graph on 7 samples (row i = the two nearest neighbours of i; -1 unknown)
GRAPH = torch.tensor([
    [1, 2],   # 0 -> 1, 2
    [0, 3],   # 1 -> 0, 3
    [4, 1],   # 2 -> 4, 1
    [5, 6],   # 3 -> 5, 6
    [2, 0],   # 4 -> 2, 0
    [-1, -1],  # 5: not visited yet
    [3, 5],   # 6 -> 3, 5
])


def _sets(cand):
    return [sorted(v for v in row.tolist() if v >= 0) for row in cand]


def test_propagation_on_a_hand_worked_graph():
    anchors = torch.tensor([0, 3, 5])
    # step 1: own list (self never included)
    assert _sets(propagate(GRAPH, anchors, 1)) == [[1, 2], [5, 6], []]
    # step 2 adds the lists of 1 (0, 3) and 2 (4, 1) for anchor 0; of 5 (none) and 6 (3, 5) for 3
    assert _sets(propagate(GRAPH, anchors, 2)) == [[1, 2, 3, 4], [5, 6], []]
    # step 3 for anchor 0: lists of 0 (self dropped), 3 (5, 6), 4 (2, 0), 1 (0, 3)
    assert _sets(propagate(GRAPH, anchors, 3)) == [[1, 2, 3, 4, 5, 6], [5, 6], []]
    assert propagate(GRAPH, anchors, 3).shape == (3, 2 + 4 + 8)


def _naive_propagate(graph, anchor, steps):
    reached, frontier = set(), [anchor]
    for _ in range(steps):
        nxt = [j for i in frontier if i >= 0 for j in graph[i].tolist()]
        reached.update(j for j in nxt if j >= 0)
        frontier = nxt
    reached.discard(anchor)
    return sorted(reached)


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_propagation_equals_breadth_first_search(steps):
    g = torch.Generator().manual_seed(steps)
    graph = torch.randint(0, 40, (40, 4), generator=g)
    graph[torch.rand(40, generator=g) < 0.2] = -1
    anchors = torch.randint(0, 40, (12,), generator=g)
    got = _sets(propagate(graph, anchors, steps))
    assert got == [_naive_propagate(graph, int(a), steps) for a in anchors]


def test_hard_positives_keep_the_least_similar():
    cand = torch.tensor([[7, 3, -1, 9, 2], [4, -1, -1, -1, -1]])
    sim = torch.tensor([[0.9, 0.1, -5.0, 0.5, 0.3], [0.2, 0.0, 0.0, 0.0, 0.0]])
    where, chosen = hard_positives(cand, sim, 3)
    assert chosen.tolist() == [[3, 2, 9], [4, -1, -1]]
    assert where.tolist() == [[1, 4, 3], [0, -1, -1]]
    _, all_of_them = hard_positives(cand, sim, 50)  # P larger than the candidate list
    assert all_of_them.shape == (2, 5) and sorted(all_of_them[0].tolist()) == [-1, 2, 3, 7, 9]


def _naive_loss(z, index, bank, candidates, num_positives, t, n, w):
    """Anchor by anchor, entry by entry, with Python lists and scalar tensors."""
    inst, prop = [], []
    for i in range(z.shape[0]):
        zi = z[i] / z[i].norm()
        sims = [zi @ bank[j] for j in range(bank.shape[0])]
        own = int(index[i])
        others = sorted((j for j in range(bank.shape[0]) if j != own), key=lambda j: -float(sims[j].detach()))[:n]
        neg = sum(torch.exp(sims[j] / t) for j in others)
        inst.append(-torch.log(torch.exp(sims[own] / t) / (torch.exp(sims[own] / t) + neg)))
        if candidates is not None:
            cands = sorted({int(c) for c in candidates[i] if c >= 0})
            hard = sorted(cands, key=lambda j: float(sims[j].detach()))[:num_positives]
            if hard:
                prop.append(-torch.log(sum(torch.exp(sims[j] / t) for j in hard) / neg))
    instance = sum(inst) / len(inst)
    propagation = sum(prop) / len(prop) if prop else torch.zeros((), dtype=z.dtype)
    return instance + w * propagation, instance, propagation


def _problem(seed=0, b=5, n_bank=30, d=6):
    g = torch.Generator().manual_seed(seed)
    bank = F.normalize(torch.randn(n_bank, d, generator=g, dtype=torch.float64), dim=1)
    index = torch.randperm(n_bank, generator=g)[:b]
    z = (bank[index] + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    graph = torch.randint(0, n_bank, (n_bank, 3), generator=g)
    return z, index, bank, graph


@pytest.mark.parametrize("with_positives", [False, True])
def test_loss_and_gradient_equal_a_naive_loop(with_positives):
    z, index, bank, graph = _problem()
    cand = propagate(graph, index, 2) if with_positives else None
    out = invariance_propagation_loss(z, index, bank, cand, num_positives=4, temperature=0.2, num_negatives=12,
                                      propagation_weight=0.6)
    (grad,) = torch.autograd.grad(out.loss, z)
    z2 = z.detach().clone().requires_grad_(True)
    want, inst, prop = _naive_loss(z2, index, bank, cand, 4, 0.2, 12, 0.6)
    (want_grad,) = torch.autograd.grad(want, z2)
    torch.testing.assert_close(out.loss, want)
    torch.testing.assert_close(out.instance, inst)
    torch.testing.assert_close(out.propagation, prop)
    torch.testing.assert_close(grad, want_grad)
    assert out.negatives.shape == (5, 12) and not (out.negatives == index[:, None]).any()
    if with_positives:
        assert out.positives.shape == (5, 4)
        # the positives reported are the hard ones, with their cosine similarity
        zn = F.normalize(z.detach(), dim=1)
        for i in range(5):
            for p, s in zip(out.positives[i].tolist(), out.positive_similarity[i].tolist()):
                if p >= 0:
                    assert s == pytest.approx(float(zn[i] @ bank[p]), abs=1e-9)
                else:
                    assert math.isnan(s)


def test_anchor_without_candidates_is_left_out_of_the_propagation_mean():
    z, index, bank, graph = _problem(seed=1, b=3)
    cand = propagate(graph, index, 1)
    cand[1] = -1
    out = invariance_propagation_loss(z, index, bank, cand, num_positives=2, temperature=0.1, num_negatives=10)
    want, _, prop = _naive_loss(z, index, bank, cand, 2, 0.1, 10, 0.6)
    torch.testing.assert_close(out.propagation, prop)
    torch.testing.assert_close(out.loss, want)


def test_warm_up_is_instance_discrimination_only():
    z, index, bank, graph = _problem(seed=2)
    cand = propagate(graph, index, 3)
    off = invariance_propagation_loss(z, index, bank, cand, propagation_weight=0.0, num_negatives=10)
    none = invariance_propagation_loss(z, index, bank, None, num_negatives=10)
    torch.testing.assert_close(off.loss, none.loss)
    torch.testing.assert_close(off.loss, off.instance)
    assert off.positives.shape == (5, 0)


def test_float16_bank_gives_nearly_the_same_loss():
    z, index, bank, graph = _problem(seed=3)
    z32, b32 = z.detach().float(), bank.float()
    a = invariance_propagation_loss(z32, index, b32, propagate(graph, index, 2), num_negatives=10)
    b = invariance_propagation_loss(z32, index, b32.half(), propagate(graph, index, 2), num_negatives=10)
    torch.testing.assert_close(a.loss, b.loss, atol=0.05, rtol=0)


def test_bad_input_is_named():
    z, index, bank, _ = _problem()
    with pytest.raises(ValueError, match="num_negatives=30 needs a memory bank of at least 31 entries, the bank has 30"):
        invariance_propagation_loss(z, index, bank, num_negatives=30)
    with pytest.raises(ValueError, match="temperature must be positive"):
        invariance_propagation_loss(z, index, bank, temperature=0.0, num_negatives=5)
    with pytest.raises(ValueError, match="one row per anchor"):
        invariance_propagation_loss(z, index, bank, torch.zeros(2, 3, dtype=torch.long), num_negatives=5)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        propagate(GRAPH, torch.tensor([0]), 0)
