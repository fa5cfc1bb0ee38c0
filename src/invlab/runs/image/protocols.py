"""Evaluation protocols of the image modality on a frozen encoder: ``knn``, ``linear``
(features of the recipe's data), ``invariance`` and ``equivariance`` (per transformation,
on the controlled set or the real data set's class block)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from invlab.data.arrays import ImageArray
from invlab.data.controlled import (
    ControlledImages,
    ControlledSpec,
    TransformedImages,
    choose_transforms,
    select_classes,
)
from invlab.data.registry import load_image_dataset
from invlab.errors import ConfigError
from invlab.evaluation.equivariance import equivariance_profile
from invlab.evaluation.features import extract_features
from invlab.evaluation.invariance import invariance_profile
from invlab.evaluation.knn import knn_accuracy
from invlab.evaluation.linear_probe import linear_probe
from invlab.report import markdown_table
from invlab.runs.image.encoder import load_image_encoder
from invlab.runs.image.recipe import load_data
from invlab.transforms.transforms2d import transform_2d_names

__all__ = ["knn_protocol", "linear_protocol", "measurement_data", "invariance_protocol", "equivariance_protocol"]


def _features(model: str | Path, cfg, batch_size: int, progress: bool):
    encoder, _ = load_image_encoder(model)
    train, test = load_data(cfg, progress=progress)
    # shards (data.format=shards) are decoded whole here: evaluation sets must fit in memory
    train, test = (d if isinstance(d, ImageArray) else d.head(len(d)) for d in (train, test))
    if train.channels != encoder.mean.shape[1]:
        raise ConfigError(f"the encoder expects {encoder.mean.shape[1]} channels but {cfg.data.name} has {train.channels}")
    t0 = time.perf_counter()
    train_x, train_y = extract_features(encoder, train, batch_size, show_progress=progress, desc="bank features")
    test_x, test_y = extract_features(encoder, test, batch_size, show_progress=progress, desc="test features")
    base = {"data": cfg.data.name, "train_size": len(train), "test_size": len(test), "feature_dim": int(train_x.shape[1])}
    return (train_x, train_y, test_x, test_y, train.num_classes), base, t0


def knn_protocol(model, cfg, k: int = 200, temperature: float = 0.1, batch_size: int = 512, progress: bool = True,
                 knn_backend: str = "torch", **_: Any) -> dict[str, Any]:
    """Weighted kNN of the test split against the training split (streaming search in
    bounded memory; ``knn_backend="faiss"`` for the optional faiss search)."""
    (tx, ty, qx, qy, c), result, t0 = _features(model, cfg, batch_size, progress)
    top1 = knn_accuracy(qx, qy, tx, ty, c, k, temperature, backend=knn_backend)
    result.update(k=k, temperature=temperature, top1=top1, knn_backend=knn_backend)
    result["seconds"] = time.perf_counter() - t0
    return result


def linear_protocol(model, cfg, epochs: int = 100, lr: float = 1e-3, batch_size: int = 512, progress: bool = True,
                    **_: Any) -> dict[str, Any]:
    (tx, ty, qx, qy, c), result, t0 = _features(model, cfg, batch_size, progress)
    torch.manual_seed(cfg.seed)
    probe = linear_probe(tx, ty, qx, qy, c, epochs=epochs, lr=lr, seed=cfg.seed)
    result.update(epochs=epochs, lr=lr, top1=probe.top1, train_top1=probe.train_top1)
    result["seconds"] = time.perf_counter() - t0
    return result


def measurement_data(cfg, split: str = "test", progress: bool = False):
    """The recipe's data as a factor set for invariance / equivariance measurement: the
    controlled set itself (transformations act on the object), or the real data set's
    class block as :class:`TransformedImages` (they act on the whole image)."""
    d = cfg.data
    if d.name == "controlled":
        return ControlledImages.from_spec(d.controlled or ControlledSpec(), split, d.channels or 3)
    kw = dict(channels=d.channels, image_size=d.image_size, convert_mode=d.convert_mode, cache=d.cache, progress=progress)
    data = load_image_dataset(d.name, d.root, split, **kw)
    if d.controlled is not None:
        data = select_classes(data, d.controlled.num_classes, d.controlled.class_offset, d.controlled.structure_seed)
    return TransformedImages(data, [], 0, split)


def _measured_transforms(cfg, transforms) -> list:
    if transforms:
        return list(transforms.split(",")) if isinstance(transforms, str) else list(transforms)
    spec = cfg.data.controlled
    chosen = choose_transforms(spec.transforms, spec.structure_seed) if spec is not None else []
    return chosen or transform_2d_names()


def invariance_protocol(model, cfg, transforms=None, layers=None, num_samples: int = 500, metric: str = "l2",
                        progress: bool = True, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Invariance score of the frozen encoder to each transformation (default: those of
    the recipe's controlled section, else all 18) on the test split. Keys
    ``invariance/<transform>`` (first layer), ``mean_invariance``."""
    encoder, _ = load_image_encoder(model)
    t0 = time.perf_counter()
    data = measurement_data(cfg, "test", progress)
    names = _measured_transforms(cfg, transforms)
    rows = invariance_profile(encoder, data, names, layers, metrics=(metric,), num_samples=num_samples, seed=seed,
                              progress=progress)
    first = rows[0].layer
    result: dict[str, Any] = {"data": cfg.data.name, "metric": metric, "num_samples": rows[0].num_samples,
                              "rows": [r.to_dict() for r in rows]}
    for r in rows:
        if r.layer == first:
            result[f"invariance/{r.transform}"] = r.score
    result["mean_invariance"] = float(sum(r.score for r in rows if r.layer == first) / len(names))
    result["seconds"] = time.perf_counter() - t0
    result["table"] = markdown_table(
        ["transformation", "layer", f"{metric} invariance", "95% CI"],
        [[r.transform, r.layer, r.score, f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"] for r in rows],
    )
    return result


def equivariance_protocol(model, cfg, transforms=None, layers=None, num_samples: int = 1000,
                          progress: bool = True, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Parameter recovery and linear-map error per transformation (see
    :func:`~invlab.evaluation.equivariance.equivariance_score`). Keys
    ``recovery/<transform>``, ``map_error/<transform>`` (first layer), ``mean_recovery``."""
    encoder, _ = load_image_encoder(model)
    t0 = time.perf_counter()
    data = measurement_data(cfg, "test", progress)
    names = _measured_transforms(cfg, transforms)
    rows = equivariance_profile(encoder, data, names, layers, num_samples=num_samples, seed=seed, progress=progress)
    first = rows[0].layer
    result: dict[str, Any] = {"data": cfg.data.name, "num_samples": rows[0].num_samples,
                              "rows": [r.to_dict() for r in rows]}
    for r in rows:
        if r.layer == first:
            result[f"recovery/{r.transform}"] = r.recovery
            result[f"map_error/{r.transform}"] = r.map_error
    firsts = [r.recovery for r in rows if r.layer == first]
    result["mean_recovery"] = float(sum(firsts) / len(firsts))
    result["seconds"] = time.perf_counter() - t0
    result["table"] = markdown_table(
        ["transformation", "layer", "parameter recovery", "linear-map error", "identity-map error"],
        [[r.transform, r.layer, r.recovery, r.map_error, r.identity_error] for r in rows],
    )
    return result
