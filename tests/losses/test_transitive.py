"""Transitive Invariance: the transitivity rule on a hand-made graph and against a naive
loop, intra/inter edge construction, negative selection and the ranking loss against a
naive loop."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from invlab.losses.transitive import (
    inter_instance_edges,
    intra_instance_edges,
    select_negatives,
    transitive_pairs,
    triplet_ranking_loss,
)


def _pairs(t):
    return [tuple(p) for p in t.tolist()]


def test_transitive_rule_on_a_hand_made_graph():
    # A=0, A'=1 (one track), B=2, B'=3 (another track), C=4 alone; inter edge A-B
    intra = torch.tensor([[0, 1], [3, 2]])
    inter = torch.tensor([[0, 2]])
    assert _pairs(transitive_pairs(inter, intra, 5)) == [(0, 3), (1, 2), (1, 3)]  # <A,B'>, <A',B>, <A',B'>
    # an inter edge to a node without intra edges: only <A', C>
    assert _pairs(transitive_pairs(torch.tensor([[4, 0]]), intra, 5)) == [(1, 4)]
    # no intra edges, nothing new; an already known pair is not "new"
    assert transitive_pairs(inter, torch.zeros(0, 2, dtype=torch.long), 5).shape == (0, 2)
    assert _pairs(transitive_pairs(torch.tensor([[0, 2], [1, 2]]), intra, 5)) == [(0, 3), (1, 3)]


def test_transitive_rule_uses_direct_intra_neighbours_only():
    # a track 0-1-2 joined by consecutive edges: 2 is two intra hops from 0
    intra = torch.tensor([[0, 1], [1, 2]])
    inter = torch.tensor([[0, 5]])
    assert _pairs(transitive_pairs(inter, intra, 6)) == [(1, 5)]


def _naive_transitive(inter, intra, n):
    nbr = {i: set() for i in range(n)}
    for a, b in intra.tolist():
        nbr[a].add(b)
        nbr[b].add(a)
    out = set()
    for a, b in inter.tolist():
        for x, y in itertools.chain(((a, bp) for bp in nbr[b]), ((ap, b) for ap in nbr[a]),
                                    ((ap, bp) for ap in nbr[a] for bp in nbr[b])):
            if x != y:
                out.add((min(x, y), max(x, y)))
    known = {(min(a, b), max(a, b)) for a, b in inter.tolist() + intra.tolist()}
    return sorted(out - known)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transitive_rule_equals_a_naive_loop(seed):
    g = torch.Generator().manual_seed(seed)
    n = 30
    track = torch.randint(0, 8, (n,), generator=g)
    intra = intra_instance_edges(track)
    inter = torch.randint(0, n, (15, 2), generator=g)
    assert _pairs(transitive_pairs(inter, intra, n)) == _naive_transitive(inter, intra, n)


def test_intra_edges_all_and_consecutive():
    track = torch.tensor([2, 0, 2, 1, 0, 2])
    frame = torch.tensor([2, 0, 0, 0, 1, 1])
    assert _pairs(intra_instance_edges(track)) == [(0, 2), (0, 5), (1, 4), (2, 5)]
    # track 2 in frame order: 2 (frame 0), 5 (frame 1), 0 (frame 2)
    assert _pairs(intra_instance_edges(track, "consecutive", frame)) == [(0, 5), (1, 4), (2, 5)]
    with pytest.raises(ValueError, match="needs frame"):
        intra_instance_edges(track, "consecutive")
    with pytest.raises(ValueError, match="mode must be"):
        intra_instance_edges(track, "ring")


def test_inter_edges_are_nearest_other_instances_above_threshold():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(24, 5, generator=g)
    track = torch.arange(24) // 3
    got = _pairs(inter_instance_edges(feats, track, k=2, threshold=0.3))
    f = F.normalize(feats, dim=1)
    want = set()
    for i in range(24):
        others = sorted((j for j in range(24) if track[j] != track[i]), key=lambda j: -float(f[i] @ f[j]))[:2]
        want.update((min(i, j), max(i, j)) for j in others if float(f[i] @ f[j]) >= 0.3)
    assert got == sorted(want)
    assert all(track[i] != track[j] for i, j in got)


def test_edge_input_is_checked():
    with pytest.raises(ValueError, match=r"inter must be an \(E, 2\) tensor"):
        transitive_pairs(torch.zeros(3, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long), 4)
    with pytest.raises(ValueError, match=r"intra has a sample index outside \[0, 4\)"):
        transitive_pairs(torch.tensor([[0, 1]]), torch.tensor([[0, 4]]), 4)


def test_select_negatives_half_hardest_half_random():
    g = torch.Generator().manual_seed(0)
    dist = torch.rand(6, 10, generator=g)
    valid = torch.rand(6, 10, generator=g) > 0.2
    chosen = select_negatives(dist, valid, 5, torch.Generator().manual_seed(1))
    assert chosen.shape == (6, 5)
    for i in range(6):
        ok = [j for j in range(10) if valid[i, j]]
        hardest = sorted(ok, key=lambda j: float(dist[i, j]))[:3]
        assert chosen[i, :3].tolist() == hardest
        rand = [j for j in chosen[i, 3:].tolist() if j >= 0]
        assert len(rand) == min(2, len(ok) - 3) and len(set(rand)) == len(rand)
        assert all(valid[i, j] and j not in hardest for j in rand)
    # the random half varies with the generator, the hard half does not
    other = select_negatives(dist, valid, 5, torch.Generator().manual_seed(2))
    assert torch.equal(other[:, :3], chosen[:, :3]) and not torch.equal(other[:, 3:], chosen[:, 3:])
    few = select_negatives(dist[:1], torch.tensor([[True] + [False] * 9]), 4)
    assert few.tolist() == [[0, -1, -1, -1]]


def _naive_triplet(a, p, group, chosen, margin, positive_group=None):
    a, p = F.normalize(a, dim=1), F.normalize(p, dim=1)
    pgroup = group if positive_group is None else positive_group
    cands = torch.cat([a, p])
    cand_group = torch.cat([group, pgroup])
    terms = []
    for i in range(a.shape[0]):
        d_pos = 1 - a[i] @ p[i]
        for c in chosen[i].tolist():
            if c < 0:
                continue
            # never a negative of either member's group
            assert cand_group[c] != group[i] and cand_group[c] != pgroup[i]
            terms.append(torch.clamp(margin + d_pos - (1 - a[i] @ cands[c]), min=0))
    return sum(terms) / len(terms)


def test_triplet_loss_and_gradient_equal_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    group = torch.tensor([0, 0, 1, 2, 2, 3, 4, 5])
    loss = triplet_ranking_loss(a, p, margin=0.5, num_negatives=4, group=group, generator=torch.Generator().manual_seed(3))
    # the same selection, reproduced
    an, pn = F.normalize(a.detach(), dim=1), F.normalize(p.detach(), dim=1)
    d = 1 - an @ torch.cat([an, pn]).T
    valid = torch.cat([group, group])[None, :] != group[:, None]
    chosen = select_negatives(d, valid, 4, torch.Generator().manual_seed(3))
    a2, p2 = a.detach().clone().requires_grad_(True), p.detach().clone().requires_grad_(True)
    want = _naive_triplet(a2, p2, group, chosen, 0.5)
    torch.testing.assert_close(loss, want)
    ga, gp = torch.autograd.grad(loss, (a, p))
    wa, wp = torch.autograd.grad(want, (a2, p2))
    torch.testing.assert_close(ga, wa)
    torch.testing.assert_close(gp, wp)


def test_triplet_loss_with_cross_instance_pairs_equals_a_naive_loop():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(8, 6, generator=g, dtype=torch.float64, requires_grad=True)
    group = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    pgroup = torch.tensor([5, 0, 2, 6, 1, 7, 3, 4])  # inter / transitive pairs join two instances
    loss = triplet_ranking_loss(a, p, margin=0.5, num_negatives=4, group=group, positive_group=pgroup,
                                generator=torch.Generator().manual_seed(3))
    an, pn = F.normalize(a.detach(), dim=1), F.normalize(p.detach(), dim=1)
    d = 1 - an @ torch.cat([an, pn]).T
    cand = torch.cat([group, pgroup])
    valid = (cand[None, :] != group[:, None]) & (cand[None, :] != pgroup[:, None])
    chosen = select_negatives(d, valid, 4, torch.Generator().manual_seed(3))
    want = _naive_triplet(a, p, group, chosen, 0.5, pgroup)
    torch.testing.assert_close(loss, want)


def test_a_sample_of_either_members_instance_is_never_a_negative():
    # pair 0: anchor of instance 0, positive of instance 1 (an inter-instance pair);
    # pair 1: anchor of instance 2 whose positive is another frame of instance 0;
    # pair 2: anchor of instance 1 (the first pair's positive's instance).
    # The frames of instances 0 and 1 are the nearest to anchor 0; pair 1's positive
    # (instance 0) and pair 2's anchor (instance 1) must not be its negatives although
    # the anchors' groups alone (0, 2, 1) would allow the first.
    a = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.99, 0.1, 0.0]])
    p = torch.tensor([[0.9, 0.3, 0.0], [0.98, 0.0, 0.2], [0.0, 0.0, 1.0]])
    group, pgroup = torch.tensor([0, 2, 1]), torch.tensor([1, 0, 3])
    loss = triplet_ranking_loss(a, p, margin=1.0, num_negatives=1, group=group, positive_group=pgroup)
    an, pn = F.normalize(a, dim=1), F.normalize(p, dim=1)
    # valid candidates: pair 0 (instances 0, 1): anchor 1, positive 2; pair 1 (instances 2, 0):
    # anchor 2, positives 0 and 2; pair 2 (instances 1, 3): anchors 0 and 1, positive 1
    def term(i, cand):
        return max(0.0, 1.0 + (1 - float(an[i] @ pn[i])) - (1 - float(an[i] @ cand)))
    want0 = max(term(0, an[1]), term(0, pn[2]))  # the hardest valid candidate has the largest term
    want1 = max(term(1, an[2]), term(1, pn[0]), term(1, pn[2]))
    want2 = max(term(2, an[0]), term(2, an[1]), term(2, pn[1]))
    assert float(loss) == pytest.approx((want0 + want1 + want2) / 3, abs=1e-6)
    # with the anchors' groups standing for both members (the old behaviour) the frame of
    # anchor 0's own instance (pair 1's positive) would be its hardest negative
    old = triplet_ranking_loss(a, p, margin=1.0, num_negatives=1, group=group)
    assert float(old) != pytest.approx(float(loss), abs=1e-6)


def test_positive_group_needs_group_and_the_batch_shape():
    a = torch.randn(3, 4)
    with pytest.raises(ValueError, match="positive_group needs group"):
        triplet_ranking_loss(a, a.clone(), positive_group=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"positive_group must be \(B,\)"):
        triplet_ranking_loss(a, a.clone(), group=torch.tensor([0, 1, 2]), positive_group=torch.tensor([0, 1]))


def test_triplet_loss_is_zero_when_margin_is_met_and_refuses_one_group():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(triplet_ranking_loss(a, a.clone(), margin=1.0, num_negatives=2)) == 0.0  # d(a,n)=1, d(a,p)=0
    assert float(triplet_ranking_loss(a, a.clone(), margin=1.5, num_negatives=2)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no valid negatives"):
        triplet_ranking_loss(a, a.clone(), group=torch.tensor([3, 3]))


# -- DDP: two ranks with half the pairs each equal one process with all of them ---------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_data():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(5, 4).double()
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g, dtype=torch.float64))
    return model, torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 5, generator=g, dtype=torch.float64)


_DDP_GROUPS = {"group": torch.tensor([0, 1, 2, 3, 4, 5, 6, 7]), "positive_group": torch.tensor([5, 0, 2, 6, 1, 7, 3, 4])}


def _ddp_worker(rank, world, port, out_dir, with_groups):
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, x1, x2 = _ddp_data()
        sl = slice(rank * 4, rank * 4 + 4)
        groups = {k: v[sl] for k, v in _DDP_GROUPS.items()} if with_groups else {}
        loss = triplet_ranking_loss(model(x1[sl]), model(x2[sl]), margin=1.0, num_negatives=1, **groups)  # hardest only
        loss.backward()
        grads = [prm.grad.clone() for prm in model.parameters()]
        for gr in grads:
            dist.all_reduce(gr)
            gr /= world
        torch.save({"loss": loss.detach(), "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.parametrize("with_groups", [False, True], ids=["own-groups", "cross-instance-groups"])
def test_triplet_loss_two_ranks_match_one_process(tmp_path, with_groups):
    import torch.multiprocessing as mp

    model, x1, x2 = _ddp_data()
    groups = _DDP_GROUPS if with_groups else {}
    ref = triplet_ranking_loss(model(x1), model(x2), margin=1.0, num_negatives=1, **groups)
    ref.backward()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), with_groups), nprocs=2, join=True)
    res = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert (float(res[0]["loss"]) + float(res[1]["loss"])) / 2 == pytest.approx(float(ref.detach()), rel=1e-10)
    for r in res:
        for got, want in zip(r["grads"], [prm.grad for prm in model.parameters()]):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
