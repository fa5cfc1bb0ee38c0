"""Recipe sections of the time-series modality, their validation, and what they build:
the data (forecasting series or labelled series) and the encoder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from invlab.data.timeseries import (
    ForecastSeries,
    LabelledSeries,
    load_classification_pair,
    load_forecast_series,
)
from invlab.errors import ConfigError, DataError
from invlab.methods.registry import METHODS
from invlab.methods.spec import check_choice
from invlab.methods.supervised_timeseries import SupervisedTimeSeriesParams
from invlab.methods.timedrl import TimeDRLParams
from invlab.nn.dilated_conv import TS2VecEncoder
from invlab.nn.patch_transformer import PatchTransformer
from invlab.transforms.registry import build_pipeline

__all__ = [
    "FORECAST_SOURCES", "TimeSeriesData", "TimeSeriesModel", "TimeSeriesAugment", "TimeSeriesMonitor", "TimeDRLParams",
    "SupervisedTimeSeriesParams", "is_forecasting", "validate", "load_forecast_data", "load_labelled_data",
    "build_encoder", "choice", "check_forecast_windows",
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
    standardize: bool = False  # ucr: per-channel mean/std of the training split applied to both splits
    batch_size: int = 32
    eval_batch_size: int = 256
    num_workers: int = 0


@dataclass
class TimeSeriesModel:
    backbone: str = "patch_transformer"  # patch_transformer (TimeDRL, supervised_ts) | dilated_conv (TS2Vec)
    hidden_dim: int = 64  # dilated_conv: width of the blocks
    output_dim: int = 320  # dilated_conv: width of the timestamp representations
    depth: int = 10  # dilated_conv: blocks of width hidden_dim (one more maps to output_dim)
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
    instance_norm: bool = True  # false: an ablation (not TimeDRL); pair with data.standardize=true


@dataclass
class TimeSeriesAugment:
    # transforms on (batch, channels, time), used when params.randomness=augmentation
    pipeline: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TimeSeriesMonitor:
    val_loss: bool = True  # pretext losses on the validation windows each epoch (forecasting)
    snapshots: bool = True  # export the encoder before training and after each epoch


choice = check_choice  # the modality's checks read like the methods'


def is_forecasting(cfg) -> bool:
    return cfg.data.name in FORECAST_SOURCES


def validate(cfg) -> None:
    """Checks of the time-series sections (the method's parameters: its ``MethodSpec.validate``)."""
    d, m = cfg.data, cfg.model
    choice("data.name", d.name, ("ett", "csv", "ucr"))
    choice("data.features", d.features, ("multivariate", "univariate"))
    choice("data.missing", d.missing, ("error", "ffill"))
    choice("data.unequal_length", d.unequal_length, ("error", "pad", "resample"))
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
        if METHODS[cfg.method].needs_labels:
            raise ConfigError(f"method {cfg.method} classifies labelled series: set data.name=ucr")
        if d.standardize:
            raise ConfigError("recipe key 'data.standardize' is for ucr data; forecasting data are always "
                              "standardised with the training split's statistics")
        if m.channel_independent is False:
            raise ConfigError("recipe key 'model.channel_independent': forecasting uses channel-independent patches (true)")
    elif d.dataset is None and (d.train_file is None or d.test_file is None):
        raise ConfigError("recipe key 'data.dataset' is not set: name a UCR/UEA set (data.dataset=GunPoint) "
                          "or give data.train_file and data.test_file")
    if d.seq_len is not None and d.seq_len < m.patch_len:
        raise ConfigError(f"recipe key 'data.seq_len' ({d.seq_len}) is shorter than 'model.patch_len' ({m.patch_len})")
    choice("model.backbone", m.backbone, ("patch_transformer", "dilated_conv"))
    if m.backbone != "patch_transformer" and cfg.method in ("timedrl", "supervised_ts"):
        raise ConfigError(f"method {cfg.method} uses the patch Transformer: set model.backbone=patch_transformer")
    for key in ("patch_len", "stride", "d_model", "n_heads", "n_layers", "kernel_size", "hidden_dim", "output_dim"):
        if getattr(m, key) < 1:
            raise ConfigError(f"recipe key 'model.{key}' must be >= 1, got {getattr(m, key)}")
    if m.depth < 0:
        raise ConfigError(f"recipe key 'model.depth' must be >= 0, got {m.depth}")
    if m.d_model % m.n_heads:
        raise ConfigError(f"recipe key 'model.d_model' ({m.d_model}) must be divisible by 'model.n_heads' ({m.n_heads})")
    if m.d_model < 2:
        raise ConfigError("recipe key 'model.d_model' must be >= 2 (the predictor halves it)")
    if not 0 <= m.dropout < 1:
        raise ConfigError(f"recipe key 'model.dropout' must lie in [0, 1), got {m.dropout}")
    choice("model.token_embedding", m.token_embedding, ("conv", "linear"))
    choice("model.positional", m.positional, ("learnable", "sincos", "none"))
    choice("model.activation", m.activation, ("gelu", "relu"))
    if m.token_embedding == "conv" and m.kernel_size % 2 == 0:
        raise ConfigError(f"recipe key 'model.kernel_size' must be odd, got {m.kernel_size}")
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


def check_forecast_windows(series: ForecastSeries, seq_len: int, horizons: list[int], val_windows: bool = False,
                           horizons_key: str = "data.horizons") -> None:
    """Refuse an input length / horizon that leaves a split without a single window,
    before any training or encoding: ``ConfigError`` naming the keys, the split and its rows.

    Training windows need ``seq_len + H`` rows; validation and test windows borrow their
    inputs from the previous split, so they need ``H`` rows (``seq_len`` without targets)."""
    rows = {split: end - start for split, (start, end) in series.borders.items()}
    if val_windows and rows["val"] < seq_len:
        raise ConfigError(
            f"{series.path}: the val split has {rows['val']} rows, fewer than data.seq_len={seq_len} needed for one "
            "pretext-loss window; lower data.seq_len, use a longer file, or set monitor.val_loss=false"
        )
    for h in horizons:
        for split in ("val", "test"):
            if rows[split] < h:
                raise ConfigError(
                    f"{series.path}: horizon {h} ({horizons_key}) is longer than the {split} split ({rows[split]} rows); "
                    f"drop the horizon or use a longer file{' or larger data.split_ratios' if series.split_rule == 'ratio' else ''}"
                )
        if rows["train"] < seq_len + h:
            raise ConfigError(
                f"{series.path}: the train split has {rows['train']} rows, fewer than data.seq_len + horizon = "
                f"{seq_len} + {h} (horizon from {horizons_key}); lower data.seq_len or drop the horizon"
            )


def load_labelled_data(cfg) -> tuple[LabelledSeries, LabelledSeries]:
    d = cfg.data
    train, test = load_classification_pair(d.dataset, d.root, d.train_file, d.test_file, d.missing, d.unequal_length)
    if len(train) < 2 or train.num_classes < 2:
        raise DataError(
            f"{train.source}: the training split has {len(train)} series in {train.num_classes} class(es); "
            "classification needs at least 2 series and 2 classes"
        )
    if d.seq_len is not None and d.seq_len != train.length:
        raise ConfigError(f"recipe key 'data.seq_len' ({d.seq_len}) differs from the series length of {train.name} "
                          f"({train.length}); leave it unset for classification")
    if d.standardize:  # statistics of the training split only, per channel
        mean = train.x.mean(axis=(0, 2), keepdims=True)
        std = train.x.std(axis=(0, 2), keepdims=True)
        std = np.where(std > 0, std, 1.0)
        train = replace(train, x=((train.x - mean) / std).astype(np.float32))
        test = replace(test, x=((test.x - mean) / std).astype(np.float32))
    return train, test


def build_encoder(cfg, channels: int, seq_len: int) -> PatchTransformer | TS2VecEncoder:
    m = cfg.model
    if m.backbone == "dilated_conv":
        return TS2VecEncoder(channels, seq_len, m.hidden_dim, m.output_dim, m.depth, m.kernel_size, m.dropout)
    ci = m.channel_independent if m.channel_independent is not None else is_forecasting(cfg)
    if seq_len < m.patch_len:
        raise ConfigError(f"the series have {seq_len} steps, fewer than model.patch_len={m.patch_len}")
    return PatchTransformer(
        channels, seq_len, m.patch_len, m.stride, m.d_model, m.n_heads, m.n_layers, m.d_ff, m.dropout,
        m.token_embedding, m.kernel_size, m.positional, ci, m.activation, instance_norm=m.instance_norm,
    )


