"""Invariance Propagation (Feng Wang, Huiyu Wang, Chen Wei, Alan Yuille, Wei Shen,
"Unsupervised Representation Learning by Invariance Propagation", NeurIPS 2020).

Plain tensor code; the memory bank it reads is a ``(N, D)`` tensor of unit rows
(:class:`invlab.losses.memory_bank.MemoryBank` keeps one).

- :func:`propagate`: positive candidates by chaining a directed k-NN graph's neighbour
  lists ``steps`` times (``k + k^2 + ... + k^steps`` at most), each sample once, the
  anchor itself never.
- :func:`hard_positives`: of those, the ``P`` least similar to the anchor.
- :func:`invariance_propagation_loss`: instance discrimination against the bank's most
  similar entries plus the propagation term that raises the summed probability of the
  hard positives.

Differences from the released code (``objective.py``), on purpose: candidates reached by
two paths count once and the anchor is never its own positive (the released code keeps
duplicates and can chain back to the anchor); ``num_negatives`` counts negatives, i.e.
entries other than the anchor's own (the released code's 4,096 "background" entries
include the anchor's own, so it has 4,095 negatives when that ranks first); the
instance term's denominator always contains the anchor's own entry (the released code
drops it when it does not rank among the background, making the term negative).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from invlab.losses.memory_bank import bank_similarities, bank_topk
from invlab.losses.precision import float32_loss

__all__ = ["propagate", "hard_positives", "InvPLossOutput", "invariance_propagation_loss"]


def propagate(neighbours: Tensor, anchors: Tensor, steps: int) -> Tensor:
    """Positive candidates of each anchor by chaining neighbour lists.

    Step 1 takes the anchor's own list, step ``s`` the lists of every sample reached at
    step ``s - 1`` (a breadth-first expansion of the directed k-NN graph, ``steps``
    levels deep).

    Args:
        neighbours: ``(N, k)`` long, row ``i`` = the ``k`` nearest neighbours of sample
            ``i`` (``-1`` = unknown yet; nothing is chained through it).
        anchors: ``(B,)`` long sample indices.
        steps: propagation depth ``>= 1`` (3 on CIFAR-10 in the paper's code).

    Returns: ``(B, M)`` long with ``M = k + k^2 + ... + k^steps``: each anchor's
    candidates, each at most once, never the anchor itself, padded with ``-1``
    (in no particular order).
    """
    if neighbours.dim() != 2 or anchors.dim() != 1:
        raise ValueError(f"propagate expects neighbours (N, k) and anchors (B,), got {tuple(neighbours.shape)} and {tuple(anchors.shape)}")
    if steps < 1:
        raise ValueError(f"propagate: steps must be >= 1, got {steps}")
    b = anchors.shape[0]
    frontier = neighbours[anchors.long()]  # (B, k)
    reached = [frontier]
    for _ in range(steps - 1):
        nxt = neighbours[frontier.clamp(min=0)]  # (B, f, k)
        nxt = nxt.masked_fill((frontier < 0)[..., None], -1)
        frontier = nxt.reshape(b, -1)
        reached.append(frontier)
    cand = torch.cat(reached, 1)
    cand = cand.masked_fill(cand == anchors.long()[:, None], -1)
    cand, _ = cand.sort(1)
    dup = torch.zeros_like(cand, dtype=torch.bool)
    dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
    return cand.masked_fill(dup, -1)


@float32_loss
def hard_positives(candidates: Tensor, similarity: Tensor, num: int) -> tuple[Tensor, Tensor]:
    """Hard positive sampling: keep each anchor's ``num`` least similar candidates.

    Args:
        candidates: ``(B, M)`` long, ``-1`` = no candidate.
        similarity: ``(B, M)`` anchor-to-candidate similarity (entries at ``-1`` ignored).
        num: ``P >= 1`` (20 on CIFAR-10, 50 on ImageNet).

    Returns: ``(positions, chosen)``, both ``(B, min(P, M))``: positions into
    ``candidates`` (``-1`` where an anchor has fewer than ``P`` candidates) and the chosen
    sample indices (``-1`` likewise), least similar first.
    """
    if candidates.shape != similarity.shape or candidates.dim() != 2:
        raise ValueError(f"hard_positives expects candidates and similarity of one (B, M) shape, got {tuple(candidates.shape)} and {tuple(similarity.shape)}")
    if num < 1:
        raise ValueError(f"hard_positives: num must be >= 1, got {num}")
    valid = candidates >= 0
    masked = similarity.detach().float().masked_fill(~valid, float("inf"))
    _, pos = masked.topk(min(num, candidates.shape[1]), dim=1, largest=False)
    ok = valid.gather(1, pos)
    return pos.masked_fill(~ok, -1), candidates.gather(1, pos).masked_fill(~ok, -1)


@dataclass
class InvPLossOutput:
    """What one step of the Invariance Propagation loss used (all but the losses detached).

    ``negatives``: ``(B, n)`` bank indices of the negatives, most similar first (their
    first ``k`` are the anchor's new k-NN list); ``positives``: ``(B, P)`` the hard
    positives used (``-1`` padded; ``(B, 0)`` without propagation); ``positive_similarity``:
    their cosine similarity to the anchor (``nan`` at padding).
    """

    loss: Tensor
    instance: Tensor
    propagation: Tensor
    negatives: Tensor
    positives: Tensor
    positive_similarity: Tensor


@float32_loss(keep=("bank",))
def invariance_propagation_loss(
    z: Tensor,
    index: Tensor,
    bank: Tensor,
    candidates: Tensor | None = None,
    *,
    num_positives: int = 20,
    temperature: float = 0.07,
    num_negatives: int = 4096,
    propagation_weight: float = 0.6,
) -> InvPLossOutput:
    """Instance discrimination against a memory bank plus invariance propagation.

    With ``s_j = cos(z_i, v_j) / t`` against the bank ``v`` and ``Neg(i)`` the
    ``num_negatives`` bank entries most similar to ``z_i`` other than ``v_i``::

        instance(i)    = -log( exp(s_i) / (exp(s_i) + sum_{j in Neg(i)} exp(s_j)) )
        propagation(i) = -log( sum_{p in Pos(i)} exp(s_p) / sum_{j in Neg(i)} exp(s_j) )
        loss = mean_i instance(i) + weight * mean_{i with positives} propagation(i)

    ``Pos(i)`` = the ``num_positives`` candidates least similar to ``z_i``
    (:func:`hard_positives`). ``propagation`` can be negative when the positives outweigh
    the negatives (as in the released code). Negatives and positives are chosen without
    gradient; the gradient flows to ``z`` through every chosen similarity.

    Args:
        z: ``(B, D)`` embeddings of this step's view (normalised here).
        index: ``(B,)`` long, each anchor's own bank row.
        bank: ``(N, D)`` unit rows (constant; any float dtype).
        candidates: ``(B, M)`` long positive candidates (:func:`propagate`), ``-1``
            padded; ``None`` (or ``propagation_weight == 0``) gives instance
            discrimination only (the warm-up).
        num_positives: ``P``.
        temperature: ``t`` (0.07; 0.2 with an MLP head).
        num_negatives: ``n`` (4,096), at most ``N - 1``.
        propagation_weight: weight of the propagation term (0.6).
    """
    if z.dim() != 2 or index.shape != (z.shape[0],) or bank.dim() != 2 or bank.shape[1] != z.shape[1]:
        raise ValueError(
            f"invariance_propagation_loss expects z (B, D), index (B,), bank (N, D); got {tuple(z.shape)}, "
            f"{tuple(index.shape)}, {tuple(bank.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 1 <= num_negatives <= bank.shape[0] - 1:
        raise ValueError(
            f"num_negatives={num_negatives} needs a memory bank of at least {num_negatives + 1} entries, "
            f"the bank has {bank.shape[0]}"
        )
    index = index.long()
    z = F.normalize(z, dim=1)
    _, negatives = bank_topk(z, bank, num_negatives, exclude=index)
    use_candidates = candidates is not None and propagation_weight != 0 and candidates.shape[1] > 0
    if use_candidates and candidates.shape[0] != z.shape[0]:
        raise ValueError(f"candidates must have one row per anchor ({z.shape[0]}), got {tuple(candidates.shape)}")
    # one pass over the bank for every similarity the loss needs: own entry, negatives, candidates
    parts = [index[:, None], negatives] + ([candidates.clamp(min=0)] if use_candidates else [])
    s_all = bank_similarities(z, bank, torch.cat(parts, 1)) / temperature
    s_self, s_neg = s_all[:, :1], s_all[:, 1 : 1 + num_negatives]
    log_neg = torch.logsumexp(s_neg, dim=1)
    instance = (torch.logsumexp(torch.cat([s_self, s_neg], 1), dim=1) - s_self[:, 0]).mean()

    b = z.shape[0]
    positives = torch.full((b, 0), -1, dtype=torch.long, device=z.device)
    pos_cos = z.new_zeros(b, 0)
    propagation = z.sum() * 0.0
    if use_candidates:
        s_cand = s_all[:, 1 + num_negatives :]
        where, positives = hard_positives(candidates, s_cand, num_positives)
        s_pos = s_cand.gather(1, where.clamp(min=0)).masked_fill(where < 0, float("-inf"))
        has = (where >= 0).any(1)
        # mean over the anchors with positives, without asking the device which they are;
        # rows without any are zeroed before logsumexp so no NaN reaches the gradient
        lse = torch.logsumexp(torch.where(has[:, None], s_pos, torch.zeros_like(s_pos)), dim=1)
        propagation = torch.where(has, log_neg - lse, torch.zeros_like(lse)).sum() / has.sum().clamp_min(1)
        pos_cos = (s_pos.detach() * temperature).masked_fill(where < 0, float("nan"))
    loss = instance + propagation_weight * propagation
    return InvPLossOutput(loss, instance, propagation, negatives, positives, pos_cos)
