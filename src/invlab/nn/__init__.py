"""Backbones with per-stage feature taps, and declarative heads."""

from invlab.nn.heads import MLP, HeadSpec
from invlab.nn.registry import BACKBONES, build_backbone
from invlab.nn.resnet import STAGES, BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50

__all__ = [
    "MLP", "HeadSpec", "STAGES", "BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34",
    "resnet50", "BACKBONES", "build_backbone",
]
from invlab.nn.encoder import Encoder  # noqa: E402
from invlab.nn.patch_transformer import PatchTransformer  # noqa: E402

__all__ += ["Encoder", "PatchTransformer"]
from invlab.nn.video_resnet import VIDEO_STAGES, VideoResNet, r2plus1d_18, r3d_18  # noqa: E402

__all__ += ["VIDEO_STAGES", "VideoResNet", "r2plus1d_18", "r3d_18"]
