"""Networks that output augmentation distributions: InstaAug's per-input *invariance
module* and Augerino's global widths.

>>> crops = CropCandidates()                                  # 30 candidate patches
>>> ranges = LearnedRange(Rotate((-180, 180)))                 # per-input [-a_minus, a_plus]
>>> module = InvarianceModule(3, crops=crops, ranges=ranges)
>>> out = module(x)          # {"crop_logits": (N, 30), "a_minus": (N, 1), "a_plus": (N, 1)}

The backbone is a tiny pre-activation ResNet (channels 8-8-16-32, the paper's size): a
3x3 stem, then one pre-activation block per stage (strides 1, 2, 2), then BN-ReLU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.transforms.learned import CropCandidates, LearnedRange

__all__ = ["PreActBlock", "TinyPreActResNet", "InvarianceModule", "AugerinoWidths"]


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016): BN-ReLU-conv, BN-ReLU-conv, + shortcut."""

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_ch != ch:
            self.shortcut = nn.Conv2d(in_ch, ch, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + identity


class TinyPreActResNet(nn.Module):
    """``(N, C, H, W) -> (N, widths[-1], H / 4, W / 4)`` feature map.

    ``widths``: the stem's channels then one block per further entry (strides 1, 2, 2, ...).
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (8, 8, 16, 32)):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1 or in_channels < 1:
            raise ValueError(f"widths needs >= 2 positive entries and in_channels >= 1, got {widths}, {in_channels}")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            blocks.append(PreActBlock(a, b, 1 if i == 0 else 2))
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[-1])
        self.out_channels = widths[-1]

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.blocks(self.stem(x))))


class InvarianceModule(nn.Module):
    """InstaAug's invariance module: input -> parameters of its augmentation distribution.

    Args:
        in_channels: image channels.
        crops: candidate patches of a learned crop distribution (or ``None``).
        ranges: a :class:`LearnedRange` for continuous parameters (or ``None``).
        widths: channels of the tiny pre-activation ResNet.
        full_image_prob: the full image's initial probability (the output layers start at
            zero, so every input starts from the same distribution: the full image with
            this mass, the rest spread evenly over the patches).
        init_fraction: initial ``a / max`` of every learned range (``sigmoid`` of the
            initial raw output).

    ``forward(x)`` returns a dict with ``crop_logits (N, M)`` (per-cell scores plus a
    learned per-scale bias) and/or ``a_minus``, ``a_plus`` ``(N, D)``.
    """

    def __init__(self, in_channels: int = 3, crops: CropCandidates | None = None,
                 ranges: LearnedRange | None = None, widths: Sequence[int] = (8, 8, 16, 32),
                 full_image_prob: float = 0.8, init_fraction: float = 0.1):
        super().__init__()
        if crops is None and ranges is None:
            raise ValueError("an invariance module needs crops, ranges or both")
        if not 0.0 < init_fraction < 1.0:
            raise ValueError(f"init_fraction must lie in (0, 1), got {init_fraction}")
        self.crops, self.ranges = crops, ranges
        self.body = TinyPreActResNet(in_channels, widths)
        c = self.body.out_channels
        if crops is not None:
            m = crops.num_candidates
            if crops.full_image and not 0.0 < full_image_prob < 1.0:
                raise ValueError(f"full_image_prob must lie in (0, 1), got {full_image_prob}")
            self.cell_scores = nn.ModuleList(nn.Conv2d(c, 1, 1) for _ in crops.scales)
            self.full_score = nn.Linear(c, 1) if crops.full_image else None
            for layer in [*self.cell_scores, *([self.full_score] if self.full_score is not None else [])]:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            bias = torch.zeros(crops.num_scales)
            if crops.full_image and m > 1:
                bias[-1] = math.log(full_image_prob / (1 - full_image_prob) * (m - 1))
            self.scale_bias = nn.Parameter(bias)
        if ranges is not None:
            self.range_head = nn.Linear(c, ranges.num_outputs)
            nn.init.zeros_(self.range_head.weight)
            nn.init.constant_(self.range_head.bias, math.log(init_fraction / (1 - init_fraction)))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feat = self.body(x)
        pooled = feat.mean((2, 3))
        out: dict[str, Tensor] = {}
        if self.crops is not None:
            scores = []
            for s, ((grid, _), head) in enumerate(zip(self.crops.scales, self.cell_scores)):
                cells = head(F.adaptive_avg_pool2d(feat, grid)).flatten(1)  # (N, grid*grid), row-major
                scores.append(cells + self.scale_bias[s])
            if self.full_score is not None:
                scores.append(self.full_score(pooled) + self.scale_bias[-1])
            out["crop_logits"] = torch.cat(scores, 1)
        if self.ranges is not None:
            out["a_minus"], out["a_plus"] = self.ranges.ranges(self.range_head(pooled))
        return out


class AugerinoWidths(nn.Module):
    """Augerino's global, input-independent distribution: ``c_i ~ U[-w_i/2, w_i/2]`` with
    ``w = softplus(theta)`` per Lie-algebra generator (see
    :class:`~invlab.transforms.learned.LieAffine`).

    ``init_width``: the initial width of every generator (Augerino's ``theta = 0`` gives
    ``log 2 = 0.693``).
    """

    def __init__(self, num_generators: int, init_width: float = math.log(2.0)):
        super().__init__()
        if num_generators < 1 or init_width <= 0:
            raise ValueError(f"need >= 1 generator and a positive init_width, got {num_generators}, {init_width}")
        theta = math.log(math.expm1(init_width))  # softplus^-1
        self.theta = nn.Parameter(torch.full((num_generators,), theta))

    @property
    def widths(self) -> Tensor:
        return F.softplus(self.theta)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``coords (n, G)``, differentiable in the widths (pathwise)."""
        u = torch.rand(n, self.theta.numel(), generator=generator).to(self.theta.device, self.theta.dtype)
        return (u - 0.5) * self.widths
