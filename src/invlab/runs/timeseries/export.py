"""Time-series encoders: export (``encoder.safetensors`` + ``encoder.json`` with the
``PatchTransformer`` config; ``classifier.safetensors`` for supervised runs) and loading
through the one encoder format of :mod:`invlab.runs.encoders`, plus per-epoch snapshots
for model selection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch

from invlab.errors import CheckpointError
from invlab.nn.patch_transformer import PatchTransformer
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.encoders import encoder_meta, export_encoder, load_exported_encoder, save_weights

__all__ = ["export_series_encoder", "EncoderSnapshots", "load_series_encoder"]


def _patches(encoder: torch.nn.Module) -> dict[str, Any]:
    """``num_patches`` for a patch Transformer; nothing for encoders without patches (TS2Vec)."""
    n = getattr(encoder, "num_patches", None)
    return {} if n is None else {"num_patches": n}


def _series_meta(encoder: PatchTransformer, **extra: Any) -> dict[str, Any]:
    return encoder_meta(encoder, modality="timeseries", **_patches(encoder), **extra)


def export_series_encoder(encoder: PatchTransformer, folder: str | Path, classifier: torch.nn.Module | None = None,
                          **extra: Any) -> Path:
    """Write ``encoder.safetensors`` + ``encoder.json`` (and ``classifier.safetensors``)."""
    return export_encoder(encoder, folder, classifier, modality="timeseries", **_patches(encoder), **extra)


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
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "encoder.json", json.dumps(_series_meta(pl_module.encoder, **self.meta), indent=2).encode())
        if trainer.global_step == 0:
            save_weights(pl_module.encoder, folder / "epoch000.safetensors")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            save_weights(pl_module.encoder, self._folder(trainer) / f"epoch{trainer.current_epoch + 1:03d}.safetensors")


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
    return load_exported_encoder(path, meta_path or path.with_name("encoder.json"), modality="timeseries")
