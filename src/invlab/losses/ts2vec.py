"""TS2Vec's hierarchical contrastive loss (Yue et al., AAAI 2022).

Inputs are the timestamp representations of the overlap of two crops, ``z1, z2 (B, T, D)``
(row ``b``, step ``t`` of both is the same timestamp of series ``b`` seen in two contexts).
Similarities are plain dot products (no normalisation, no temperature).

- instance-wise: at each step ``t``, ``z1[b, t]`` must pick ``z2[b, t]`` among the other
  ``2B - 1`` representations of that step in the batch (both views), and vice versa;
- temporal: in each series ``b``, ``z1[b, t]`` must pick ``z2[b, t]`` among the other
  ``2T - 1`` representations of that series (both views), and vice versa;
- hierarchical: both at the finest scale, then after max-pooling along time by 2 (an odd
  last step dropped) until one step is left, where only the instance term applies:
  ``sum_s [alpha L_inst(s) + (1 - alpha) L_temp(s)] / (number of scales)``; the temporal
  term starts at scale ``temporal_unit``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ts2vec_instance_loss", "ts2vec_temporal_loss", "hierarchical_contrastive_loss"]


def _check(z1: Tensor, z2: Tensor) -> None:
    if z1.dim() != 3 or z1.shape != z2.shape:
        raise ValueError(f"expected two (B, T, D) representations of equal shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    if z1.shape[1] < 1:
        raise ValueError("the representations have no timestamps (T = 0)")


def _pick_other(z: Tensor, n: int) -> Tensor:
    """``z (G, 2n, D)``: for each group, the mean negative log-probability that row ``i``
    (of ``2n``) picks its partner (``i + n`` mod ``2n``) among the other ``2n - 1`` rows."""
    sim = z @ z.transpose(1, 2)  # (G, 2n, 2n)
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1] + torch.triu(sim, diagonal=1)[:, :, 1:]  # drop the diagonal
    nll = -F.log_softmax(logits, dim=-1)
    i = torch.arange(n, device=z.device)
    # row i's partner n + i sits at column n + i - 1 once the diagonal is gone; row n + i's at column i
    return (nll[:, i, n + i - 1].mean() + nll[:, n + i, i].mean()) / 2


def ts2vec_instance_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Instance-wise contrast of ``(B, T, D)`` pairs; 0 for a batch of one series."""
    _check(z1, z2)
    if z1.shape[0] == 1:
        return z1.new_zeros(())
    return _pick_other(torch.cat([z1, z2], dim=0).transpose(0, 1), z1.shape[0])  # groups: timestamps


def ts2vec_temporal_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Temporal contrast of ``(B, T, D)`` pairs; 0 for a single timestamp."""
    _check(z1, z2)
    if z1.shape[1] == 1:
        return z1.new_zeros(())
    return _pick_other(torch.cat([z1, z2], dim=1), z1.shape[1])  # groups: series


def hierarchical_contrastive_loss(z1: Tensor, z2: Tensor, alpha: float = 0.5, temporal_unit: int = 0) -> Tensor:
    """The hierarchical contrastive loss (module docstring) of ``z1, z2 (B, T, D)``; a scalar."""
    _check(z1, z2)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if temporal_unit < 0:
        raise ValueError(f"temporal_unit must be >= 0, got {temporal_unit}")
    loss = z1.new_zeros(())
    scales = 0
    while z1.shape[1] > 1:
        if alpha != 0:
            loss = loss + alpha * ts2vec_instance_loss(z1, z2)
        if scales >= temporal_unit and alpha != 1:
            loss = loss + (1 - alpha) * ts2vec_temporal_loss(z1, z2)
        scales += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if alpha != 0:
        loss = loss + alpha * ts2vec_instance_loss(z1, z2)
    scales += 1
    return loss / scales
