"""What a recipe can name: methods (with their hyperparameters) and the modality each
belongs to (with its data/model sections, run set-up and evaluation protocols).

A modality module (``invlab.runs.image``, ...) registers itself on import;
``invlab.runs.modalities`` imports them all. New capabilities add a modality or a
method here without touching the generic run machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunParts", "Modality", "MethodSpec", "MODALITIES", "METHODS", "register_modality", "register_method"]


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
    # rebuild the exported encoder from a run's config and the encoder's state dict
    encoder_from_state: Callable[[Any, dict[str, Any]], Any] | None = None


@dataclass(frozen=True)
class MethodSpec:
    name: str
    modality: str
    params: type  # dataclass of the method's hyperparameters (`params` section)
    views: int | None = None  # number of views the method needs, if fixed


MODALITIES: dict[str, Modality] = {}
METHODS: dict[str, MethodSpec] = {}


def register_modality(modality: Modality) -> Modality:
    MODALITIES[modality.name] = modality
    return modality


def register_method(spec: MethodSpec) -> MethodSpec:
    METHODS[spec.name] = spec
    return spec
