"""TimeDRL's encoder: instance normalisation, patching, a [CLS] patch, token and
positional embeddings and a post-LN Transformer encoder (Chang et al., "TimeDRL:
Disentangled Representation Learning for Multivariate Time-Series", ICDE 2024).

Shapes (``B`` series, ``C`` channels, ``L`` steps, patch length ``P``, stride ``S``,
``T_p = (L - P) // S + 2`` patches, model width ``D``)::

    x (B, C, L) --instance norm--> (B, C, L) --replication pad S, unfold--> (B, C, T_p, P)
      channel-independent (forecasting):  (B * C, T_p, P)       one token sequence per channel
      channel-mixing (classification):    (B, T_p, C * P)       channels concatenated per patch
    prepend the [CLS] patch (a learnt vector in patch space)  -> (B', 1 + T_p, P')
    token embedding (Conv1d k=3 circular, or linear; no bias) + positions, dropout
    post-LN Transformer encoder (d_ff = 4 D) + final LayerNorm -> tokens (B', 1 + T_p, D)

Token 0 is the instance embedding ([CLS]); tokens ``1..T_p`` are the timestamp
embeddings. Instance normalisation has no affine part; its statistics are returned so
forecasts can be de-normalised. ``instance_norm=False`` (an ablation, not TimeDRL) feeds
the series unnormalised (statistics 0 and 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "num_patches", "instance_normalize", "patchify", "TokenEmbedding", "PatchTransformer", "InstanceStats",
]


def num_patches(length: int, patch_len: int, stride: int) -> int:
    """``T_p = (L - P) // S + 2``: patches after padding ``S`` steps at the end."""
    if patch_len < 1 or stride < 1:
        raise ValueError(f"patch length and stride must be >= 1, got {patch_len}, {stride}")
    if length < patch_len:
        raise ValueError(f"series of length {length} are shorter than one patch ({patch_len})")
    return (length - patch_len) // stride + 2


@dataclass
class InstanceStats:
    """Per-series, per-channel statistics ``(B, C, 1)`` of instance normalisation."""

    mean: Tensor
    std: Tensor

    def denormalize(self, y: Tensor) -> Tensor:
        """``y (B, C, H)`` on the normalised scale -> the input's scale."""
        return y * self.std + self.mean


def instance_normalize(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, InstanceStats]:
    """Normalise each series and channel over time: ``(x - mean) / sqrt(var + eps)``
    (biased variance, statistics detached, as RevIN without affine)."""
    mean = x.mean(dim=-1, keepdim=True).detach()
    std = torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps).detach()
    return (x - mean) / std, InstanceStats(mean, std)


def patchify(x: Tensor, patch_len: int, stride: int, channel_independent: bool) -> Tensor:
    """``(B, C, L)`` -> ``(B * C, T_p, P)`` (channel-independent) or ``(B, T_p, C * P)``
    (channels of one patch concatenated, channel-major). Pads ``stride`` copies of the last
    step at the end (replication), then cuts patches of ``patch_len`` every ``stride``."""
    b, c, length = x.shape
    num_patches(length, patch_len, stride)  # validates
    padded = F.pad(x, (0, stride), mode="replicate")
    patches = padded.unfold(-1, patch_len, stride)  # (B, C, T_p, P)
    if channel_independent:
        return patches.reshape(b * c, patches.shape[2], patch_len)
    return patches.permute(0, 2, 1, 3).reshape(b, patches.shape[2], c * patch_len)


class TokenEmbedding(nn.Module):
    """Patch vectors ``(B, T, P')`` -> tokens ``(B, T, D)``: a Conv1d along the token axis
    (kernel ``k``, circular padding, no bias; Kaiming-normal init) or a linear map."""

    def __init__(self, in_dim: int, d_model: int, kind: str = "conv", kernel_size: int = 3):
        super().__init__()
        if kind not in ("conv", "linear"):
            raise ValueError(f"token embedding must be 'conv' or 'linear', got {kind!r}")
        if kind == "conv" and kernel_size % 2 == 0:
            raise ValueError(f"the conv token embedding needs an odd kernel size, got {kernel_size}")
        self.kind = kind
        if kind == "conv":
            self.proj = nn.Conv1d(in_dim, d_model, kernel_size, padding=kernel_size // 2, padding_mode="circular",
                                  bias=False)
            nn.init.kaiming_normal_(self.proj.weight, mode="fan_in", nonlinearity="leaky_relu")
        else:
            self.proj = nn.Linear(in_dim, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "conv":
            return self.proj(x.transpose(1, 2)).transpose(1, 2)
        return self.proj(x)


def _sincos_table(length: int, d_model: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return table


class PatchTransformer(nn.Module):
    """TimeDRL's encoder (see the module docstring). ``forward(x (B, C, L))`` returns the
    tokens ``(B', 1 + T_p, D)``; :meth:`encode` returns them with the normalisation
    statistics. ``config`` rebuilds an identical module (export)."""

    def __init__(
        self,
        in_channels: int,
        seq_len: int,
        patch_len: int = 16,
        stride: int = 16,
        d_model: int = 128,
        n_heads: int = 2,
        n_layers: int = 1,
        d_ff: int | None = None,
        dropout: float = 0.2,
        token_embedding: str = "conv",
        kernel_size: int = 3,
        positional: str = "learnable",
        channel_independent: bool = True,
        activation: str = "gelu",
        norm_eps: float = 1e-5,
        instance_norm: bool = True,
    ):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if positional not in ("none", "sincos", "learnable"):
            raise ValueError(f"positional embedding must be none, sincos or learnable, got {positional!r}")
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be gelu or relu, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.config = dict(
            arch="patch_transformer", in_channels=in_channels, seq_len=seq_len, patch_len=patch_len, stride=stride,
            d_model=d_model, n_heads=n_heads, n_layers=n_layers, d_ff=d_ff, dropout=dropout,
            token_embedding=token_embedding, kernel_size=kernel_size, positional=positional,
            channel_independent=channel_independent, activation=activation, norm_eps=norm_eps,
            instance_norm=instance_norm,
        )
        self.in_channels, self.seq_len = in_channels, seq_len
        self.patch_len, self.stride = patch_len, stride
        self.channel_independent = channel_independent
        self.norm_eps = norm_eps
        self.instance_norm = instance_norm
        self.num_patches = num_patches(seq_len, patch_len, stride)
        self.token_dim = patch_len if channel_independent else in_channels * patch_len
        self.d_model = self.feature_dim = d_model
        # the [CLS] patch: one per channel when channels are independent (TimeDRL's code)
        cls_shape = (1, in_channels, patch_len) if channel_independent else (1, 1, self.token_dim)
        self.cls_token = nn.Parameter(torch.randn(cls_shape))
        self.token_embedding = TokenEmbedding(self.token_dim, d_model, token_embedding, kernel_size)
        tokens = self.num_patches + 1
        if positional == "learnable":
            self.position = nn.Parameter(torch.randn(1, tokens, d_model))
        elif positional == "sincos":
            self.register_buffer("position", _sincos_table(tokens, d_model).unsqueeze(0), persistent=False)
        else:
            self.position = None
        self.embed_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=d_ff or 4 * d_model, dropout=dropout, activation=activation,
            batch_first=True, norm_first=False,
        )
        self.transformer = nn.TransformerEncoder(layer, n_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)

    # -- the steps, usable one by one (TimeDRL runs two passes over the same patches) ---------
    def normalize(self, x: Tensor) -> tuple[Tensor, InstanceStats]:
        if x.dim() != 3 or x.shape[1] != self.in_channels or x.shape[2] != self.seq_len:
            raise ValueError(
                f"the encoder expects series (B, {self.in_channels}, {self.seq_len}), got {tuple(x.shape)}"
            )
        if not self.instance_norm:  # ablation: the series go in as they are (level 0, scale 1)
            ones = x.new_ones(x.shape[0], x.shape[1], 1)
            return x, InstanceStats(torch.zeros_like(ones), ones)
        return instance_normalize(x, self.norm_eps)

    def patchify(self, x: Tensor) -> Tensor:
        return patchify(x, self.patch_len, self.stride, self.channel_independent)

    def with_cls(self, patches: Tensor) -> Tensor:
        """Prepend the [CLS] patch: ``(B', T_p, P') -> (B', 1 + T_p, P')``."""
        n = patches.shape[0]
        if self.channel_independent:
            cls = self.cls_token.expand(n // self.in_channels, -1, -1).reshape(n, 1, self.token_dim)
        else:
            cls = self.cls_token.expand(n, -1, -1)
        return torch.cat([cls.to(patches.dtype), patches], dim=1)

    def transform_tokens(self, patches: Tensor) -> Tensor:
        """Patches ``(B', T_p, P')`` -> tokens ``(B', 1 + T_p, D)`` (adds [CLS])."""
        h = self.token_embedding(self.with_cls(patches))
        if self.position is not None:
            h = h + self.position
        return self.transformer(self.embed_dropout(h))

    def encode(self, x: Tensor) -> tuple[Tensor, InstanceStats]:
        xn, stats = self.normalize(x)
        return self.transform_tokens(self.patchify(xn)), stats

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)[0]

    # -- reading the tokens ------------------------------------------------------------------
    @staticmethod
    def instance_embedding(tokens: Tensor, how: str = "cls") -> Tensor:
        """``(B', 1 + T_p, D) -> (B', D)``: the [CLS] token, the last timestamp token or the
        mean of the timestamp tokens (TimeDRL's ablations)."""
        if how == "cls":
            return tokens[:, 0]
        if how == "last":
            return tokens[:, -1]
        if how == "mean":
            return tokens[:, 1:].mean(dim=1)
        raise ValueError(f"instance embedding must be cls, last or mean, got {how!r}")

    def per_series(self, embedding: Tensor) -> Tensor:
        """Channel-independent ``(B * C, ...)`` -> ``(B, C * ...)``: one row per series."""
        if not self.channel_independent:
            return embedding.flatten(1)
        return embedding.reshape(-1, self.in_channels * embedding[0].numel())
