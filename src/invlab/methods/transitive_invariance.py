"""Transitive Invariance (Xiaolong Wang, Kaiming He, Abhinav Gupta, "Transitive Invariance
for Self-supervised Visual Representation Learning", ICCV 2017).

    graph over object samples:
        intra-instance edges  A-A'   the same object in different frames of one track
        inter-instance edges  A-B    nearest other instances in a self-supervised feature space
        transitivity: A-B inter, A-A' and B-B' intra  =>  <A, B'>, <A', B>, <A', B'> positive
    for each batch of positive pairs (a, p) from the chosen edge types:
        za, zp = g(f(t(a))), g(f(t(p)))                  one augmented view of each (Siamese towers)
        for each a: negatives n from the batch, half the hardest, half at random
        loss = mean max(0, margin + d(za, zp) - d(za, zn)),  d = 1 - cos   (Triplet-Siamese ranking loss)

The graph is built once, before training, with :mod:`invlab.losses.transitive`
(:func:`mine_pairs` below puts the steps together); training batches come from
:class:`invlab.data.pairs.PairDataset` (``image``, ``positive``, ``group``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from invlab.errors import ConfigError
from invlab.losses.transitive import (
    inter_instance_edges,
    intra_instance_edges,
    transitive_pairs,
    triplet_ranking_loss,
)
from invlab.methods.base import SSLMethod, StepOutput, step_generator
from invlab.nn.heads import HeadSpec
from invlab.transforms.views import Views

__all__ = ["TransitiveInvariance", "TransitiveInvarianceParams", "mine_pairs", "EDGE_KINDS"]

EDGE_KINDS = ("intra", "inter", "transitive")


@dataclass
class TransitiveInvarianceParams:
    """Hyperparameters of :class:`TransitiveInvariance` (the released predecessor code's
    margin; the number of negatives per anchor is a free choice, default 2: one hardest,
    one random)."""

    margin: float = 1.0
    num_negatives: int = 2


class TransitiveInvariance(SSLMethod):
    """Triplet-Siamese training on mined positive pairs (see the module docstring).

    Batches need ``image`` and ``positive`` (uint8 or float, ``(B, C, H, W)``) and may
    carry ``group`` and ``positive_group`` (the instance of each member; no sample of
    either member's instance is a negative of the pair; default: the anchor's ``index``,
    and ``positive_group`` defaults to ``group``). ``views`` must make one view; it is drawn independently for the
    anchor and the positive. ``projector`` defaults to a linear 128-d head ending in
    BatchNorm: with a plain linear head the embeddings collapsed on the controlled tracks
    (every pair within cosine 0.98, the loss stuck at the margin; benchmarks/transitive_tracks.py)."""

    def __init__(self, encoder, views, *, projector: HeadSpec | None = None, margin: float = 1.0,
                 num_negatives: int = 2, **kwargs):
        super().__init__(encoder, views, **kwargs)
        if views.num_views != 1:
            raise ValueError(f"Transitive Invariance draws one view of each pair member, got {views.num_views} views")
        if margin < 0:
            raise ConfigError(f"recipe key 'params.margin' must be >= 0, got {margin}")
        if num_negatives < 1:
            raise ConfigError(f"recipe key 'params.num_negatives' must be >= 1, got {num_negatives}")
        self.projector = (projector or HeadSpec([], 128, last_norm="batch")).build(encoder.feature_dim)
        self.margin, self.num_negatives = margin, num_negatives
        self._group: Tensor | None = None
        self._positive_group: Tensor | None = None
        self._negatives_rng: torch.Generator | None = None

    def make_views(self, batch: dict[str, Tensor], batch_idx: int) -> Views:
        if "positive" not in batch:
            raise ValueError("Transitive Invariance trains on pairs: the batch needs 'positive' beside 'image'")
        x = torch.cat([batch["image"], batch["positive"]])
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        g = step_generator(self.seed, self.global_rank, self.current_epoch, batch_idx)
        # a separate stream for the random negatives, as pure a function of the step
        self._negatives_rng = torch.Generator().manual_seed((g.initial_seed() * 31 + 17) % (2**63 - 1))
        index = batch.get("index")
        self._group = batch.get("group", index)
        self._positive_group = batch.get("positive_group") if self._group is not None else None
        return self.views(x, g, index=index, label=batch.get("label"))

    def training_loss(self, views: Views) -> StepOutput:
        x = views[0].x
        b = x.shape[0] // 2
        h = self.encoder(x)  # one pass: BatchNorm sees anchors and positives together
        z = self.projector(h)
        loss = triplet_ranking_loss(z[:b], z[b:], margin=self.margin, num_negatives=self.num_negatives,
                                    group=self._group, positive_group=self._positive_group,
                                    generator=self._negatives_rng)
        return StepOutput(loss, {"ranking": loss.detach()}, h[:b])


def mine_pairs(features: Tensor, track: Tensor, kinds: tuple[str, ...] | list[str], *, k: int = 1,
               threshold: float | None = None, intra_mode: str = "all", frame: Tensor | None = None) -> dict[str, Tensor]:
    """Build the graph and return the positive pairs of the chosen edge kinds.

    Args:
        features: ``(N, D)`` self-supervised features of every sample (inter edges).
        track: ``(N,)`` object instance (track) of every sample (intra edges).
        kinds: any of ``"intra"``, ``"inter"``, ``"transitive"``.
        k, threshold: inter edges: ``k`` nearest other instances, cosine ``>= threshold``.
        intra_mode, frame: see :func:`~invlab.losses.transitive.intra_instance_edges`.

    Returns: ``{"intra": (E1, 2), "inter": (E2, 2), "transitive": (E3, 2), "pairs": the
    union of the chosen kinds}`` (all ``i < j``).
    """
    bad = [kind for kind in kinds if kind not in EDGE_KINDS]
    if bad or not kinds:
        raise ConfigError(f"edge kinds must be a non-empty subset of {EDGE_KINDS}, got {list(kinds)}")
    n = track.shape[0]
    intra = intra_instance_edges(track, intra_mode, frame)
    inter = inter_instance_edges(features, track, k=k, threshold=threshold)
    trans = transitive_pairs(inter, intra, n)
    out = {"intra": intra, "inter": inter, "transitive": trans}
    chosen = torch.cat([out[kind] for kind in kinds])
    out["pairs"] = torch.unique(chosen, dim=0)
    return out
