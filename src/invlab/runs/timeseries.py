"""The time-series modality: recipe sections, run set-up, encoder export and snapshots,
and the ``forecast`` and ``classify`` protocols (TimeDRL and a supervised baseline).

Data (``data.name``):

- ``ett``: an ETT CSV (``data.root``), 12/4/4-month split (x4 rows for 15-minute files);
- ``csv``: any ``date,...`` CSV, split by ``data.split_ratios`` (70/10/20);
- ``ucr``: a UCR/UEA classification set by name (``data.dataset=GunPoint``; aeon's shipped
  copies load offline, ``data.root`` points at a folder of ``<name>_TRAIN/_TEST`` files) or
  two explicit files (``data.train_file``, ``data.test_file``).

Model selection never looks at the test split. Forecasting: the encoder is snapshotted
before training and after every epoch (``RUN/snapshots/``); for each horizon the
(snapshot, ridge penalty) or (snapshot, head epoch) with the lowest *validation* MSE is
selected, then scored once on test. Classification: the probe's regularisation is chosen
by cross-validation inside the training split; the encoder is the one at the end of the
recipe's fixed pretraining budget.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import invlab
from invlab.data.timeseries import (
    ForecastSeries,
    LabelledDataset,
    LabelledSeries,
    TimeSeriesDataModule,
    WindowDataset,
    load_classification_pair,
    load_forecast_series,
    window_starts,
)
from invlab.errors import CheckpointError, ConfigError, DataError
from invlab.evaluation.classification import classification_scores, encode_series, logistic_probe
from invlab.evaluation.forecasting import (
    RidgeProblem,
    encode_windows,
    fit_ridge,
    fit_sgd,
    forecast_errors,
    gram_matrix,
    tail_gram,
    target_rows,
)
from invlab.methods.supervised_timeseries import SupervisedTimeSeries
from invlab.methods.timedrl import TimeDRL
from invlab.nn.patch_transformer import PatchTransformer
from invlab.runs.checkpoint import atomic_write_bytes
from invlab.runs.registry import MethodSpec, Modality, RunParts, register_method, register_modality
from invlab.transforms.registry import build_pipeline

__all__ = [
    "TimeSeriesData", "TimeSeriesModel", "TimeSeriesAugment", "TimeSeriesMonitor", "TimeDRLParams",
    "SupervisedTimeSeriesParams", "EncoderSnapshots", "load_series_encoder", "export_series_encoder",
    "forecast_protocol", "classify_protocol", "setup", "validate",
]

FORECAST_SOURCES = ("ett", "csv")


# -- recipe sections ---------------------------------------------------------------------
@dataclass
class TimeSeriesData:
    name: str = "ett"  # ett | csv | ucr
    root: str | None = None  # the CSV file (ett, csv) or a folder of <dataset>_TRAIN/_TEST files (ucr)
    dataset: str | None = None  # UCR/UEA name (ucr); aeon's shipped sets load offline
    train_file: str | None = None  # ucr: explicit files instead of dataset/root
    test_file: str | None = None
    features: str = "multivariate"  # multivariate | univariate (forecasting: target column only)
    target: str = "OT"
    seq_len: int | None = None  # input length (forecasting); ucr: the series length
    horizons: list[int] = field(default_factory=lambda: [24, 48, 168, 336, 720])
    split_ratios: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])  # csv
    window_stride: int = 1  # step between pretraining windows
    missing: str = "error"  # error | ffill
    unequal_length: str = "error"  # error | pad | resample (ucr)
    batch_size: int = 32
    eval_batch_size: int = 256
    num_workers: int = 0


@dataclass
class TimeSeriesModel:
    patch_len: int = 16
    stride: int = 16
    d_model: int = 128
    n_heads: int = 2
    n_layers: int = 1
    d_ff: int | None = None  # default 4 * d_model
    dropout: float = 0.2
    token_embedding: str = "conv"  # conv | linear
    kernel_size: int = 3
    positional: str = "learnable"  # learnable | sincos | none
    channel_independent: bool | None = None  # default: true for forecasting, false for classification
    activation: str = "gelu"


@dataclass
class TimeSeriesAugment:
    # transforms on (batch, channels, time), used when params.randomness=augmentation
    pipeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TimeSeriesMonitor:
    val_loss: bool = True  # pretext losses on the validation windows each epoch (forecasting)
    snapshots: bool = True  # export the encoder before training and after each epoch


@dataclass
class TimeDRLParams:
    contrastive_weight: float = 0.5  # lambda
    predictive_weight: float = 1.0
    stop_gradient: bool = True
    instance: str = "cls"  # cls | last | mean
    randomness: str = "dropout"  # dropout | augmentation
    predictive_target: str = "normalized"  # normalized | raw (the authors' code)


@dataclass
class SupervisedTimeSeriesParams:
    instance: str = "cls"
    label_smoothing: float = 0.0


def _choice(key: str, value: Any, options: tuple) -> None:
    if value not in options:
        raise ConfigError(f"recipe key '{key}' must be one of {', '.join(map(str, options))}, got {value!r}")


def is_forecasting(cfg) -> bool:
    return cfg.data.name in FORECAST_SOURCES


def validate(cfg) -> None:
    d, m, p = cfg.data, cfg.model, cfg.params
    _choice("data.name", d.name, ("ett", "csv", "ucr"))
    _choice("data.features", d.features, ("multivariate", "univariate"))
    _choice("data.missing", d.missing, ("error", "ffill"))
    _choice("data.unequal_length", d.unequal_length, ("error", "pad", "resample"))
    for key in ("batch_size", "eval_batch_size", "window_stride"):
        if getattr(d, key) < 1:
            raise ConfigError(f"recipe key 'data.{key}' must be >= 1, got {getattr(d, key)}")
    if d.batch_size < 2:
        raise ConfigError(f"recipe key 'data.batch_size' must be >= 2 (the predictor's batch norm), got {d.batch_size}")
    if is_forecasting(cfg):
        if d.seq_len is None:
            raise ConfigError("recipe key 'data.seq_len' must be set for forecasting (e.g. 512)")
        if not d.horizons or min(d.horizons) < 1:
            raise ConfigError(f"recipe key 'data.horizons' must list positive horizons, got {d.horizons}")
        if len(d.split_ratios) != 3 or min(d.split_ratios) <= 0 or abs(sum(d.split_ratios) - 1) > 1e-6:
            raise ConfigError(f"recipe key 'data.split_ratios' must be three positive numbers summing to 1, got {d.split_ratios}")
        if cfg.method == "supervised_ts":
            raise ConfigError("method supervised_ts classifies labelled series: set data.name=ucr")
        if m.channel_independent is False:
            raise ConfigError("recipe key 'model.channel_independent': forecasting uses channel-independent patches (true)")
    elif d.dataset is None and (d.train_file is None or d.test_file is None):
        raise ConfigError("recipe key 'data.dataset' is not set: name a UCR/UEA set (data.dataset=GunPoint) "
                          "or give data.train_file and data.test_file")
    if d.seq_len is not None and d.seq_len < m.patch_len:
        raise ConfigError(f"recipe key 'data.seq_len' ({d.seq_len}) is shorter than 'model.patch_len' ({m.patch_len})")
    for key in ("patch_len", "stride", "d_model", "n_heads", "n_layers", "kernel_size"):
        if getattr(m, key) < 1:
            raise ConfigError(f"recipe key 'model.{key}' must be >= 1, got {getattr(m, key)}")
    if m.d_model % m.n_heads:
        raise ConfigError(f"recipe key 'model.d_model' ({m.d_model}) must be divisible by 'model.n_heads' ({m.n_heads})")
    if m.d_model < 2:
        raise ConfigError("recipe key 'model.d_model' must be >= 2 (the predictor halves it)")
    if not 0 <= m.dropout < 1:
        raise ConfigError(f"recipe key 'model.dropout' must lie in [0, 1), got {m.dropout}")
    _choice("model.token_embedding", m.token_embedding, ("conv", "linear"))
    _choice("model.positional", m.positional, ("learnable", "sincos", "none"))
    _choice("model.activation", m.activation, ("gelu", "relu"))
    if m.token_embedding == "conv" and m.kernel_size % 2 == 0:
        raise ConfigError(f"recipe key 'model.kernel_size' must be odd, got {m.kernel_size}")
    _choice("params.instance", p.instance, ("cls", "last", "mean"))
    if isinstance(p, TimeDRLParams):
        _choice("params.randomness", p.randomness, ("dropout", "augmentation"))
        _choice("params.predictive_target", p.predictive_target, ("normalized", "raw"))
        if p.contrastive_weight < 0 or p.predictive_weight < 0 or p.contrastive_weight + p.predictive_weight == 0:
            raise ConfigError("recipe keys 'params.contrastive_weight' and 'params.predictive_weight' must be >= 0, not both 0")
        if p.randomness == "augmentation" and not cfg.augment.pipeline:
            raise ConfigError("recipe key 'augment.pipeline' is empty but params.randomness=augmentation needs transforms")
        if p.contrastive_weight > 0 and p.randomness == "dropout" and m.dropout == 0:
            raise ConfigError("params.randomness=dropout with model.dropout=0 makes the two passes identical; "
                              "raise model.dropout or use augmentation")
    if cfg.augment.pipeline:
        build_pipeline(cfg.augment.pipeline, "augment.pipeline")


# -- data -----------------------------------------------------------------------------------
def _require_root(cfg) -> str:
    if cfg.data.root is None:
        kind = "an ETT CSV such as ETTh1.csv" if cfg.data.name == "ett" else "a date,... CSV file"
        raise DataError(f"data.root is not set: point it at {kind}")
    return cfg.data.root


def load_forecast_data(cfg) -> ForecastSeries:
    d = cfg.data
    return load_forecast_series(
        _require_root(cfg), d.seq_len, split="ett" if d.name == "ett" else "ratio", features=d.features,
        target=d.target, ratios=d.split_ratios, missing=d.missing,
    )


def load_labelled_data(cfg) -> tuple[LabelledSeries, LabelledSeries]:
    d = cfg.data
    train, test = load_classification_pair(d.dataset, d.root, d.train_file, d.test_file, d.missing, d.unequal_length)
    if d.seq_len is not None and d.seq_len != train.length:
        raise ConfigError(f"recipe key 'data.seq_len' ({d.seq_len}) differs from the series length of {train.name} "
                          f"({train.length}); leave it unset for classification")
    return train, test


def build_encoder(cfg, channels: int, seq_len: int) -> PatchTransformer:
    m = cfg.model
    ci = m.channel_independent if m.channel_independent is not None else is_forecasting(cfg)
    if seq_len < m.patch_len:
        raise ConfigError(f"the series have {seq_len} steps, fewer than model.patch_len={m.patch_len}")
    return PatchTransformer(
        channels, seq_len, m.patch_len, m.stride, m.d_model, m.n_heads, m.n_layers, m.d_ff, m.dropout,
        m.token_embedding, m.kernel_size, m.positional, ci, m.activation,
    )


# -- export and snapshots ----------------------------------------------------------------
def _encoder_meta(encoder: PatchTransformer, **extra: Any) -> dict[str, Any]:
    return {
        "format": "invlab-encoder", "format_version": 1, "invlab_version": invlab.__version__,
        "modality": "timeseries", "backbone": encoder.config, "feature_dim": encoder.d_model,
        "num_patches": encoder.num_patches, **extra,
    }


def _save_state(module: torch.nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp), metadata={"format": "invlab-encoder"})
    tmp.replace(path)


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


# -- set-up -----------------------------------------------------------------------------
def setup(cfg, world_size: int, progress: bool) -> RunParts:
    d = cfg.data
    batch = d.batch_size // world_size
    if is_forecasting(cfg):
        series = load_forecast_data(cfg)
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
    if cfg.method == "timedrl":
        p = cfg.params
        augment = build_pipeline(cfg.augment.pipeline, "augment.pipeline") if cfg.augment.pipeline else None
        method: L.LightningModule = TimeDRL(
            encoder, contrastive_weight=p.contrastive_weight, predictive_weight=p.predictive_weight,
            stop_gradient=p.stop_gradient, instance=p.instance, randomness=p.randomness, augment=augment,
            predictive_target=p.predictive_target, optim=cfg.optim, seed=cfg.seed, callbacks=callbacks,
        )
    else:
        method = SupervisedTimeSeries(encoder, num_classes, instance=cfg.params.instance,
                                      label_smoothing=cfg.params.label_smoothing, optim=cfg.optim, seed=cfg.seed,
                                      callbacks=callbacks)
    datamodule = TimeSeriesDataModule(train_set, val, batch, d.eval_batch_size, d.num_workers, cfg.seed)

    def export(folder: Path) -> None:
        classifier = getattr(method, "classifier", None)
        export_series_encoder(method.encoder, folder, classifier, **meta)

    return RunParts(method, datamodule, export, info)


# -- protocols ------------------------------------------------------------------------------
_SNAPSHOT = re.compile(r"epoch(\d{3,})\.safetensors$")


def _candidates(model: str | Path, which: str | list[int]) -> tuple[list[tuple[str, Path, Path | None]], tuple | None]:
    """Encoders to select among: ``[(label, weights, meta_path)]`` and the untrained
    reference (``epoch000``), from a run folder's snapshots when there are any.

    ``which``: ``"all"`` snapshots after epoch 0, ``"last"`` (the exported encoder only)
    or a list of epochs."""
    path = Path(model).expanduser()
    folder = path if path.is_dir() else None
    snaps = sorted((folder / "snapshots").glob("epoch*.safetensors")) if folder is not None else []
    if which == "last" or not snaps:
        return [("final", path, None)], None
    if which != "all" and not isinstance(which, (list, tuple)):
        raise ConfigError(f"snapshots must be 'all', 'last' or a list of epochs, got {which!r}")
    meta = folder / "snapshots" / "encoder.json"
    found = {int(_SNAPSHOT.search(p.name).group(1)): p for p in snaps if _SNAPSHOT.search(p.name)}
    init = (f"epoch {0}", found[0], meta) if 0 in found else None
    epochs = sorted(e for e in found if e > 0) if which == "all" else [int(e) for e in which]
    missing = [e for e in epochs if e not in found]
    if missing or not epochs:
        raise ConfigError(f"{folder}: no snapshot for epoch(s) {missing or which}; have {sorted(found)}")
    return [(f"epoch {e}", found[e], meta) for e in epochs], init


def _window_rows(series: ForecastSeries, split: str, seq_len: int, horizons: list[int]) -> tuple[WindowDataset, dict[int, int]]:
    """Windows of the shortest horizon, and how many of them each horizon uses (a prefix)."""
    shortest = WindowDataset(series, split, seq_len, min(horizons))
    counts = {}
    for h in horizons:
        first, last = window_starts(series.borders, split, seq_len, h)
        counts[h] = last - first
    return shortest, counts


def _targets(series: ForecastSeries, windows: WindowDataset, count: int, horizon: int) -> torch.Tensor:
    starts = windows.starts[:count] + windows.seq_len
    view = np.lib.stride_tricks.sliding_window_view(series.values, horizon, axis=0)
    return target_rows(view[starts])


def _evaluate_candidate(encoder, series, cfg, horizons, head, batch_size, progress, epochs, lr, seed,
                        fit_stride: int = 1) -> dict[int, dict]:
    seq_len = encoder.seq_len
    encoded, counts, windows = {}, {}, {}
    for split in ("train", "val", "test"):
        windows[split], counts[split] = _window_rows(series, split, seq_len, horizons)
        if split == "train" and fit_stride > 1:  # every fit_stride-th training window (quick looks)
            windows[split].starts = windows[split].starts[::fit_stride]
            counts[split] = {h: -(-n // fit_stride) for h, n in counts[split].items()}
        inputs = windows[split].inputs(np.arange(len(windows[split])))
        encoded[split] = encode_windows(encoder, inputs, batch_size, progress, f"{split} windows")
    out: dict[int, dict] = {}
    grams = {}
    if head == "ridge":  # the Gram matrix of all rows once per split; horizons drop tail rows
        grams = {split: gram_matrix(encoded[split]) for split in ("train", "val")}
    for h in horizons:
        parts = {}
        for split in ("train", "val", "test"):
            n = counts[split][h]
            parts[split] = (encoded[split].head(n), _targets(series, windows[split], n, h))
        if head == "ridge":
            problems = {
                split: RidgeProblem(parts[split][0], parts[split][1],
                                    tail_gram(encoded[split], grams[split], parts[split][0].rows))
                for split in ("train", "val")
            }
            fit = fit_ridge(problems["train"], problems["val"])
            test = forecast_errors(fit.predict(parts["test"][0]), parts["test"][1])
            out[h] = {"val_mse": fit.val["mse"], "val_mae": fit.val["mae"], "test_mse": test["mse"],
                      "test_mae": test["mae"], "alpha": fit.alpha, "val_mse_by_alpha": fit.val_mse_by_alpha}
        else:
            fit = fit_sgd(parts["train"][0], parts["train"][1], parts["val"][0], parts["val"][1], epochs=epochs,
                          lr=lr, dropout=encoder.config["dropout"], seed=seed, show_progress=progress)
            test = forecast_errors(fit.predict(parts["test"][0]), parts["test"][1])
            out[h] = {"val_mse": fit.val["mse"], "val_mae": fit.val["mae"], "test_mse": test["mse"],
                      "test_mae": test["mae"], "head_epoch": fit.epoch, "history": fit.history}
        out[h]["train_windows"], out[h]["val_windows"], out[h]["test_windows"] = (
            counts["train"][h], counts["val"][h], counts["test"][h])
    return out


def forecast_protocol(model, cfg, horizons: list[int] | None = None, head: str = "ridge",
                      snapshots: str | list[int] = "all", batch_size: int | None = None, progress: bool = True,
                      epochs: int = 30, lr: float | None = None, include_init: bool = True, fit_stride: int = 1,
                      **_: Any) -> dict[str, Any]:
    """Linear forecasting on the frozen encoder for each horizon; per horizon the
    candidate (snapshot x ridge penalty, or snapshot x head epoch) with the lowest
    validation MSE is selected and scored on test. ``include_init`` also reports the
    untrained encoder (``epoch000``) as a reference row; it is never a candidate.
    ``fit_stride > 1`` fits the heads on every ``fit_stride``-th training window only
    (a quicker, noisier estimate; validation and test windows are never subsampled)."""
    if not is_forecasting(cfg):
        raise ConfigError(f"the forecast protocol needs forecasting data (data.name=ett or csv), this run has {cfg.data.name!r}")
    _choice("head", head, ("ridge", "sgd"))
    horizons = [int(h) for h in (horizons or cfg.data.horizons)]
    lr = 2.1e-4 if lr is None or head == "ridge" else lr
    t0, c0 = time.perf_counter(), time.process_time()
    series = load_forecast_data(cfg)
    candidates, init = _candidates(model, snapshots)
    results: dict[str, dict[int, dict]] = {}
    reference = None
    todo = candidates + ([init] if init is not None and include_init else [])
    for label, weights, meta_path in todo:
        encoder, _ = load_series_encoder(weights, meta_path)
        if encoder.in_channels != series.channels:
            raise ConfigError(f"the encoder expects {encoder.in_channels} channels, the data has {series.channels}")
        scores = _evaluate_candidate(encoder, series, cfg, horizons, head, batch_size or cfg.data.eval_batch_size,
                                     progress, epochs, lr, cfg.seed, fit_stride)
        if init is not None and label == init[0]:
            reference = scores
        else:
            results[label] = scores
    selected: dict[int, dict] = {}
    for h in horizons:
        label = min(results, key=lambda c: results[c][h]["val_mse"])
        selected[h] = {"selected": label, **results[label][h]}
    per_candidate_val = {c: {h: results[c][h]["val_mse"] for h in horizons} for c in results}
    result: dict[str, Any] = {
        "data": series.path, "columns": series.columns, "head": head, "selection": "validation", "fit_stride": fit_stride,
        "selected_on": "lowest validation MSE over " + ("snapshots x ridge penalties" if head == "ridge" else "snapshots x head epochs"),
        "horizons": {str(h): selected[h] for h in horizons},
        "avg": {"mse": float(np.mean([selected[h]["test_mse"] for h in horizons])),
                "mae": float(np.mean([selected[h]["test_mae"] for h in horizons]))},
        "candidates_val_mse": per_candidate_val,
        "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
    }
    if reference is not None:
        result["untrained_encoder"] = {str(h): {k: reference[h][k] for k in ("val_mse", "test_mse", "test_mae")} for h in horizons}
    result["table"] = _forecast_table(result, horizons)
    return result


def _forecast_table(result: dict[str, Any], horizons: list[int]) -> str:
    rows = [("horizon", "selected", "val MSE", "test MSE", "test MAE")]
    for h in horizons:
        r = result["horizons"][str(h)]
        rows.append((str(h), r["selected"], f"{r['val_mse']:.4f}", f"{r['test_mse']:.4f}", f"{r['test_mae']:.4f}"))
    rows.append(("avg", "", "", f"{result['avg']['mse']:.4f}", f"{result['avg']['mae']:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"forecast ({result['head']} head, selected on validation; standardised scale): {result['data']}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def classify_protocol(model, cfg, folds: int = 5, batch_size: int | None = None, progress: bool = True,
                      **_: Any) -> dict[str, Any]:
    """Linear probe (logistic regression, ``C`` by CV on the training split) on the frozen
    instance embeddings; supervised runs also report their own trained classifier."""
    if is_forecasting(cfg):
        raise ConfigError("the classify protocol needs labelled data (data.name=ucr); use --protocol forecast")
    t0 = time.perf_counter()
    train, test = load_labelled_data(cfg)
    encoder, meta = load_series_encoder(model)
    if encoder.in_channels != train.channels or encoder.seq_len != train.length:
        raise ConfigError(f"the encoder expects series ({encoder.in_channels}, {encoder.seq_len}), "
                          f"{train.name} has ({train.channels}, {train.length})")
    instance = getattr(cfg.params, "instance", "cls")
    bs = batch_size or cfg.data.eval_batch_size
    tx = encode_series(encoder, train.x, bs, instance, progress)
    qx = encode_series(encoder, test.x, bs, instance, progress)
    probe = logistic_probe(tx, train.y, qx, test.y, folds=folds, seed=cfg.seed)
    result: dict[str, Any] = {
        "data": train.name, "train_size": len(train), "test_size": len(test), "classes": len(train.classes),
        "probe": {"accuracy": probe.accuracy, "macro_f1": probe.macro_f1, "C": probe.c, "cv_folds": probe.folds,
                  "cv_accuracy": probe.cv_accuracy, "train_accuracy": probe.train_accuracy},
        "selection": "probe C by stratified cross-validation on the training split",
    }
    if meta.get("classifier"):
        head_path = Path(model).expanduser()
        head_path = (head_path if head_path.is_dir() else head_path.parent) / meta["classifier"]
        result["trained_head"] = _trained_head_scores(encoder, head_path, test, instance, bs)
    result["accuracy"] = result.get("trained_head", result["probe"])["accuracy"]
    result["macro_f1"] = result.get("trained_head", result["probe"])["macro_f1"]
    result["seconds"] = time.perf_counter() - t0
    result["table"] = _classify_table(result)
    return result


@torch.no_grad()
def _trained_head_scores(encoder: PatchTransformer, path: Path, test: LabelledSeries, instance: str, bs: int) -> dict:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read the trained classifier ({err})") from None
    weight = state.get("1.weight")
    if weight is None:
        raise CheckpointError(f"{path}: no classifier weights (expected keys 1.weight, 1.bias)")
    feats = encode_series(encoder, test.x, bs, instance)
    pred = (feats @ weight.T + state["1.bias"]).argmax(1).numpy()
    return classification_scores(pred, test.y)


def _classify_table(result: dict[str, Any]) -> str:
    p = result["probe"]
    lines = [f"classify {result['data']} ({result['train_size']} train / {result['test_size']} test series, "
             f"{result['classes']} classes)",
             f"  linear probe on [CLS] (C={p['C']:g} by {p['cv_folds']}-fold CV on train): "
             f"accuracy {p['accuracy']:.4f}, macro-F1 {p['macro_f1']:.4f}"]
    if "trained_head" in result:
        t = result["trained_head"]
        lines.append(f"  trained classifier (supervised): accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.4f}")
    return "\n".join(lines)


register_modality(
    Modality(
        name="timeseries", data=TimeSeriesData, model=TimeSeriesModel, augment=TimeSeriesAugment,
        monitor=TimeSeriesMonitor, setup=setup, validate=validate,
        protocols={"forecast": forecast_protocol, "classify": classify_protocol},
    )
)
register_method(MethodSpec("timedrl", "timeseries", TimeDRLParams))
register_method(MethodSpec("supervised_ts", "timeseries", SupervisedTimeSeriesParams))
