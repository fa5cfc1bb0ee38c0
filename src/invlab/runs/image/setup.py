"""Building an image run from a validated recipe: the method (any image method of
:mod:`invlab.methods.registry`), its data module and the export function."""

from __future__ import annotations

from pathlib import Path

import torch

from invlab.data.loader import ImageDataModule
from invlab.methods.base import SSLMethod
from invlab.methods.registry import METHODS
from invlab.runs.encoders import export_encoder
from invlab.runs.image.encoder import build_encoder
from invlab.runs.image.recipe import build_pipelines, load_data, normalisation
from invlab.runs.modality import RunParts
from invlab.transforms.views import MultiViewSampler

__all__ = ["build_method", "pin_memory", "setup"]


def build_method(cfg, mean: list[float], std: list[float], channels: int, num_classes: int | None) -> SSLMethod:
    """The recipe's method (``METHODS[cfg.method].cls``) around a fresh encoder: the
    ``SSLMethod`` constructor contract plus the ``params`` section as keyword arguments."""
    encoder = build_encoder(cfg, mean, std, channels)
    views = MultiViewSampler(build_pipelines(cfg))
    spec = METHODS[cfg.method]
    kwargs = spec.param_kwargs(cfg.params)
    if cfg.model.projector is not None:
        kwargs["projector"] = cfg.model.projector
    if cfg.model.predictor is not None:
        kwargs["predictor"] = cfg.model.predictor
    return spec.cls(
        encoder, views,
        num_classes=num_classes if cfg.monitor.probe or cfg.monitor.knn or spec.needs_labels else None,
        optim=cfg.optim, knn_k=cfg.monitor.knn_k, knn_t=cfg.monitor.knn_t, seed=cfg.seed, **kwargs,
    )


def pin_memory(cfg) -> bool:
    """``data.pin_memory``, or (``null``) whether the run trains on a CUDA device."""
    if cfg.data.pin_memory is not None:
        return bool(cfg.data.pin_memory)
    return cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def setup(cfg, world_size: int, progress: bool) -> RunParts:
    """Data, method, data module and exporter of an image run (``world_size`` processes)."""
    train, test = load_data(cfg, progress=progress)
    mean, std = normalisation(cfg, train)
    method = build_method(cfg, mean, std, train.channels, train.num_classes)
    datamodule = ImageDataModule(
        train, test if (cfg.monitor.knn or cfg.monitor.probe) else None,
        batch_size=cfg.data.batch_size // world_size, eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers, seed=cfg.seed, pin_memory=pin_memory(cfg),
    )

    def export(folder: Path) -> None:
        export_encoder(method.encoder, folder, modality="image", method=cfg.method, input_size=list(train.size),
                       channels=train.channels, classes=train.classes)

    return RunParts(method, datamodule, export, {"train_size": len(train), "test_size": len(test)})
