"""Exported time-series encoders (``encoder.safetensors`` + ``encoder.json`` with the
``PatchTransformer`` config; ``classifier.safetensors`` for supervised runs), per-epoch
snapshots for model selection, and loading them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import invlab
from invlab.errors import CheckpointError
from invlab.nn.patch_transformer import PatchTransformer
from invlab.runs.checkpoint import atomic_save_safetensors, atomic_write_bytes

__all__ = ["export_series_encoder", "EncoderSnapshots", "load_series_encoder"]


def _encoder_meta(encoder: PatchTransformer, **extra: Any) -> dict[str, Any]:
    return {
        "format": "invlab-encoder", "format_version": 1, "invlab_version": invlab.__version__,
        "modality": "timeseries", "backbone": encoder.config, "feature_dim": encoder.d_model,
        "num_patches": encoder.num_patches, **extra,
    }


def _save_state(module: torch.nn.Module, path: Path) -> None:
    atomic_save_safetensors(module.state_dict(), path, {"format": "invlab-encoder"})


def export_series_encoder(encoder: PatchTransformer, folder: str | Path, classifier: torch.nn.Module | None = None,
                          **extra: Any) -> Path:
    """Write ``encoder.safetensors`` + ``encoder.json`` (and ``classifier.safetensors``)."""
    folder = Path(folder)
    _save_state(encoder, folder / "encoder.safetensors")
    if classifier is not None:
        _save_state(classifier, folder / "classifier.safetensors")
        extra["classifier"] = "classifier.safetensors"
    atomic_write_bytes(folder / "encoder.json", json.dumps(_encoder_meta(encoder, **extra), indent=2).encode())
    return folder / "encoder.safetensors"


class EncoderSnapshots(L.Callback):
    """Save the encoder's weights before training (``epoch000``) and after every epoch
    (``epochNNN``) into ``RUN/snapshots/`` (a few hundred kB each), with one
    ``encoder.json`` describing them, for model selection on validation."""

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta

    def _folder(self, trainer) -> Path:
        return Path(trainer.default_root_dir) / "snapshots"

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        folder = self._folder(trainer)
        atomic_write_bytes(folder / "encoder.json", json.dumps(_encoder_meta(pl_module.encoder, **self.meta), indent=2).encode())
        if trainer.global_step == 0:
            _save_state(pl_module.encoder, folder / "epoch000.safetensors")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            _save_state(pl_module.encoder, self._folder(trainer) / f"epoch{trainer.current_epoch + 1:03d}.safetensors")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read the encoder description ({err})") from None
    if meta.get("format") != "invlab-encoder" or meta.get("modality") != "timeseries":
        raise CheckpointError(f"{path}: not a time-series invlab encoder description")
    if int(meta.get("format_version", 0)) > 1:
        raise CheckpointError(f"{path}: written by a newer invlab ({meta.get('invlab_version')}); upgrade to load it")
    return meta


def load_series_encoder(ref: str | Path, meta_path: Path | None = None) -> tuple[PatchTransformer, dict[str, Any]]:
    """A time-series encoder from a run folder, an ``encoder.safetensors`` or a snapshot
    (its description is the ``encoder.json`` beside it). Returns it in eval mode."""
    path = Path(ref).expanduser()
    if path.is_dir():
        path = path / "encoder.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (expected a run folder or an encoder .safetensors)")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: time-series encoders load from .safetensors (the run's encoder or snapshots)")
    meta = _read_meta(meta_path or path.with_name("encoder.json"))
    config = dict(meta["backbone"])
    config.pop("arch", None)
    try:
        encoder = PatchTransformer(**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the encoder ({err})") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        missing, unexpected = encoder.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        first = str(err).strip().splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        raise CheckpointError(f"{path}: weights do not match the recorded architecture ({first})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the recorded architecture "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return encoder.eval(), meta


