"""Embeddings of a data set under a frozen encoder."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from invlab.data.arrays import ImageArray
from invlab.progress import progress

__all__ = ["extract_features"]


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    data: ImageArray | Tensor,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    desc: str = "features",
) -> tuple[Tensor, Tensor]:
    """Run ``encoder`` (eval mode, no gradient) over ``data``.

    ``data``: an :class:`ImageArray` or a tensor of images; uint8 images reach the
    encoder as floats in ``[0, 1]`` (the input contract of invlab encoders). Feature maps with
    more than two dims are global-average-pooled. Returns ``(features (N, D), labels
    (N,))`` on the CPU (labels are -1 for a bare tensor). The encoder's train/eval mode is
    restored afterwards.
    """
    if device is None:
        try:
            device = next(encoder.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    if isinstance(data, ImageArray):
        images, labels = data.images, torch.as_tensor(np.asarray(data.labels))
    else:
        images, labels = data, torch.full((len(data),), -1, dtype=torch.long)
    was_training = encoder.training
    encoder.eval()
    feats = []
    try:
        starts = range(0, len(images), batch_size)
        for s in progress(starts, desc, len(starts), show_progress, "batch"):
            x = torch.as_tensor(np.asarray(images[s : s + batch_size])).to(device)
            if x.dtype == torch.uint8:
                x = x.float().div_(255.0)
            f = encoder(x)
            if f.dim() > 2:
                f = f.flatten(2).mean(-1)
            feats.append(f.float().cpu())
    finally:
        encoder.train(was_training)
    dim = feats[0].shape[1] if feats else 0
    return (torch.cat(feats) if feats else torch.zeros(0, dim)), labels
