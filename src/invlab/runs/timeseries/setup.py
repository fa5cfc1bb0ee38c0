"""Building a time-series run from a validated recipe: data module, method (any
time-series method of :mod:`invlab.methods.registry`), snapshot callback and the export
function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from invlab.data.timeseries import LabelledDataset, TimeSeriesDataModule, WindowDataset
from invlab.errors import DataError
from invlab.methods.registry import METHODS
from invlab.runs.modality import RunParts
from invlab.runs.timeseries.export import EncoderSnapshots, export_series_encoder
from invlab.runs.timeseries.recipe import (
    build_encoder,
    check_forecast_windows,
    is_forecasting,
    load_forecast_data,
    load_labelled_data,
)
from invlab.transforms.registry import build_pipeline

__all__ = ["setup"]


def setup(cfg, world_size: int, progress: bool) -> RunParts:
    """Data, method, data module and exporter of a time-series run. The method is built as
    ``cls(encoder, **params, augment=..., optim=, seed=, callbacks=)``, or, when it
    ``needs_labels``, ``cls(encoder, num_classes, **params, optim=, seed=, callbacks=)``."""
    d = cfg.data
    batch = d.batch_size // world_size
    if is_forecasting(cfg):
        series = load_forecast_data(cfg)
        check_forecast_windows(series, d.seq_len, d.horizons, val_windows=cfg.monitor.val_loss)
        train = WindowDataset(series, "train", d.seq_len, 0, d.window_stride)
        val = WindowDataset(series, "val", d.seq_len, 0, d.window_stride) if cfg.monitor.val_loss else None
        if len(train) < batch:
            raise DataError(f"{series.path}: {len(train)} training windows, fewer than data.batch_size={d.batch_size}")
        encoder = build_encoder(cfg, series.channels, d.seq_len)
        info = {"task": "forecasting", "columns": series.columns, "train_windows": len(train),
                "borders": {k: list(v) for k, v in series.borders.items()}, "seq_len": d.seq_len}
        meta = {**info, "scaler_mean": series.mean.tolist(), "scaler_std": series.std.tolist(), "data": series.path}
        train_set: Any = train
        num_classes = None
    else:
        train_data, test_data = load_labelled_data(cfg)
        encoder = build_encoder(cfg, train_data.channels, train_data.length)
        train_set, val = LabelledDataset(train_data), None
        info = {"task": "classification", "dataset": train_data.name, "train_size": len(train_data),
                "test_size": len(test_data), "classes": train_data.classes, "seq_len": train_data.length}
        meta = dict(info)
        num_classes = train_data.num_classes
    meta["method"] = cfg.method
    callbacks = [EncoderSnapshots(meta)] if cfg.monitor.snapshots else []
    spec = METHODS[cfg.method]
    common = dict(optim=cfg.optim, seed=cfg.seed, callbacks=callbacks)
    if spec.needs_labels:
        method: L.LightningModule = spec.cls(encoder, num_classes, **spec.param_kwargs(cfg.params), **common)
    else:
        augment = build_pipeline(cfg.augment.pipeline, "augment.pipeline") if cfg.augment.pipeline else None
        method = spec.cls(encoder, **spec.param_kwargs(cfg.params), augment=augment, **common)
    datamodule = TimeSeriesDataModule(train_set, val, batch, d.eval_batch_size, d.num_workers, cfg.seed)

    def export(folder: Path) -> None:
        classifier = getattr(method, "classifier", None)
        export_series_encoder(method.encoder, folder, classifier, **meta)

    return RunParts(method, datamodule, export, info)


