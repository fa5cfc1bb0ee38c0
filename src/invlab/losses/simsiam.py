"""SimSiam's symmetric negative cosine similarity with stop-gradient."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from invlab.losses.precision import float32_loss

__all__ = ["negative_cosine", "simsiam_loss", "SimSiamLoss"]


@float32_loss
def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """``-mean_i cos(p_i, stopgrad(z_i))``; ``p, z: (B, D)``."""
    if p.shape != z.shape:
        raise ValueError(f"negative_cosine expects equal shapes, got {tuple(p.shape)} and {tuple(z.shape)}")
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """``D(p1, z2) / 2 + D(p2, z1) / 2`` with ``D`` the stop-gradient negative cosine.

    ``p*``: predictor outputs, ``z*``: projector outputs, all ``(B, D)``. Chen & He,
    "Exploring Simple Siamese Representation Learning", CVPR 2021. Per-sample, so no
    cross-process communication is needed.
    """
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


class SimSiamLoss(nn.Module):
    def forward(self, p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
        return simsiam_loss(p1, p2, z1, z2)
