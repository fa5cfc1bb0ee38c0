"""Exported encoders (``encoder.safetensors`` + ``encoder.json``) and loading any model
reference: a run folder, a Lightning checkpoint or an exported encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import invlab
from invlab.errors import CheckpointError
from invlab.nn.encoder import Encoder
from invlab.nn.registry import backbone_from_config
from invlab.runs.checkpoint import (
    atomic_save_safetensors,
    atomic_write_bytes,
    read_json_object,
    safe_torch_load,
)

__all__ = ["ENCODER_FORMAT", "export_encoder", "load_encoder", "encoder_meta"]

ENCODER_FORMAT = 1


def encoder_meta(encoder: Encoder, **extra: Any) -> dict[str, Any]:
    backbone_config = getattr(encoder.backbone, "config", None)
    if backbone_config is None:
        raise CheckpointError(f"{type(encoder.backbone).__name__} records no config; it cannot be exported")
    return {
        "format": "invlab-encoder",
        "format_version": ENCODER_FORMAT,
        "invlab_version": invlab.__version__,
        "backbone": backbone_config,
        "mean": encoder.mean.flatten().tolist(),
        "std": encoder.std.flatten().tolist(),
        "feature_dim": encoder.feature_dim,
        **extra,
    }


def export_encoder(encoder: Encoder, folder: str | Path, **extra: Any) -> Path:
    """Write ``folder/encoder.safetensors`` and ``folder/encoder.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(encoder.state_dict(), folder / "encoder.safetensors", {"format": "invlab-encoder"})
    atomic_write_bytes(folder / "encoder.json", json.dumps(encoder_meta(encoder, **extra), indent=2).encode())
    return folder / "encoder.safetensors"


def _encoder_from_meta(meta: dict[str, Any], source: Path) -> Encoder:
    if meta.get("format") != "invlab-encoder":
        raise CheckpointError(f"{source}: not an invlab encoder description")
    if not isinstance(meta.get("format_version", 0), int) or meta.get("format_version", 0) > ENCODER_FORMAT:
        raise CheckpointError(
            f"{source}: written by a newer invlab ({meta.get('invlab_version')}, format "
            f"{meta.get('format_version')}); upgrade invlab to load it"
        )
    try:
        backbone = backbone_from_config(meta["backbone"])
        return Encoder(backbone, meta["mean"], meta["std"])
    except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as err:
        raise CheckpointError(f"{source}: cannot rebuild the encoder ({type(err).__name__}: {err})") from None


def _load_state(encoder: Encoder, state: dict[str, torch.Tensor], source: Path) -> Encoder:
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match the recorded architecture "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    return encoder.eval()


def _from_safetensors(path: Path) -> tuple[Encoder, dict[str, Any]]:
    meta_path = path.with_name("encoder.json") if path.name == "encoder.safetensors" else path.with_suffix(".json")
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: its description {meta_path.name} is missing beside it")
    meta = read_json_object(meta_path, "the encoder description", CheckpointError)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    return _load_state(_encoder_from_meta(meta, path), state, path), meta


def _from_checkpoint(path: Path) -> tuple[Encoder, dict[str, Any]]:
    from invlab.runs.run_dir import RunDir  # the run folder knows the config (imports config)

    run = RunDir.find(path)
    if run is None:
        raise CheckpointError(f"{path}: no run folder (config.yaml) above it; export the encoder from its run")
    cfg = run.load_config()
    ckpt = safe_torch_load(path)
    state = {k[len("encoder.") :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("encoder.")}
    if not state:
        raise CheckpointError(f"{path}: holds no encoder weights")
    rebuild = cfg.modality.encoder_from_state
    if rebuild is None:
        raise CheckpointError(f"{path}: {cfg.modality.name} runs load from their exported encoder, not a checkpoint")
    encoder = _load_state(rebuild(cfg, state), state, path)
    return encoder, encoder_meta(encoder, modality=cfg.modality.name, method=cfg.method, source=str(path))


def load_encoder(ref: str | Path) -> tuple[Encoder, dict[str, Any]]:
    """Load an encoder from a run folder, a ``.ckpt`` or an ``encoder.safetensors``.

    Returns ``(encoder in eval mode, metadata)``. Nothing is unpickled beyond tensors.
    """
    path = Path(ref).expanduser()
    if not path.exists():
        raise CheckpointError(f"model {path} does not exist (expected a run folder, a .ckpt or an encoder.safetensors)")
    if path.is_dir():
        if (path / "encoder.safetensors").is_file():
            return _from_safetensors(path / "encoder.safetensors")
        last = path / "checkpoints" / "last.ckpt"
        if last.is_file():
            return _from_checkpoint(last)
        raise CheckpointError(f"{path}: neither encoder.safetensors nor checkpoints/last.ckpt found")
    if path.suffix == ".safetensors":
        return _from_safetensors(path)
    if path.suffix in (".ckpt", ".pt", ".pth"):
        return _from_checkpoint(path)
    raise CheckpointError(f"{path}: unknown model file type (expected .safetensors or .ckpt)")
