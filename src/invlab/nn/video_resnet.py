"""3D ResNets for video: R3D-18 and R(2+1)D-18 (Tran et al., CVPR 2018; the layout of
torchvision's ``r3d_18`` / ``r2plus1d_18``), with a width multiplier and per-stage taps.

Input ``(N, C, T, H, W)``. Stages ``stem``, ``res2`` .. ``res5`` (the four residual
stages, ``res2`` = torchvision's ``layer1``) and ``pool`` (global average over time and
space, the representation, ``(N, feature_dim)``). ``res2`` keeps the resolution; ``res3``
.. ``res5`` halve time, height and width. The stem halves height and width
(``stem_stride=2``, standard) or keeps them (``stem_stride=1``, for tiny frames).

R(2+1)D factorises each 3x3x3 convolution into a 1x3x3 spatial and a 3x1x1 temporal one
with ``mid = (in * out * 27) // (in * 9 + 3 * out)`` channels between them (``in``: the
block's input width, for both convolutions of a block, as torchvision), so it has about
as many parameters as R3D.

>>> net = r2plus1d_18(width=16)           # a quarter of the standard width
>>> net.forward_features(x, ("res3", "res4", "res5"))   # dict of (N, C_s, T_s, H_s, W_s)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["VideoResNet", "r3d_18", "r2plus1d_18", "VIDEO_STAGES"]

VIDEO_STAGES = ("stem", "res2", "res3", "res4", "res5", "pool")


def _conv3d(in_ch: int, out_ch: int, mid: int, stride: int = 1) -> nn.Module:
    return nn.Conv3d(in_ch, out_ch, 3, stride, 1, bias=False)


def _mid(in_ch: int, out_ch: int) -> int:
    return (in_ch * out_ch * 27) // (in_ch * 9 + 3 * out_ch)


def _conv2plus1d(in_ch: int, out_ch: int, mid: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(in_ch, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, out_ch, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False),
    )


class _Block(nn.Module):
    def __init__(self, conv, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        mid = _mid(in_ch, ch)  # both convolutions of a block use the block's input width (as torchvision)
        self.conv1 = nn.Sequential(conv(in_ch, ch, mid, stride), nn.BatchNorm3d(ch), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv(ch, ch, mid), nn.BatchNorm3d(ch))
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_ch != ch:
            self.shortcut = nn.Sequential(nn.Conv3d(in_ch, ch, 1, stride, bias=False), nn.BatchNorm3d(ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class VideoResNet(nn.Module):
    """A 3D ResNet without a classifier.

    Args:
        conv: ``"r3d"`` (full 3x3x3 convolutions) or ``"r2plus1d"`` (factorised).
        layers: blocks per stage (``(2, 2, 2, 2)``: the 18-layer network).
        width: channels of ``res2`` (64 standard); stages use ``width * (1, 2, 4, 8)``.
        in_channels: 3 (RGB) or 1.
        stem_stride: spatial stride of the stem (2 standard, 1 for tiny frames).
    """

    def __init__(self, conv: str = "r3d", layers: Sequence[int] = (2, 2, 2, 2), width: int = 64,
                 in_channels: int = 3, stem_stride: int = 2):
        super().__init__()
        if conv not in ("r3d", "r2plus1d"):
            raise ValueError(f"conv must be 'r3d' or 'r2plus1d', got {conv!r}")
        if width < 1 or in_channels < 1 or stem_stride not in (1, 2) or len(layers) != 4:
            raise ValueError(f"need width >= 1, in_channels >= 1, stem_stride 1 or 2 and 4 stages; got {width}, "
                             f"{in_channels}, {stem_stride}, {list(layers)}")
        self.config = {"name": "video_resnet", "conv": conv, "layers": list(layers), "width": width,
                       "in_channels": in_channels, "stem_stride": stem_stride}
        s = stem_stride
        arch = conv
        if arch == "r3d":
            conv = _conv3d
            self.stem = nn.Sequential(nn.Conv3d(in_channels, width, (3, 7, 7), (1, s, s), (1, 3, 3), bias=False),
                                      nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        else:
            conv = _conv2plus1d
            mid = max(1, round(45 * width / 64))
            self.stem = nn.Sequential(
                nn.Conv3d(in_channels, mid, (1, 7, 7), (1, s, s), (0, 3, 3), bias=False), nn.BatchNorm3d(mid),
                nn.ReLU(inplace=True),
                nn.Conv3d(mid, width, (3, 1, 1), 1, (1, 0, 0), bias=False), nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        self.stage_channels = {"stem": width}
        in_ch = width
        for i, n in enumerate(layers):
            ch = width * 2**i
            blocks = [_Block(conv, in_ch if j == 0 else ch, ch, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]
            setattr(self, f"res{i + 2}", nn.Sequential(*blocks))
            self.stage_channels[f"res{i + 2}"] = ch
            in_ch = ch
        self.feature_dim = in_ch
        self.stage_channels["pool"] = in_ch
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return VIDEO_STAGES

    def forward_features(self, x: Tensor, stages: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Feature maps ``(N, C_s, T_s, H_s, W_s)`` of the requested ``stages`` (``pool``:
        ``(N, feature_dim)``); stops after the deepest one requested."""
        if x.dim() != 5:
            raise ValueError(f"video networks take clips (N, C, T, H, W), got shape {tuple(x.shape)}")
        wanted = VIDEO_STAGES if stages is None else tuple(stages)
        unknown = [s for s in wanted if s not in VIDEO_STAGES]
        if unknown:
            raise KeyError(f"unknown stage(s) {unknown}; this network has {list(VIDEO_STAGES)}")
        last = max(VIDEO_STAGES.index(s) for s in wanted)
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        if "stem" in wanted:
            out["stem"] = x
        for i, name in enumerate(("res2", "res3", "res4", "res5"), start=1):
            if last < i:
                return out
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
        if "pool" in wanted:
            out["pool"] = torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features ``(N, feature_dim)``."""
        return self.forward_features(x, ("pool",))["pool"]


def r3d_18(width: int = 64, in_channels: int = 3, stem_stride: int = 2) -> VideoResNet:
    return VideoResNet("r3d", (2, 2, 2, 2), width, in_channels, stem_stride)


def r2plus1d_18(width: int = 64, in_channels: int = 3, stem_stride: int = 2) -> VideoResNet:
    return VideoResNet("r2plus1d", (2, 2, 2, 2), width, in_channels, stem_stride)
