"""Evaluation protocols of the time-series modality: ``forecast`` (linear heads per horizon
on the frozen encoder; snapshot and head chosen on validation) and ``classify`` (probe on
[CLS]; supervised runs also report their own classifier)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from invlab.data.timeseries import ForecastSeries, LabelledSeries, WindowDataset, window_starts
from invlab.errors import CheckpointError, ConfigError
from invlab.evaluation.classification import (
    PROBE_CLASSIFIERS,
    PROBE_FEATURES,
    classification_scores,
    encode_series,
    logistic_probe,
)
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
from invlab.nn.patch_transformer import PatchTransformer
from invlab.runs.timeseries.export import load_series_encoder
from invlab.runs.timeseries.recipe import (
    check_forecast_windows,
    choice,
    is_forecasting,
    load_forecast_data,
    load_labelled_data,
)

__all__ = ["forecast_protocol", "classify_protocol"]


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


def _evaluate_candidate(encoder, series, horizons, head, batch_size, progress, epochs, lr, seed,
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
    choice("head", head, ("ridge", "sgd"))
    horizons_key = "--horizons" if horizons else "data.horizons"
    horizons = [int(h) for h in (horizons or cfg.data.horizons)]
    if not horizons or min(horizons) < 1:
        raise ConfigError(f"{horizons_key} must list positive horizons, got {horizons}")
    lr = 2.1e-4 if lr is None or head == "ridge" else lr
    t0, c0 = time.perf_counter(), time.process_time()
    series = load_forecast_data(cfg)
    candidates, init = _candidates(model, snapshots)
    check_forecast_windows(series, cfg.data.seq_len, horizons, horizons_key=horizons_key)
    results: dict[str, dict[int, dict]] = {}
    reference = None
    todo = candidates + ([init] if init is not None and include_init else [])
    for label, weights, meta_path in todo:
        encoder, _ = load_series_encoder(weights, meta_path)
        if encoder.in_channels != series.channels:
            raise ConfigError(f"the encoder expects {encoder.in_channels} channels, the data has {series.channels}")
        scores = _evaluate_candidate(encoder, series, horizons, head, batch_size or cfg.data.eval_batch_size,
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
                      features: str = "instance", level_scale: bool = False, include_init: bool = False,
                      classifier: str = "logistic", **_: Any) -> dict[str, Any]:
    """Linear probe (logistic regression, ``C`` by CV on the training split) on the frozen
    encoder; supervised runs also report their own trained classifier. ``classifier="svm"``
    probes with an RBF support-vector machine instead (TS2Vec's evaluation), ``C`` chosen
    the same way.

    ``features``: what the probe reads: ``"instance"`` (the method's instance embedding,
    [CLS]; ``(N, D)``), ``"tokens"`` (mean and max over the patch tokens; ``(N, 2D)``) or
    ``"all"`` (both; ``(N, 3D)``). ``level_scale`` appends each series' per-channel mean and
    log std (``(N, 2C)``, from the input series alone), which instance normalisation removes.
    ``include_init`` also scores the untrained encoder of the run (``snapshots/epoch000``)
    under the same probe, as ``result["untrained"]``; it is a reference, never selected."""
    if is_forecasting(cfg):
        raise ConfigError("the classify protocol needs labelled data (data.name=ucr); use --protocol forecast")
    choice("features", features, PROBE_FEATURES)
    choice("classifier", classifier, PROBE_CLASSIFIERS)
    t0 = time.perf_counter()
    train, test = load_labelled_data(cfg)
    encoder, meta = load_series_encoder(model)
    if encoder.in_channels != train.channels or encoder.seq_len != train.length:
        raise ConfigError(f"the encoder expects series ({encoder.in_channels}, {encoder.seq_len}), "
                          f"{train.name} has ({train.channels}, {train.length})")
    readable = getattr(encoder, "pool_features", PROBE_FEATURES)
    if features not in readable:
        raise ConfigError(f"--features {features}: the {meta['backbone'].get('arch')} encoder has no instance token; "
                          f"use {' or '.join(readable)}")
    instance = getattr(cfg.params, "instance", "cls")
    bs = batch_size or cfg.data.eval_batch_size

    def probe_on(enc) -> dict[str, Any]:
        tx = encode_series(enc, train.x, bs, instance, progress, features, level_scale)
        qx = encode_series(enc, test.x, bs, instance, progress, features, level_scale)
        probe = logistic_probe(tx, train.y, qx, test.y, folds=folds, seed=cfg.seed, classifier=classifier)
        return {"accuracy": probe.accuracy, "macro_f1": probe.macro_f1, "C": probe.c, "cv_folds": probe.folds,
                "cv_accuracy": probe.cv_accuracy, "train_accuracy": probe.train_accuracy,
                "features": features, "level_scale": level_scale, "classifier": classifier,
                "feature_dim": int(tx.shape[1])}

    result: dict[str, Any] = {
        "data": train.name, "train_size": len(train), "test_size": len(test), "classes": len(train.classes),
        "probe": probe_on(encoder),
        "selection": "probe C by stratified cross-validation on the training split",
    }
    if include_init:
        folder = Path(model).expanduser()
        init = (folder if folder.is_dir() else folder.parent) / "snapshots" / "epoch000.safetensors"
        if not init.is_file():
            raise ConfigError(f"{model}: include_init needs the run's snapshots/epoch000.safetensors "
                              "(pretrain with monitor.snapshots=true)")
        result["untrained"] = probe_on(load_series_encoder(init)[0])
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
    reads = {"instance": "the instance embedding", "tokens": "mean+max of the patch tokens",
             "all": "instance + mean+max of the patch tokens"}[p["features"]]
    reads += " + level/scale" if p["level_scale"] else ""
    lines = [f"classify {result['data']} ({result['train_size']} train / {result['test_size']} test series, "
             f"{result['classes']} classes)",
             f"  {'RBF-SVM' if p.get('classifier') == 'svm' else 'linear'} probe on {reads} ({p['feature_dim']} features, C={p['C']:g} by {p['cv_folds']}-fold CV on "
             f"train): accuracy {p['accuracy']:.4f}, macro-F1 {p['macro_f1']:.4f}"]
    if "untrained" in result:
        u = result["untrained"]
        lines.append(f"  same probe on the untrained encoder: accuracy {u['accuracy']:.4f}, macro-F1 {u['macro_f1']:.4f}")
    if "trained_head" in result:
        t = result["trained_head"]
        lines.append(f"  trained classifier (supervised): accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.4f}")
    return "\n".join(lines)


