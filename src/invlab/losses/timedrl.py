"""TimeDRL's two pretext objectives (Chang et al., ICDE 2024), as plain functions.

- Timestamp-predictive: a linear head reconstructs every input patch from its timestamp
  embedding (no masking); the loss is the MSE averaged over the two passes.
- Instance-contrastive: SimSiam-style on the two passes' instance embeddings ``i1, i2``
  and their predictions ``q1 = g(i1), q2 = g(i2)``:
  ``-1/2 [cos(sg(i1), q2) + cos(sg(i2), q1)]`` (mean over the batch), no negatives.
  ``stop_gradient=False`` is the paper's collapse ablation.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from invlab.losses.precision import float32_loss

__all__ = ["timestamp_predictive_loss", "instance_contrastive_loss"]


@float32_loss
def timestamp_predictive_loss(recon1: Tensor, recon2: Tensor, patches: Tensor) -> Tensor:
    """``(MSE(recon1, patches) + MSE(recon2, patches)) / 2``; all ``(B', T_p, P')``, the
    mean taken over every element."""
    if recon1.shape != patches.shape or recon2.shape != patches.shape:
        raise ValueError(
            f"reconstructions {tuple(recon1.shape)}, {tuple(recon2.shape)} must match the patches {tuple(patches.shape)}"
        )
    return 0.5 * (F.mse_loss(recon1, patches) + F.mse_loss(recon2, patches))


@float32_loss
def instance_contrastive_loss(i1: Tensor, i2: Tensor, q1: Tensor, q2: Tensor, stop_gradient: bool = True) -> Tensor:
    """``-(cos(sg(i1), q2).mean() + cos(sg(i2), q1).mean()) / 2``; all ``(B', D)``.

    ``i*``: instance embeddings of the two passes, ``q*``: the predictor's outputs on them.
    """
    if not (i1.shape == i2.shape == q1.shape == q2.shape) or i1.dim() != 2:
        raise ValueError(
            f"expected four (B, D) tensors of one shape, got {[tuple(t.shape) for t in (i1, i2, q1, q2)]}"
        )
    if stop_gradient:
        i1, i2 = i1.detach(), i2.detach()
    return -0.5 * (F.cosine_similarity(i1, q2, dim=-1).mean() + F.cosine_similarity(i2, q1, dim=-1).mean())
