"""Building a video run from a validated recipe: the method (any video method of
:mod:`invlab.methods.registry`), its data module and the export function."""

from __future__ import annotations

from pathlib import Path

from invlab.data.video import VideoDataModule
from invlab.methods.registry import METHODS
from invlab.runs.encoders import export_encoder
from invlab.runs.modality import RunParts
from invlab.runs.video.encoder import build_encoder
from invlab.runs.video.recipe import build_pairs, load_data, normalisation, view_frames
from invlab.transforms.image import Resize
from invlab.transforms.video import Spatial

__all__ = ["setup", "build_method"]


def build_method(cfg, mean, std, num_classes: int | None, frame_size: tuple[int, int]):
    """``cls(encoder, pairs, num_classes=, optim=, knn_k=, knn_t=, seed=, eval_transform=, **params)``."""
    encoder = build_encoder(cfg, mean, std)
    pairs = build_pairs(cfg)
    out = pairs.spatial.output_size(frame_size)
    eval_transform = Spatial(Resize(out)) if tuple(out) != tuple(frame_size) else None
    spec = METHODS[cfg.method]
    return spec.cls(encoder, pairs, num_classes=num_classes, optim=cfg.optim, knn_k=cfg.monitor.knn_k,
                    knn_t=cfg.monitor.knn_t, seed=cfg.seed, eval_transform=eval_transform,
                    **spec.param_kwargs(cfg.params))


def setup(cfg, world_size: int, progress: bool) -> RunParts:
    d = cfg.data
    train, test = load_data(cfg, progress=progress)
    mean, std = normalisation(cfg, train)
    monitor = cfg.monitor.knn or cfg.monitor.probe
    method = build_method(cfg, mean, std, train.num_classes if monitor else None, train.size)
    frames = view_frames(cfg)
    datamodule = VideoDataModule(train, test if monitor else None, clip_len=d.clip_len, stride=d.stride,
                                 batch_size=d.batch_size // world_size, eval_batch_size=d.eval_batch_size,
                                 num_workers=d.num_workers, seed=cfg.seed, eval_clip_len=frames, eval_stride=1)

    def export(folder: Path) -> None:
        export_encoder(method.encoder, folder, modality="video", method=cfg.method, input_size=list(train.size),
                       clip_len=frames, channels=train.channels, classes=train.classes)

    info = {"train_videos": len(train), "test_videos": len(test), "train_frames": int(len(train.frames)),
            "skipped": list(train.skipped) + list(test.skipped)}
    return RunParts(method, datamodule, export, info)
