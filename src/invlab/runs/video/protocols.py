"""Evaluation protocols of the video modality on a frozen encoder: ``linear`` (action
recognition by a linear probe, clip level and video level), ``knn`` (centred clips) and
``invariance`` (per transformation and stage, on the test clips)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from invlab.data.video import DecodedVideos
from invlab.data.video.arrays import VideoArray
from invlab.evaluation.invariance import invariance_profile
from invlab.evaluation.knn import knn_accuracy
from invlab.evaluation.video import encode_clips, finetune, video_probe
from invlab.report import markdown_table
from invlab.runs.video.encoder import load_video_encoder
from invlab.runs.video.recipe import load_data

__all__ = ["linear_protocol", "finetune_protocol", "knn_protocol", "invariance_protocol", "centred_test_clips"]


def _clip_len(meta: dict, cfg) -> int:
    return int(meta.get("clip_len") or cfg.data.clip_len)


def _resize(encoder_meta: dict, videos: DecodedVideos):
    size = encoder_meta.get("input_size")
    if size and tuple(size) != videos.size:
        from invlab.transforms.image import Resize
        from invlab.transforms.video import Spatial

        return Spatial(Resize(tuple(size)))
    return None


def linear_protocol(model, cfg, clips: int | None = None, batch_size: int = 64, progress: bool = True,
                    **_: Any) -> dict[str, Any]:
    """Logistic-regression probe on pooled features: trained on the centred clip of each
    training video (C by grouped CV on training clips), scored on ``clips`` uniform clips
    per test video (``data.eval_clips``): ``clip_top1`` and ``video_top1``."""
    encoder, meta = load_video_encoder(model)
    t0 = time.perf_counter()
    train, test = load_data(cfg, progress=progress)
    t = _clip_len(meta, cfg)
    k = clips or cfg.data.eval_clips
    tf = _resize(meta, train)
    ftr = encode_clips(encoder, train, t, 1, 1, batch_size=batch_size, transform=tf)
    fte = encode_clips(encoder, test, t, 1, k, batch_size=batch_size, transform=tf)
    r = video_probe(ftr, fte, seed=cfg.seed)
    return {"data": cfg.data.name, "train_videos": len(train), "test_videos": len(test), "clips_per_test_video": k,
            "clip_len": t, "clip_top1": r.clip_top1, "video_top1": r.video_top1, "top1": r.video_top1, "c": r.c,
            "seconds": time.perf_counter() - t0}


def finetune_protocol(model, cfg, epochs: int | None = None, lr: float | None = None, clips: int | None = None,
                      batch_size: int = 16, progress: bool = True, **_: Any) -> dict[str, Any]:
    """Fine-tune the encoder with a linear head on the training videos (one random clip
    per video per epoch; SGD, cosine; default 10 epochs at lr 0.01), then score
    ``data.eval_clips`` uniform clips per test video: ``clip_top1`` and ``video_top1``."""
    encoder, meta = load_video_encoder(model)
    t0 = time.perf_counter()
    train, test = load_data(cfg, progress=progress)
    t = _clip_len(meta, cfg)
    k = clips or cfg.data.eval_clips
    epochs, lr = epochs or 10, lr or 0.01
    r = finetune(encoder, train, test, t, 1, k, epochs=epochs, lr=lr, batch_size=batch_size, seed=cfg.seed,
                 transform=_resize(meta, train))
    return {"data": cfg.data.name, "train_videos": len(train), "test_videos": len(test), "clips_per_test_video": k,
            "clip_len": t, "epochs": epochs, "lr": lr, "clip_top1": r.clip_top1, "video_top1": r.video_top1,
            "top1": r.video_top1, "train_top1": r.train_top1, "loss_history": r.history,
            "seconds": time.perf_counter() - t0}


def knn_protocol(model, cfg, k: int = 20, temperature: float = 0.1, batch_size: int = 64, progress: bool = True,
                 knn_backend: str = "torch", **_: Any) -> dict[str, Any]:
    encoder, meta = load_video_encoder(model)
    t0 = time.perf_counter()
    train, test = load_data(cfg, progress=progress)
    t = _clip_len(meta, cfg)
    tf = _resize(meta, train)
    ftr = encode_clips(encoder, train, t, 1, 1, batch_size=batch_size, transform=tf)
    fte = encode_clips(encoder, test, t, 1, 1, batch_size=batch_size, transform=tf)
    top1 = knn_accuracy(torch.from_numpy(fte.stage("pool")), torch.from_numpy(fte.labels),
                        torch.from_numpy(ftr.stage("pool")), torch.from_numpy(ftr.labels), train.num_classes,
                        min(k, len(train)), temperature, backend=knn_backend)
    return {"data": cfg.data.name, "train_videos": len(train), "test_videos": len(test), "k": k,
            "temperature": temperature, "top1": top1, "seconds": time.perf_counter() - t0}


def centred_test_clips(cfg, clip_len: int, num_samples: int, progress: bool = False) -> VideoArray:
    """The centred clip of (up to) ``num_samples`` test videos as a VideoArray."""
    _, test = load_data(cfg, progress=progress)
    n = min(num_samples, len(test))
    idx = np.stack([np.minimum(np.arange(clip_len) + max(0, (int(L) - clip_len) // 2), int(L) - 1)
                    for L in test.lengths[:n]])
    return VideoArray(test.gather(np.arange(n), idx), test.labels[:n], test.classes, f"{test.source} (test clips)")


def invariance_protocol(model, cfg, transforms=None, layers=None, num_samples: int = 256, metric: str = "l2",
                        progress: bool = True, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Invariance of the frozen encoder to each transformation (temporal names such as
    ``reverse`` / ``shuffle`` / ``temporal_crop``, or image transforms applied per clip) on
    centred test clips. Keys ``invariance/<transform>`` (first layer), ``mean_invariance``."""
    encoder, meta = load_video_encoder(model)
    t0 = time.perf_counter()
    names = list(transforms.split(",")) if isinstance(transforms, str) else list(transforms or ["reverse", "shuffle"])
    data = centred_test_clips(cfg, _clip_len(meta, cfg), num_samples, progress)
    rows = invariance_profile(encoder, data, names, layers, metrics=(metric,), num_samples=num_samples, seed=seed,
                              pool="mean", progress=progress)
    first = rows[0].layer
    result: dict[str, Any] = {"data": cfg.data.name, "metric": metric, "num_samples": rows[0].num_samples,
                              "rows": [r.to_dict() for r in rows]}
    for r in rows:
        if r.layer == first:
            result[f"invariance/{r.transform}"] = r.score
    result["mean_invariance"] = float(np.mean([r.score for r in rows if r.layer == first]))
    result["seconds"] = time.perf_counter() - t0
    result["table"] = markdown_table(["transformation", "layer", f"{metric} invariance", "95% CI"],
                                     [[r.transform, r.layer, r.score, f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"]
                                      for r in rows])
    return result
