"""TS2Vec's encoder: an input projection, timestamp masking and a stack of residual blocks
of dilated convolutions (Yue et al., "TS2Vec: Towards Universal Representation of Time
Series", AAAI 2022).

Shapes (``B`` series, ``C`` channels, ``T`` steps, hidden width ``H``, output width ``D``)::

    x (B, C, T) -> (B, T, C) --Linear(C, H)--> (B, T, H)
      timestamp mask (B, T) of kept steps: masked steps' latent vectors are set to 0
    -> (B, H, T) --``depth`` blocks of width H, dilation 2^0 .. 2^(depth-1)-->
       one block to width D, dilation 2^depth --> (B, D, T) --dropout--> (B, T, D)

A block is ``x + conv2(gelu(conv1(gelu(x))))`` (a 1x1 convolution on the residual path
where the width changes, and on the last block); both convolutions have kernel 3 and the
block's dilation, padded to keep the length ("same"). The output is one representation per
timestamp; the representation of a whole series is their maximum over time
(:meth:`TS2VecEncoder.series_representation`). The encoder works on any length; ``seq_len``
records the training length so the evaluation can check the data it is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SamePadConv", "DilatedConvBlock", "DilatedConvEncoder", "TS2VecEncoder"]


class SamePadConv(nn.Module):
    """``Conv1d`` whose output has the input's length: ``(B, C_in, T) -> (B, C_out, T)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        receptive_field = (kernel_size - 1) * dilation + 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=receptive_field // 2, dilation=dilation)
        self.remove = 1 if receptive_field % 2 == 0 else 0  # an even field pads one step too many

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out[:, :, : out.shape[-1] - self.remove]


class DilatedConvBlock(nn.Module):
    """``x + conv2(gelu(conv1(gelu(x))))``: ``(B, C_in, T) -> (B, C_out, T)``; the residual
    goes through a 1x1 convolution when the width changes or the block is the last one."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, final: bool = False):
        super().__init__()
        self.conv1 = SamePadConv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = SamePadConv(out_channels, out_channels, kernel_size, dilation)
        project = in_channels != out_channels or final
        self.projector = nn.Conv1d(in_channels, out_channels, 1) if project else None

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.projector is None else self.projector(x)
        return self.conv2(F.gelu(self.conv1(F.gelu(x)))) + residual


class DilatedConvEncoder(nn.Module):
    """Blocks of widths ``widths`` with dilations ``1, 2, 4, ...``: ``(B, C, T) -> (B, widths[-1], T)``."""

    def __init__(self, in_channels: int, widths: list[int], kernel_size: int = 3):
        super().__init__()
        self.blocks = nn.Sequential(*[
            DilatedConvBlock(widths[i - 1] if i > 0 else in_channels, widths[i], kernel_size, dilation=2**i,
                             final=i == len(widths) - 1)
            for i in range(len(widths))
        ])

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)


class TS2VecEncoder(nn.Module):
    """TS2Vec's encoder (module docstring). ``forward(x (B, C, T), mask=None) -> (B, T, D)``.

    Args:
        in_channels: ``C``. seq_len: the training series' length (recorded, not required).
        hidden_dim: ``H`` (64 in the paper). output_dim: ``D`` (320). depth: blocks of
        width ``H`` (10). kernel_size: 3. dropout: on the output representations (0.1).
    ``config`` rebuilds an identical module (export)."""

    pool_features = ("instance", "tokens")  # what :meth:`pool` reads (no instance token: no "all")

    def __init__(self, in_channels: int, seq_len: int, hidden_dim: int = 64, output_dim: int = 320, depth: int = 10,
                 kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("seq_len", seq_len), ("hidden_dim", hidden_dim),
                            ("output_dim", output_dim), ("kernel_size", kernel_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.config = dict(arch="ts2vec_encoder", in_channels=in_channels, seq_len=seq_len, hidden_dim=hidden_dim,
                           output_dim=output_dim, depth=depth, kernel_size=kernel_size, dropout=dropout)
        self.in_channels, self.seq_len = in_channels, seq_len
        self.feature_dim = output_dim
        self.input_fc = nn.Linear(in_channels, hidden_dim)
        self.feature_extractor = DilatedConvEncoder(hidden_dim, [hidden_dim] * depth + [output_dim], kernel_size)
        self.repr_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Timestamp representations ``(B, T, D)`` of ``x (B, C, T)``. ``mask (B, T)``, bool:
        the steps whose latent vectors are kept (``None``: all of them)."""
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"the encoder expects series (B, {self.in_channels}, T), got {tuple(x.shape)}")
        h = self.input_fc(x.transpose(1, 2))  # (B, T, H)
        if mask is not None:
            if mask.shape != h.shape[:2] or mask.dtype != torch.bool:
                raise ValueError(f"the timestamp mask must be bool of shape {tuple(h.shape[:2])}, "
                                 f"got {mask.dtype} {tuple(mask.shape)}")
            h = h * mask.unsqueeze(-1).to(h.dtype)
        z = self.feature_extractor(h.transpose(1, 2))  # (B, D, T)
        return self.repr_dropout(z).transpose(1, 2)

    @staticmethod
    def series_representation(tokens: Tensor) -> Tensor:
        """The representation of whole series: ``(B, T, D) -> (B, D)``, maximum over time."""
        return tokens.amax(dim=1)

    def pool(self, tokens: Tensor, features: str) -> Tensor:
        """Probe features from timestamp representations ``(B, T, D)``: ``"instance"`` the
        series representation (max over time, ``(B, D)``); ``"tokens"`` mean then max over
        time ``(B, 2D)``. There is no separate instance token, so ``"all"`` is refused."""
        if features not in self.pool_features:
            raise ValueError(f"the TS2Vec encoder pools 'instance' (max over time) or 'tokens' (mean+max), "
                             f"got {features!r}")
        if features == "instance":
            return self.series_representation(tokens)
        return torch.cat([tokens.mean(dim=1), tokens.amax(dim=1)], dim=-1)
