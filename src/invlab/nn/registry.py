"""Backbones by name, and rebuilding them from the config they record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from invlab.nn.dilated_conv import TS2VecEncoder
from invlab.nn.patch_transformer import PatchTransformer
from invlab.nn.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from invlab.nn.video_resnet import VideoResNet, r2plus1d_18, r3d_18

__all__ = ["BACKBONES", "build_backbone", "backbone_from_config"]

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "patch_transformer": PatchTransformer,  # time series (TimeDRL)
    "ts2vec_encoder": TS2VecEncoder,  # time series (TS2Vec's dilated convolutions)
    "r3d_18": r3d_18,  # video (N, C, T, H, W)
    "r2plus1d_18": r2plus1d_18,
    "video_resnet": VideoResNet,
}


def build_backbone(name: str, **kwargs: Any) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name](**kwargs)


def backbone_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a backbone from its ``config`` (as written next to exported weights)."""
    config = dict(config)
    kind = config.pop("arch", None)
    if kind in ("basic", "bottleneck"):
        block = BasicBlock if kind == "basic" else Bottleneck
        return ResNet(block, **config)
    name = config.pop("name", kind)
    return build_backbone(name, **config)
