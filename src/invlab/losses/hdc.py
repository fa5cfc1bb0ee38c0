"""HDC's hierarchical contrastive objective (Zhang & Crandall, WACV 2022): contrastive
losses at several backbone stages combined with per-stage weights.

A *subtask* (spatial contrast or temporal contrast) gives, for each stage ``s``, two
batches of projected embeddings ``z1[s], z2[s]`` ``(B, D)`` whose rows are positive
pairs; its loss is ``sum_s w_s * nt_xent(z1[s], z2[s])`` with weights ``w`` that sum to
one, from :class:`StageWeights`:

- ``"invariance"`` (default): ``w_s`` proportional to a running (exponential moving
  average, momentum ``m``) estimate of stage ``s``'s instance invariance, measured as
  the mean cosine similarity of its positive pairs, clamped to ``[0.01, 1]`` (a stage
  whose positives disagree keeps a small weight and can recover); detached (the weights are not trained), averaged over processes,
  kept in buffers (checkpointed, so resume is exact). The more invariant a stage
  already is, the more its contrast counts; shallow stages that cannot be very
  invariant do not dominate. Estimates start at 1 (equal weights).
- ``"fixed"``: the configured weights, normalised to sum to one.
- ``"learned"``: homoscedastic-uncertainty weighting (Kendall et al., CVPR 2018): the
  loss is ``sum_s exp(-eta_s) L_s + eta_s`` with learned ``eta``; the reported weights
  are ``softmax(-eta)`` (which sum to one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab import distributed
from invlab.losses.contrastive import nt_xent
from invlab.losses.precision import float32_loss

__all__ = ["WEIGHTINGS", "positive_similarity", "global_pool", "StageWeights", "multi_stage_nt_xent"]

WEIGHTINGS = ("invariance", "fixed", "learned")
MIN_LEVEL = 0.01  # floor of a stage's invariance estimate


def global_pool(x: Tensor) -> Tensor:
    """Global average over every dim after the channels: ``(B, C, ...) -> (B, C)``."""
    return x.flatten(2).mean(2) if x.dim() > 2 else x


@float32_loss
@torch.no_grad()
def positive_similarity(z1: Tensor, z2: Tensor) -> Tensor:
    """Mean cosine similarity of the rows of ``z1`` and ``z2`` ``(B, D)`` (detached)."""
    return F.cosine_similarity(z1.detach().float(), z2.detach().float(), dim=1).mean()


def multi_stage_nt_xent(z1: Mapping[str, Tensor], z2: Mapping[str, Tensor], temperature: float = 0.5,
                        gather: bool | None = None) -> dict[str, Tensor]:
    """``{stage: nt_xent(z1[stage], z2[stage])}`` for every stage of ``z1``."""
    if set(z1) != set(z2):
        raise ValueError(f"both views need the same stages, got {sorted(z1)} and {sorted(z2)}")
    return {s: nt_xent(z1[s], z2[s], temperature, gather) for s in z1}


class StageWeights(nn.Module):
    """Per-stage loss weights that sum to one (see the module docstring).

    ``forward(losses, similarities)``: ``losses`` ``(S,)`` (per-stage losses, stage order
    of ``stages``), ``similarities`` ``(S,)`` (mean positive cosine per stage, only read in
    ``"invariance"`` mode) ``-> (total loss, weights (S,))``. In training mode the
    invariance estimate is updated *before* weighting (so the first step already uses
    what it saw).
    """

    def __init__(self, stages: Sequence[str], mode: str = "invariance", momentum: float = 0.9,
                 fixed: Sequence[float] | None = None):
        super().__init__()
        if mode not in WEIGHTINGS:
            raise ValueError(f"stage weighting must be one of {WEIGHTINGS}, got {mode!r}")
        if not stages:
            raise ValueError("need at least one stage")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.stages, self.mode, self.momentum = list(stages), mode, float(momentum)
        n = len(self.stages)
        if mode == "fixed":
            w = torch.ones(n) if fixed is None else torch.tensor([float(v) for v in fixed])
            if len(w) != n or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"fixed stage weights need {n} non-negative values with a positive sum, got {fixed}")
            self.register_buffer("fixed_weights", w / w.sum())
        self.register_buffer("invariance", torch.ones(n))
        self.log_precision_neg = nn.Parameter(torch.zeros(n)) if mode == "learned" else None  # eta

    def weights(self) -> Tensor:
        """The current weights ``(S,)`` (sum to one, detached)."""
        if self.mode == "fixed":
            return self.fixed_weights.clone()
        if self.mode == "learned":
            return torch.softmax(-self.log_precision_neg.detach(), 0)
        return self.invariance / self.invariance.sum()

    @torch.no_grad()
    def update(self, similarities: Tensor) -> None:
        """Fold this step's mean positive cosines ``(S,)`` (averaged over processes)
        into the running invariance estimate."""
        level = distributed.all_reduce_mean(similarities.detach().float().to(self.invariance.device))
        self.invariance.mul_(self.momentum).add_((1.0 - self.momentum) * level.clamp(MIN_LEVEL, 1.0))

    @float32_loss
    def forward(self, losses: Tensor, similarities: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if losses.shape != (len(self.stages),):
            raise ValueError(f"expected {len(self.stages)} stage losses, got shape {tuple(losses.shape)}")
        if self.mode == "learned":
            eta = self.log_precision_neg
            return (torch.exp(-eta) * losses + eta).sum(), self.weights()
        if self.mode == "invariance" and self.training:
            if similarities is None:
                raise ValueError("invariance weighting needs the stages' positive similarities")
            self.update(similarities)
        w = self.weights().to(losses.dtype)
        return (w * losses).sum(), w
