"""The image encoder (normalisation + backbone) a recipe's ``model`` section builds, and
rebuilding it from a training checkpoint of an image run."""

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
from invlab.runs.image.recipe import ImageModel
from invlab.runs.schema import from_dict, yaml_load

__all__ = ["build_encoder", "encoder_from_state", "encoder_from_checkpoint", "load_image_encoder"]


def build_encoder(cfg, mean: list[float], std: list[float], channels: int) -> Encoder:
    """The encoder of ``cfg.model`` (a recipe, or the ``model`` section itself)."""
    m = getattr(cfg, "model", cfg)
    backbone = build_backbone(m.backbone, width=m.width, stem=m.stem, in_channels=channels,
                              zero_init_residual=m.zero_init_residual)
    return Encoder(backbone, mean, std, channels_last=m.channels_last)


def encoder_from_state(cfg, state: dict[str, torch.Tensor]) -> Encoder:
    """An untrained encoder shaped for ``state`` (channels and normalisation from its buffers)."""
    encoder = build_encoder(cfg, state["mean"].flatten().tolist(), state["std"].flatten().tolist(),
                            int(state["mean"].numel()))
    encoder.channels_last = False
    return encoder


def encoder_from_checkpoint(path: Path, run_root: Path) -> tuple[Encoder, dict[str, Any]]:
    """The encoder inside a training checkpoint of the image run in ``run_root`` (its
    ``config.yaml`` says the architecture; only its ``model`` section is read)."""
    try:
        raw = yaml_load((run_root / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{run_root / 'config.yaml'}: cannot read the run's config ({err})") from None
    model = from_dict(ImageModel, raw.get("model"), "model")
    ckpt = safe_torch_load(path)
    state = {k[len("encoder.") :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("encoder.")}
    if not state:
        raise CheckpointError(f"{path}: holds no encoder weights")
    encoder = load_weights(encoder_from_state(model, state), state, path)
    return encoder, encoder_meta(encoder, modality="image", method=raw.get("method"), source=str(path))


def load_image_encoder(ref: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """An image encoder from a run folder (its ``encoder.safetensors``, else
    ``checkpoints/last.ckpt``), a ``.ckpt`` or an ``encoder.safetensors``; eval mode."""
    path = Path(ref).expanduser()
    if not path.exists():
        raise CheckpointError(f"model {path} does not exist (expected a run folder, a .ckpt or an encoder.safetensors)")
    if path.is_dir():
        if (path / "encoder.safetensors").is_file():
            return load_exported_encoder(path / "encoder.safetensors", modality="image")
        if (path / "checkpoints" / "last.ckpt").is_file():
            path = path / "checkpoints" / "last.ckpt"
        else:
            raise CheckpointError(f"{path}: neither encoder.safetensors nor checkpoints/last.ckpt found")
    if path.suffix == ".safetensors":
        return load_exported_encoder(path, modality="image")
    if path.suffix in (".ckpt", ".pt", ".pth"):
        root = find_run_root(path)
        if root is None:
            raise CheckpointError(f"{path}: no run folder (config.yaml) above it; export the encoder from its run")
        return encoder_from_checkpoint(path, root)
    raise CheckpointError(f"{path}: unknown model file type (expected .safetensors or .ckpt)")
