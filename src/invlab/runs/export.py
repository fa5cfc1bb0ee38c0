"""Loading any model reference of any modality: a run folder, a training checkpoint or an
exported encoder. The encoder file format and its writer are :mod:`invlab.runs.encoders`
(a leaf); this module sits above the recipes and run folders because a checkpoint is only
understood through its run's config and modality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from invlab.errors import CheckpointError
from invlab.methods.registry import METHODS
from invlab.runs.encoders import (
    ENCODER_FORMAT,
    encoder_meta,
    export_encoder,
    find_run_root,
    load_exported_encoder,
)
from invlab.runs.modalities import MODALITIES
from invlab.runs.schema import yaml_load

__all__ = ["ENCODER_FORMAT", "export_encoder", "load_encoder", "encoder_meta"]


def _from_checkpoint(path: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    root = find_run_root(path)
    if root is None:
        raise CheckpointError(f"{path}: no run folder (config.yaml) above it; export the encoder from its run")
    try:
        raw = yaml_load((root / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise CheckpointError(f"{root / 'config.yaml'}: cannot read the run's config ({err})") from None
    method = raw.get("method", "simclr")
    if method not in METHODS:
        raise CheckpointError(f"{root / 'config.yaml'}: unknown method {method!r}; known: {', '.join(sorted(METHODS))}")
    modality = MODALITIES[METHODS[method].modality]
    if modality.encoder_from_checkpoint is None:
        raise CheckpointError(f"{path}: {modality.name} runs load from their exported encoder, not a checkpoint")
    return modality.encoder_from_checkpoint(path, root)


def load_encoder(ref: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load an encoder from a run folder, a ``.ckpt`` or an ``encoder.safetensors``.

    Returns ``(encoder in eval mode, metadata)``: an image :class:`~invlab.nn.encoder.Encoder`,
    or the time-series ``PatchTransformer``. Nothing is unpickled beyond tensors.
    """
    path = Path(ref).expanduser()
    if not path.exists():
        raise CheckpointError(f"model {path} does not exist (expected a run folder, a .ckpt or an encoder.safetensors)")
    if path.is_dir():
        if (path / "encoder.safetensors").is_file():
            return load_exported_encoder(path / "encoder.safetensors")
        last = path / "checkpoints" / "last.ckpt"
        if last.is_file():
            return _from_checkpoint(last)
        raise CheckpointError(f"{path}: neither encoder.safetensors nor checkpoints/last.ckpt found")
    if path.suffix == ".safetensors":
        return load_exported_encoder(path)
    if path.suffix in (".ckpt", ".pt", ".pth"):
        return _from_checkpoint(path)
    raise CheckpointError(f"{path}: unknown model file type (expected .safetensors or .ckpt)")
