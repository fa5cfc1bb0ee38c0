"""Contrastive losses: NT-Xent (SimCLR, all 2B-2 negatives) and InfoNCE with cross-view
negatives only (the E-SSL code's SimCLR loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab import distributed
from invlab.losses.precision import float32_loss

__all__ = ["nt_xent", "NTXentLoss", "info_nce", "InfoNCELoss"]


def _normalised_pairs(loss: str, z1: Tensor, z2: Tensor, temperature: float, gather: bool | None):
    """Shared checks and set-up of the contrastive losses: ``(z1, z2, all_z1, all_z2,
    offset)`` with unit-norm rows, ``all_*`` gathered from every rank when gathering
    (``offset``: this rank's first row in them), else ``z1`` / ``z2`` themselves."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"{loss} expects two (B, D) tensors of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    if distributed.resolve_gather(gather):
        offset, a1, a2 = distributed.rank() * z1.shape[0], distributed.gather(z1), distributed.gather(z2)
    else:
        offset, a1, a2 = 0, z1, z2
    if a1.shape[0] < 2:
        raise ValueError(f"{loss} needs at least two samples in the (global) batch")
    return z1, z2, a1, a2, offset


@float32_loss
def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5, gather: bool | None = None) -> Tensor:
    """SimCLR's normalised-temperature cross entropy with all ``2B - 2`` negatives.

    Each of the ``2B`` embeddings is an anchor; its positive is the other view of the same
    sample and its negatives are every other embedding of both views. The loss is the
    mean over anchors of ``-log softmax(sim / t)[positive]`` with ``sim`` the cosine
    similarity. Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020.

    Args:
        z1, z2: ``(B, D)`` embeddings of the two views (row ``i`` of each is sample ``i``).
        temperature: ``t > 0``.
        gather: use the other ranks' embeddings as negatives too (``None``: whenever
            more than one process runs). With gathering, ``B`` is the global batch.

    Returns: scalar loss (mean over this rank's ``2b`` anchors).
    """
    z1, z2, a1, a2, offset = _normalised_pairs("nt_xent", z1, z2, temperature, gather)
    b, n = z1.shape[0], a1.shape[0]
    keys = torch.cat([a1, a2], 0)  # (2N, D)
    queries = torch.cat([z1, z2], 0)  # (2b, D)
    logits = queries @ keys.T / temperature  # (2b, 2N)
    local = torch.arange(b, device=z1.device) + offset
    self_idx = torch.cat([local, local + n])
    pos_idx = torch.cat([local + n, local])
    is_self = torch.zeros_like(logits, dtype=torch.bool)
    is_self[torch.arange(2 * b, device=z1.device), self_idx] = True
    return F.cross_entropy(logits.masked_fill(is_self, float("-inf")), pos_idx)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent`; ``forward(z1, z2) -> scalar``."""

    def __init__(self, temperature: float = 0.5, gather: bool | None = None):
        super().__init__()
        self.temperature = temperature
        self.gather = gather

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return nt_xent(z1, z2, self.temperature, self.gather)


@float32_loss
def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.5, gather: bool | None = None) -> Tensor:
    """Symmetric InfoNCE whose negatives come from the *other* view only.

    For anchor ``z1[i]`` the candidates are ``z2[0..B-1]``: its positive ``z2[i]`` and the
    ``B - 1`` other samples' second views (no same-view negatives, unlike :func:`nt_xent`);
    the loss is ``CE(z1 z2^T / t, i) / 2 + CE(z2 z1^T / t, i) / 2`` on cosine
    similarities, averaged over anchors. This is the SimCLR loss of the E-SSL code
    (Dangovski et al., "Equivariant Contrastive Learning", ICLR 2022).

    Args:
        z1, z2: ``(B, D)`` embeddings of the two views (row ``i`` of each is sample ``i``).
        temperature: ``t > 0``.
        gather: take the candidates from every rank (``None``: whenever more than one
            process runs); ``B`` is then the global batch.

    Returns: scalar loss (mean over this rank's ``2b`` anchors).
    """
    z1, z2, k1, k2, offset = _normalised_pairs("info_nce", z1, z2, temperature, gather)
    target = torch.arange(z1.shape[0], device=z1.device) + offset
    return 0.5 * F.cross_entropy(z1 @ k2.T / temperature, target) + 0.5 * F.cross_entropy(z2 @ k1.T / temperature, target)


class InfoNCELoss(nn.Module):
    """Module form of :func:`info_nce`; ``forward(z1, z2) -> scalar``."""

    def __init__(self, temperature: float = 0.5, gather: bool | None = None):
        super().__init__()
        self.temperature = temperature
        self.gather = gather

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return info_nce(z1, z2, self.temperature, self.gather)
