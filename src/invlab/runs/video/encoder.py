"""The video encoder (normalisation + 3D backbone) a recipe's ``model`` section builds,
and loading it back (exported encoder, or the encoder inside a training checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from invlab.errors import CheckpointError
from invlab.nn.encoder import Encoder
from invlab.nn.registry import build_backbone
from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.encoders import encoder_meta, find_run_root, load_exported_encoder, load_weights
from invlab.runs.schema import from_dict, yaml_load
from invlab.runs.video.recipe import VideoModel

__all__ = ["build_encoder", "encoder_from_checkpoint", "load_video_encoder"]


def build_encoder(cfg, mean: list[float], std: list[float], channels: int = 3) -> Encoder:
    m = getattr(cfg, "model", cfg)
    backbone = build_backbone(m.backbone, width=m.width, stem_stride=m.stem_stride, in_channels=channels)
    return Encoder(backbone, mean, std)


def encoder_from_checkpoint(path: Path, run_root: Path) -> tuple[Encoder, dict[str, Any]]:
    """The encoder inside a training checkpoint of the video run in ``run_root``."""
    try:
        raw = yaml_load((run_root / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{run_root / 'config.yaml'}: cannot read the run's config ({err})") from None
    model = from_dict(VideoModel, raw.get("model"), "model")
    ckpt = safe_torch_load(path)
    state = {k[len("encoder."):]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("encoder.")}
    if not state:
        raise CheckpointError(f"{path}: holds no encoder weights")
    encoder = build_encoder(model, state["mean"].flatten().tolist(), state["std"].flatten().tolist(),
                            int(state["mean"].numel()))
    encoder = load_weights(encoder, state, path)
    return encoder, encoder_meta(encoder, modality="video", method=raw.get("method"), source=str(path))


def load_video_encoder(ref: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A video encoder from a run folder, a ``.ckpt`` or an ``encoder.safetensors``; eval mode."""
    path = Path(ref).expanduser()
    if not path.exists():
        raise CheckpointError(f"model {path} does not exist (expected a run folder, a .ckpt or an encoder.safetensors)")
    if path.is_dir():
        if (path / "encoder.safetensors").is_file():
            return load_exported_encoder(path / "encoder.safetensors", modality="video")
        if (path / "checkpoints" / "last.ckpt").is_file():
            path = path / "checkpoints" / "last.ckpt"
        else:
            raise CheckpointError(f"{path}: neither encoder.safetensors nor checkpoints/last.ckpt found")
    if path.suffix == ".safetensors":
        return load_exported_encoder(path, modality="video")
    root = find_run_root(path)
    if root is None:
        raise CheckpointError(f"{path}: no run folder (config.yaml) above it; export the encoder from its run")
    return encoder_from_checkpoint(path, root)
