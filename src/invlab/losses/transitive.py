"""Transitive Invariance (Xiaolong Wang, Kaiming He, Abhinav Gupta, "Transitive
Invariance for Self-supervised Visual Representation Learning", ICCV 2017).

Plain tensor code on a graph of samples (object patches):

- intra-instance edges join views of one object (the frames of one track):
  :func:`intra_instance_edges`;
- inter-instance edges join different objects that are close in a self-supervised
  feature space (similar category and viewpoint): :func:`inter_instance_edges`;
- the transitivity rule: if ``A-B`` is inter and ``A-A'``, ``B-B'`` are intra, then
  ``<A, B'>``, ``<A', B>`` and ``<A', B'>`` are positive pairs too:
  :func:`transitive_pairs`;
- the Triplet-Siamese ranking loss ``max(0, margin + d(a, p) - d(a, n))`` on cosine
  distance with negatives from the batch, half the hardest and half at random:
  :func:`triplet_ranking_loss`.

Edges and pairs are ``(E, 2)`` long tensors of sample indices; undirected ones are
returned once each, as ``(i, j)`` with ``i < j``, sorted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from invlab import distributed
from invlab.losses.memory_bank import bank_topk
from invlab.losses.precision import float32_loss

__all__ = [
    "intra_instance_edges", "inter_instance_edges", "transitive_pairs", "select_negatives",
    "triplet_ranking_loss",
]


def _canonical(pairs: Tensor, num_nodes: int) -> Tensor:
    """Undirected pairs as sorted unique ``(i, j)``, ``i < j``; self pairs dropped."""
    if pairs.numel() == 0:
        return pairs.reshape(0, 2).long()
    lo, hi = pairs.min(1).values, pairs.max(1).values
    keep = lo != hi
    code = torch.unique(lo[keep] * num_nodes + hi[keep])
    return torch.stack([code // num_nodes, code % num_nodes], 1)


def _check_edges(name: str, edges: Tensor, num_nodes: int) -> Tensor:
    if edges.dim() != 2 or edges.shape[1] != 2:
        raise ValueError(f"{name} must be an (E, 2) tensor of sample indices, got shape {tuple(edges.shape)}")
    edges = edges.long()
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= num_nodes):
        raise ValueError(f"{name} has a sample index outside [0, {num_nodes})")
    return edges


def intra_instance_edges(track: Tensor, mode: str = "all", frame: Tensor | None = None) -> Tensor:
    """Edges between views of the same object instance.

    Args:
        track: ``(N,)`` long, the instance (track) of each sample.
        mode: ``"all"`` joins every two samples of a track; ``"consecutive"`` joins each
            sample to the next frame of its track (needs ``frame``).
        frame: ``(N,)`` frame number within the track (orders ``"consecutive"``).

    Returns: ``(E, 2)`` long, ``i < j``.
    """
    if track.dim() != 1:
        raise ValueError(f"track must be (N,), got {tuple(track.shape)}")
    n = track.shape[0]
    track = track.long()
    if mode == "all":
        order = torch.argsort(track, stable=True)
        t = track[order]
        ends = torch.searchsorted(t, t, right=True)
        count = ends - torch.arange(n) - 1  # later members of the same track
        src = torch.repeat_interleave(torch.arange(n), count)
        first = torch.repeat_interleave(torch.arange(n) + 1, count)
        offset = torch.arange(src.shape[0]) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        pairs = torch.stack([order[src], order[first + offset]], 1)
    elif mode == "consecutive":
        if frame is None or frame.shape != track.shape:
            raise ValueError("intra_instance_edges(mode='consecutive') needs frame (N,) beside track")
        order = torch.argsort(track * (int(frame.max()) + 1 if n else 1) + frame.long())
        same = track[order][1:] == track[order][:-1]
        pairs = torch.stack([order[:-1][same], order[1:][same]], 1)
    else:
        raise ValueError(f"intra_instance_edges: mode must be 'all' or 'consecutive', got {mode!r}")
    return _canonical(pairs, n)


def inter_instance_edges(
    features: Tensor,
    track: Tensor,
    k: int = 1,
    threshold: float | None = None,
) -> Tensor:
    """Nearest neighbours of each sample among *other* instances, in a feature space.

    Args:
        features: ``(N, D)`` self-supervised features (cosine similarity).
        track: ``(N,)`` instance of each sample (its own track is never a neighbour).
        k: neighbours per sample.
        threshold: keep only edges with cosine similarity ``>= threshold``.

    Returns: ``(E, 2)`` long, ``i < j`` (an edge found from both ends appears once).
    """
    if features.dim() != 2 or track.shape != (features.shape[0],):
        raise ValueError(f"inter_instance_edges expects features (N, D) and track (N,), got {tuple(features.shape)} and {tuple(track.shape)}")
    if k < 1:
        raise ValueError(f"inter_instance_edges: k must be >= 1, got {k}")
    feats = F.normalize(features.detach().float(), dim=1)
    sim, idx = bank_topk(feats, feats, k, query_group=track.long(), bank_group=track.long())
    src = torch.arange(feats.shape[0]).repeat_interleave(k)
    keep = torch.ones_like(src, dtype=torch.bool) if threshold is None else sim.reshape(-1) >= threshold
    return _canonical(torch.stack([src[keep], idx.reshape(-1)[keep]], 1), feats.shape[0])


def _neighbours_of(nodes: Tensor, adjacency: Tensor, offsets: Tensor, degree: Tensor) -> tuple[Tensor, Tensor]:
    """For each entry of ``nodes``, all its intra neighbours: ``(owner, neighbour)``."""
    deg = degree[nodes]
    owner = torch.repeat_interleave(torch.arange(nodes.shape[0]), deg)
    within = torch.arange(owner.shape[0]) - torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
    return owner, adjacency[offsets[nodes[owner]] + within]


def transitive_pairs(inter: Tensor, intra: Tensor, num_nodes: int) -> Tensor:
    """New positive pairs by transitivity.

    For every inter-instance edge ``A-B`` and intra-instance edges ``A-A'``, ``B-B'``
    (direct intra neighbours, either direction): ``<A, B'>``, ``<A', B>``, ``<A', B'>``.

    Args:
        inter: ``(E, 2)`` inter-instance edges (undirected).
        intra: ``(F, 2)`` intra-instance edges (undirected).
        num_nodes: ``N``, the number of samples.

    Returns: ``(P, 2)`` long, ``i < j``, sorted, each pair once; pairs that are already an
    inter or intra edge, and self pairs, are left out.
    """
    inter = _check_edges("inter", inter, num_nodes)
    intra = _check_edges("intra", intra, num_nodes)
    both = torch.cat([intra, intra.flip(1)])
    order = torch.argsort(both[:, 0], stable=True)
    adjacency = both[order, 1]
    degree = torch.bincount(both[:, 0], minlength=num_nodes)
    offsets = torch.cumsum(degree, 0) - degree
    # an inter edge is undirected: apply the rule from both ends
    a = torch.cat([inter[:, 0], inter[:, 1]])
    b = torch.cat([inter[:, 1], inter[:, 0]])
    owner, a_prime = _neighbours_of(a, adjacency, offsets, degree)  # <A', B>
    pairs = [torch.stack([a_prime, b[owner]], 1)]
    owner2, b_prime = _neighbours_of(b[owner], adjacency, offsets, degree)  # <A', B'>
    pairs.append(torch.stack([a_prime[owner2], b_prime], 1))
    # <A, B'> is <B', A> from the edge's other end, already covered by <A', B>
    out = _canonical(torch.cat(pairs), num_nodes)
    known = torch.cat([_canonical(inter, num_nodes), _canonical(intra, num_nodes)])
    code = out[:, 0] * num_nodes + out[:, 1]
    return out[~torch.isin(code, known[:, 0] * num_nodes + known[:, 1])]


def select_negatives(distance: Tensor, valid: Tensor, num: int, generator: torch.Generator | None = None) -> Tensor:
    """Per anchor, ``num`` negatives: the ``ceil(num / 2)`` hardest (smallest distance)
    and ``floor(num / 2)`` drawn uniformly from the remaining valid candidates.

    Args:
        distance: ``(B, C)`` anchor-to-candidate distances.
        valid: ``(B, C)`` bool, which candidates may be negatives.
        num: negatives per anchor.
        generator: draws the random half (on the CPU, so a seeded run is reproducible on
            any device).

    Returns: ``(B, num)`` long candidate positions, ``-1`` where an anchor has fewer than
    ``num`` valid candidates.
    """
    if distance.shape != valid.shape or distance.dim() != 2:
        raise ValueError(f"select_negatives expects distance and valid of one (B, C) shape, got {tuple(distance.shape)} and {tuple(valid.shape)}")
    if num < 1:
        raise ValueError(f"select_negatives: num must be >= 1, got {num}")
    b, c = distance.shape
    n_hard = min(num - num // 2, c)
    d = distance.detach().float().masked_fill(~valid, float("inf"))
    _, hard = d.topk(n_hard, dim=1, largest=False)
    hard = hard.masked_fill(~valid.gather(1, hard), -1)
    rest = valid.clone()
    rest.scatter_(1, hard.clamp(min=0), False)
    rest &= valid
    n_rand = min(num // 2, c)
    if n_rand:
        keys = torch.rand(b, c, generator=generator).to(distance.device).masked_fill(~rest, -1.0)
        score, rand = keys.topk(n_rand, dim=1)
        rand = rand.masked_fill(score < 0, -1)
        chosen = torch.cat([hard, rand], 1)
    else:
        chosen = hard
    if chosen.shape[1] < num:
        chosen = torch.cat([chosen, chosen.new_full((b, num - chosen.shape[1]), -1)], 1)
    return chosen


@float32_loss
def triplet_ranking_loss(
    anchor: Tensor,
    positive: Tensor,
    *,
    margin: float = 1.0,
    num_negatives: int = 2,
    group: Tensor | None = None,
    positive_group: Tensor | None = None,
    generator: torch.Generator | None = None,
    gather: bool | None = None,
) -> Tensor:
    """Triplet-Siamese ranking loss on cosine distance ``d = 1 - cos``.

    For pair ``i`` (``anchor[i]``, ``positive[i]``) the candidate negatives are every
    anchor and positive of the other pairs in the (global) batch, except those whose
    group (e.g. object instance) is the group of ``anchor[i]`` or of ``positive[i]``: a
    sample of either member's instance is never pushed away. Each candidate carries its
    own group: ``group[j]`` for ``anchor[j]``, ``positive_group[j]`` for ``positive[j]``
    (they differ for inter-instance and transitive pairs). Of the valid candidates,
    :func:`select_negatives` keeps ``num_negatives`` (half hardest, half random), and::

        loss = mean over (i, n) of max(0, margin + d(a_i, p_i) - d(a_i, n))

    Args:
        anchor, positive: ``(B, D)``.
        margin: 1 in the released predecessor code (Wang & Gupta 2015).
        num_negatives: negatives per anchor.
        group: ``(B,)`` long, optional: the anchors' groups (default: every pair its own).
        positive_group: ``(B,)`` long, optional: the positives' groups (default: ``group``,
            as for two views of one instance).
        generator: draws the random negatives.
        gather: take candidates from every rank (``None``: whenever more than one
            process runs).

    Returns: scalar.
    """
    if anchor.shape != positive.shape or anchor.dim() != 2:
        raise ValueError(f"triplet_ranking_loss expects anchor and positive of one (B, D) shape, got {tuple(anchor.shape)} and {tuple(positive.shape)}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    b = anchor.shape[0]
    a = F.normalize(anchor, dim=1)
    p = F.normalize(positive, dim=1)
    pair = torch.arange(b, device=a.device)
    if group is not None and group.shape != (b,):
        raise ValueError(f"group must be (B,) = ({b},), got {tuple(group.shape)}")
    if positive_group is not None and group is None:
        raise ValueError("positive_group needs group (the anchors' groups) beside it")
    if positive_group is not None and positive_group.shape != (b,):
        raise ValueError(f"positive_group must be (B,) = ({b},), got {tuple(positive_group.shape)}")
    gathering = distributed.resolve_gather(gather)
    grp = group.long().to(a.device) if group is not None else pair
    if gathering and group is None:  # every pair is its own group: number them globally
        grp = pair + distributed.rank() * b
    pgrp = positive_group.long().to(a.device) if positive_group is not None else grp
    all_a, all_p, all_g, all_pg = a, p, grp, pgrp
    if gathering:
        all_a, all_p, all_g = distributed.gather(a), distributed.gather(p), distributed.gather(grp)
        all_pg = distributed.gather(pgrp) if positive_group is not None else all_g
    cands = torch.cat([all_a, all_p])  # (2N, D)
    cand_group = torch.cat([all_g, all_pg])
    d_pos = 1 - (a * p).sum(1)  # (B,)
    d_cand = 1 - a @ cands.T  # (B, 2N)
    valid = (cand_group[None, :] != grp[:, None]) & (cand_group[None, :] != pgrp[:, None])
    chosen = select_negatives(d_cand, valid, num_negatives, generator)
    ok = chosen >= 0
    if not bool(ok.any()):
        raise ValueError("triplet_ranking_loss: no valid negatives in the batch (all pairs share one group?)")
    d_neg = d_cand.gather(1, chosen.clamp(min=0))
    hinge = F.relu(margin + d_pos[:, None] - d_neg)
    return hinge[ok].mean()
