"""What a modality (images, time series, later video) gives the run layer: its recipe
sections, run set-up, evaluation protocols and, optionally, how to rebuild its encoder
from a training checkpoint.

Each modality package (``runs/image/``, ``runs/timeseries/``) defines one ``MODALITY``;
:mod:`invlab.runs.modalities` lists them explicitly. Methods are not registered here: they
live in :mod:`invlab.methods.registry` and name their modality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunParts", "Modality"]


@dataclass
class RunParts:
    """Everything :func:`~invlab.runs.pretrain_run.pretrain` needs from a modality."""

    method: Any  # LightningModule
    datamodule: Any  # LightningDataModule
    export: Callable[[Path], None]  # write the exported encoder into a run folder
    info: dict[str, Any] = field(default_factory=dict)  # extras for summary.json


@dataclass(frozen=True)
class Modality:
    name: str
    data: type  # dataclass of the `data` section
    model: type  # dataclass of the `model` section
    setup: Callable[..., RunParts]  # (cfg, world_size, progress) -> RunParts
    validate: Callable[[Any], None] = lambda cfg: None
    augment: type | None = None  # dataclass of the `augment` section, if any
    monitor: type | None = None  # dataclass of the `monitor` section, if any
    # protocol name -> fn(model_ref, cfg, **options) -> result dict
    protocols: dict[str, Callable[..., dict[str, Any]]] = field(default_factory=dict)
    # (checkpoint path, run folder) -> (encoder in eval mode, metadata); None: load exported encoders only
    encoder_from_checkpoint: Callable[[Path, Path], tuple[Any, dict[str, Any]]] | None = None
