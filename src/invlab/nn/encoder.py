"""An encoder: input normalisation + backbone, taking images in ``[0, 1]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Encoder"]


class Encoder(nn.Module):
    """``x (N, C, H, W)`` (or clips ``(N, C, T, H, W)``) in ``[0, 1]`` (float) or ``0..255``
    (uint8) ``-> (N, D)``.

    Normalises with per-channel ``mean``/``std`` (kept as buffers, so exported weights
    carry them) and runs ``backbone``. ``forward_features`` exposes the backbone's stage
    taps when it has them.
    """

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float], channels_last: bool = False):
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.channels_last = channels_last
        self.feature_dim = getattr(backbone, "feature_dim", None)

    def normalize(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if x.shape[1] != self.mean.shape[1]:
            raise ValueError(
                f"the encoder expects {self.mean.shape[1]} input channels, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        shape = (1, -1, *([1] * (x.dim() - 2)))  # images (N, C, H, W) and clips (N, C, T, H, W)
        x = (x - self.mean.view(shape)) / self.std.view(shape)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(self.normalize(x))

    def forward_features(self, x: Tensor, stages: Sequence[str] | None = None) -> dict[str, Tensor]:
        if not hasattr(self.backbone, "forward_features"):
            raise TypeError(f"{type(self.backbone).__name__} has no stage taps (forward_features)")
        return self.backbone.forward_features(self.normalize(x), stages)
