"""Exported encoders, for every modality: ``encoder.safetensors`` (the weights) +
``encoder.json`` (how to rebuild the module), written and read back here.

The description is ``{"format": "invlab-encoder", "format_version": 1, "invlab_version",
"modality", "backbone": <the backbone's config>, "feature_dim", ...}``; image encoders
(:class:`~invlab.nn.encoder.Encoder`: normalisation + backbone) also record ``mean`` and
``std``. One reader rebuilds any of them: the backbone from its config
(:func:`~invlab.nn.registry.backbone_from_config`), wrapped in an ``Encoder`` when the
description carries a normalisation. Files written before this module existed (image and
time-series exports, both format 1) load unchanged; a description without ``modality`` is
an image encoder (the first exports recorded none).

This is a leaf of the run layer: it knows nothing of recipes or run folders. Loading from a
run folder or a training checkpoint is :func:`invlab.runs.export.load_encoder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import invlab
from invlab.errors import CheckpointError
from invlab.nn.encoder import Encoder
from invlab.nn.registry import backbone_from_config
from invlab.runs.checkpoint import atomic_write_bytes

__all__ = [
    "ENCODER_FORMAT", "encoder_meta", "save_weights", "export_encoder", "read_encoder_meta", "load_weights",
    "encoder_from_meta", "load_exported_encoder", "find_run_root",
]

ENCODER_FORMAT = 1


def encoder_meta(encoder: torch.nn.Module, **extra: Any) -> dict[str, Any]:
    """The ``encoder.json`` description of ``encoder`` (an image ``Encoder`` or a backbone
    recording its ``config``, e.g. the time-series ``PatchTransformer``), plus ``extra``."""
    head = {"format": "invlab-encoder", "format_version": ENCODER_FORMAT, "invlab_version": invlab.__version__}
    if isinstance(encoder, Encoder):
        config = getattr(encoder.backbone, "config", None)
        if config is None:
            raise CheckpointError(f"{type(encoder.backbone).__name__} records no config; it cannot be exported")
        return {**head, "backbone": config, "mean": encoder.mean.flatten().tolist(),
                "std": encoder.std.flatten().tolist(), "feature_dim": encoder.feature_dim, **extra}
    config = getattr(encoder, "config", None)
    if config is None:
        raise CheckpointError(f"{type(encoder).__name__} records no config; it cannot be exported")
    modality = extra.pop("modality", None)
    described = {"modality": modality} if modality is not None else {}
    feature_dim = getattr(encoder, "feature_dim", None) or getattr(encoder, "d_model", None)
    return {**head, **described, "backbone": config, "feature_dim": feature_dim, **extra}


def save_weights(module: torch.nn.Module, path: Path) -> Path:
    """``module``'s state dict as safetensors at ``path`` (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata={"format": "invlab-encoder"})
    tmp.replace(path)
    return path


def export_encoder(encoder: torch.nn.Module, folder: str | Path, classifier: torch.nn.Module | None = None,
                   **extra: Any) -> Path:
    """Write ``folder/encoder.safetensors`` + ``folder/encoder.json`` (and, for supervised
    runs that keep their head, ``classifier.safetensors``). ``extra`` (``modality``,
    ``method``, data facts) goes into the description."""
    folder = Path(folder)
    save_weights(encoder, folder / "encoder.safetensors")
    if classifier is not None:
        save_weights(classifier, folder / "classifier.safetensors")
        extra["classifier"] = "classifier.safetensors"
    atomic_write_bytes(folder / "encoder.json", json.dumps(encoder_meta(encoder, **extra), indent=2).encode())
    return folder / "encoder.safetensors"


def read_encoder_meta(path: Path, modality: str | None = None) -> dict[str, Any]:
    """Read and check an ``encoder.json`` (``modality``: the one the caller needs)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: the encoder description is missing (it is written beside the weights)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read the encoder description ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != "invlab-encoder":
        raise CheckpointError(f"{path}: not an invlab encoder description")
    if int(meta.get("format_version", 0)) > ENCODER_FORMAT:
        raise CheckpointError(
            f"{path}: written by a newer invlab ({meta.get('invlab_version')}, format "
            f"{meta.get('format_version')}); upgrade invlab to load it"
        )
    found = meta.get("modality", "image")
    if modality is not None and found != modality:
        label = {"timeseries": "time-series"}.get(modality, modality)
        raise CheckpointError(f"{path}: not a {label} invlab encoder description (it describes a {found} encoder)")
    return meta


def encoder_from_meta(meta: dict[str, Any], source: Path) -> torch.nn.Module:
    """An untrained module with the architecture ``meta`` describes."""
    try:
        backbone = backbone_from_config(meta["backbone"])
        if "mean" in meta:
            return Encoder(backbone, meta["mean"], meta["std"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{source}: cannot rebuild the encoder ({err})") from None
    return backbone


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> torch.nn.Module:
    """Load ``state`` into ``module`` exactly (every key, every shape); eval mode."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        lines = str(err).strip().splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(err)
        raise CheckpointError(f"{source}: weights do not match the recorded architecture ({first})") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match the recorded architecture "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    return module.eval()


def load_exported_encoder(path: str | Path, meta_path: Path | None = None,
                          modality: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """An exported encoder from its ``.safetensors`` (or the folder holding
    ``encoder.safetensors``). The description is ``meta_path``, else ``encoder.json`` beside
    ``encoder.safetensors`` / ``<name>.json`` beside ``<name>.safetensors``. Returns
    ``(module in eval mode, description)``; nothing is unpickled."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "encoder.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (expected a run folder or an encoder .safetensors)")
    if meta_path is None:
        meta_path = path.with_name("encoder.json") if path.name == "encoder.safetensors" else path.with_suffix(".json")
        if not meta_path.is_file() and path.with_name("encoder.json").is_file():
            meta_path = path.with_name("encoder.json")  # snapshots share one description
    if not meta_path.is_file():
        raise CheckpointError(f"{path}: its description {meta_path.name} is missing beside it")
    meta = read_encoder_meta(meta_path, modality)
    module = encoder_from_meta(meta, path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    return load_weights(module, state, path), meta


def find_run_root(path: str | Path, depth: int = 4) -> Path | None:
    """The run folder (holding ``config.yaml``) containing ``path``, looking ``depth`` levels up."""
    p = Path(path).resolve()
    for candidate in [p, *p.parents][:depth]:
        if (candidate / "config.yaml").is_file():
            return candidate
    return None
