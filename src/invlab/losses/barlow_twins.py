"""Barlow Twins' redundancy-reduction loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from invlab import distributed
from invlab.losses.precision import float32_loss

__all__ = ["barlow_twins", "BarlowTwinsLoss"]


@float32_loss
def barlow_twins(
    z1: Tensor,
    z2: Tensor,
    lambda_offdiag: float = 5e-3,
    gather: bool | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2`` with ``C`` the cross-correlation
    of the batch-standardised embeddings.

    Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
    ICML 2021. ``z1, z2: (B, D)``. Standardisation uses the (biased) batch statistics,
    as the paper's affine-free BatchNorm. With ``gather`` (default: whenever more than
    one process runs) the means, variances and ``C`` are over the global batch via the
    autograd-aware all-reduce, so the loss equals the single-process loss.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"barlow_twins expects two (B, D) tensors of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    use_dist = distributed.resolve_gather(gather)
    reduce = distributed.all_reduce_sum if use_dist else (lambda t: t)
    # every rank holds at least one sample, so the global batch has >= 2 whenever this
    # rank has 2 or more than one rank runs (decided without waiting for the device)
    if z1.shape[0] * (distributed.world_size() if use_dist else 1) < 2:
        raise ValueError("barlow_twins needs at least two samples in the (global) batch")
    n = z1.new_tensor(float(z1.shape[0]))
    n = reduce(n) if use_dist else n

    def standardise(z: Tensor) -> Tensor:
        mean = reduce(z.sum(0)) / n
        var = reduce(((z - mean) ** 2).sum(0)) / n
        return (z - mean) / torch.sqrt(var + eps)

    c = reduce(standardise(z1).T @ standardise(z2)) / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diag + lambda_offdiag * off_diag


class BarlowTwinsLoss(nn.Module):
    def __init__(self, lambda_offdiag: float = 5e-3, gather: bool | None = None):
        super().__init__()
        self.lambda_offdiag = lambda_offdiag
        self.gather = gather

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return barlow_twins(z1, z2, self.lambda_offdiag, self.gather)
