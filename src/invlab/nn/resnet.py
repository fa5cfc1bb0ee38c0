"""ResNets with a CIFAR or ImageNet stem, a width multiplier and per-stage feature taps.

Stages are named ``stem``, ``layer1`` .. ``layer4`` (``res2`` .. ``res5`` in the detection
literature) and ``pool`` (global average pool, the usual representation).

>>> net = resnet18(stem="cifar", width=16)
>>> feats = net.forward_features(x, stages=("layer3", "pool"))   # dict name -> tensor
>>> net(x).shape        # (N, net.feature_dim), the pooled features
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "STAGES"]

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "pool")


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_ch != ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, ch, 1, stride, bias=False), nn.BatchNorm2d(ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int = 1):
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet backbone without a classifier.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        width: channels of the first stage (64 in the standard network); stages use
            ``width * (1, 2, 4, 8)``.
        stem: ``"cifar"`` (3x3 conv, stride 1, no max-pool; for 32 px inputs) or
            ``"imagenet"`` (7x7 conv stride 2 + 3x3 max-pool).
        in_channels: input channels (3 for RGB, 1 for grey).
        zero_init_residual: zero the last BN of each block (helps large-batch training).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        width: int = 64,
        stem: str = "cifar",
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if width < 1 or in_channels < 1:
            raise ValueError(f"width and in_channels must be positive, got {width}, {in_channels}")
        self.config = {
            "arch": {BasicBlock: "basic", Bottleneck: "bottleneck"}[block],
            "layers": list(layers),
            "width": width,
            "stem": stem,
            "in_channels": in_channels,
        }
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        in_ch = width
        self.stage_channels: dict[str, int] = {"stem": width}
        for i, n_blocks in enumerate(layers):
            ch = width * 2**i
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n_blocks):
                blocks.append(block(in_ch, ch, stride if j == 0 else 1))
                in_ch = ch * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.stage_channels[f"layer{i + 1}"] = in_ch
        self.num_stages = len(layers)
        self.feature_dim = in_ch
        self.stage_channels["pool"] = in_ch

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                    nn.init.zeros_(last_bn.weight)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return ("stem", *(f"layer{i + 1}" for i in range(self.num_stages)), "pool")

    def forward_features(self, x: Tensor, stages: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Feature maps of the requested ``stages`` (all by default); stops early once
        the deepest requested stage is computed."""
        names = self.stage_names
        wanted = tuple(names) if stages is None else tuple(stages)
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise KeyError(f"unknown stage(s) {unknown}; this network has {list(names)}")
        last = max(names.index(s) for s in wanted)
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        if "stem" in wanted:
            out["stem"] = x
        for i in range(1, self.num_stages + 1):
            if last < i:
                return out
            x = getattr(self, f"layer{i}")(x)
            if f"layer{i}" in wanted:
                out[f"layer{i}"] = x
        if "pool" in wanted:
            out["pool"] = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features ``(N, feature_dim)``."""
        x = self.stem(x)
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)
