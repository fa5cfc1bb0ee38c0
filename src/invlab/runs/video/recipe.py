"""Recipe sections of the video modality, their validation, and what they build: the
clip-view pipelines and the decoded videos (controlled, UCF101, HMDB51 or class
folders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from invlab.data.video import (
    VIDEO_LAYOUTS,
    ControlledVideos,
    ControlledVideoSpec,
    DecodedVideos,
    decode_videos,
    video_split,
)
from invlab.data.video.controlled import APPEARANCE_FACTORS, MOTIONS
from invlab.data.video.decoded import ON_ERROR
from invlab.errors import ConfigError, DataError
from invlab.transforms.video import ClipPairs, TemporalCrop, build_video_pipeline

__all__ = [
    "VideoData", "VideoModel", "VideoAugment", "VideoMonitor", "validate", "build_pairs", "load_videos",
    "load_data", "normalisation", "view_frames", "VIDEO_SOURCES",
]

VIDEO_SOURCES = ("controlled", *VIDEO_LAYOUTS)
VIDEO_BACKBONES = ("r3d_18", "r2plus1d_18")


@dataclass
class VideoData:
    name: str = "controlled"  # controlled | ucf101 | hmdb51 | folders
    root: str | None = None  # the data set's folder (ucf101, hmdb51, folders)
    splits: str | None = None  # folder of the split files (default: looked for under root)
    fold: int = 1  # official split 1-3
    train_fraction: float = 0.7  # folders without train/ and test/: per-class split (seeded)
    size: int = 112  # decoding: shorter side resized to this, central square kept (frames cached)
    max_frames: int | None = None  # per video, after frame_stride (bounded memory on long files)
    frame_stride: int = 1  # keep every n-th decoded frame
    on_error: str = "raise"  # raise | skip (one logged warning per unreadable file)
    cache: str = "memory"  # memory | mmap | none
    clip_len: int = 16  # frames of the window each training item loads (views are drawn from it)
    stride: int = 1  # frame step within the window
    eval_clips: int = 5  # uniformly spaced clips per test video for video-level evaluation
    label: str = "motion"  # controlled: which label the monitor and probes use (appearance | motion | joint)
    batch_size: int = 32  # global batch, split across devices
    eval_batch_size: int = 64
    num_workers: int = 0
    mean: list[float] | None = None  # default: measured on training frames
    std: list[float] | None = None
    controlled: ControlledVideoSpec | None = None  # the controlled set (name: controlled)


@dataclass
class VideoModel:
    backbone: str = "r2plus1d_18"  # r3d_18 | r2plus1d_18
    width: int = 64  # channels of res2 (64 = the standard network)
    stem_stride: int = 2  # 1 keeps the frame size through the stem (tiny frames)


@dataclass
class VideoAugment:
    temporal: list[Any] = field(default_factory=lambda: [{"name": "temporal_crop", "length": 8, "strides": [1, 2]}])
    spatial: list[Any] = field(default_factory=lambda: [
        {"name": "crop", "size": 112, "scale": [0.3, 1.0]},
        {"name": "jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8},
        {"name": "grayscale", "p": 0.2},
    ])


@dataclass
class VideoMonitor:
    knn: bool = True
    knn_k: int = 20
    knn_t: float = 0.1
    probe: bool = True


def build_pairs(cfg) -> ClipPairs:
    return build_video_pipeline(cfg.augment.temporal, cfg.augment.spatial, "augment")


def view_frames(cfg) -> int:
    """Frames of a training view: the temporal crop's length, else the loaded window."""
    for _, t in build_pairs(cfg).temporal.steps():
        if isinstance(t, TemporalCrop):
            return t.length if t.length is not None else max(1, cfg.data.clip_len // 2)
    return cfg.data.clip_len


def validate(cfg) -> None:
    d, m, mon = cfg.data, cfg.model, cfg.monitor
    if d.name not in VIDEO_SOURCES:
        raise ConfigError(f"recipe key 'data.name' must be one of {', '.join(VIDEO_SOURCES)}, got {d.name!r}")
    if d.cache not in ("memory", "mmap", "none"):
        raise ConfigError(f"recipe key 'data.cache' must be memory, mmap or none, got {d.cache!r}")
    if d.on_error not in ON_ERROR:
        raise ConfigError(f"recipe key 'data.on_error' must be raise or skip, got {d.on_error!r}")
    if d.label not in ("appearance", "motion", "joint"):
        raise ConfigError(f"recipe key 'data.label' must be appearance, motion or joint, got {d.label!r}")
    for key in ("size", "clip_len", "stride", "frame_stride", "eval_clips", "eval_batch_size", "fold"):
        if getattr(d, key) < 1:
            raise ConfigError(f"recipe key 'data.{key}' must be >= 1, got {getattr(d, key)}")
    if d.batch_size < 2:
        raise ConfigError(f"recipe key 'data.batch_size' must be >= 2 for a contrastive loss, got {d.batch_size}")
    if d.max_frames is not None and d.max_frames < d.clip_len:
        raise ConfigError(f"recipe key 'data.max_frames' ({d.max_frames}) is shorter than 'data.clip_len' ({d.clip_len})")
    if (d.mean is None) != (d.std is None):
        raise ConfigError("recipe keys 'data.mean' and 'data.std' must be given together")
    if d.name == "controlled":
        if d.root is not None:
            raise ConfigError("recipe key 'data.root': a controlled set is rendered, not read; use data.name: ucf101, "
                              "hmdb51 or folders for files")
        spec = d.controlled or ControlledVideoSpec()
        bad = [a for a in spec.appearance if a not in APPEARANCE_FACTORS]
        if bad:
            raise ConfigError(f"recipe key 'data.controlled.appearance': {bad} not among {APPEARANCE_FACTORS}")
        bad = [x for x in spec.motions if x not in MOTIONS]
        if bad:
            raise ConfigError(f"recipe key 'data.controlled.motions': {bad} not among {sorted(MOTIONS)}")
        if spec.num_frames < d.clip_len:
            raise ConfigError(f"recipe key 'data.clip_len' ({d.clip_len}) is longer than the controlled videos "
                              f"('data.controlled.num_frames' = {spec.num_frames})")
    elif d.controlled is not None:
        raise ConfigError("recipe key 'data.controlled' only applies to data.name: controlled")
    if m.backbone not in VIDEO_BACKBONES:
        raise ConfigError(f"recipe key 'model.backbone' must be one of {', '.join(VIDEO_BACKBONES)}, got {m.backbone!r}")
    if m.width < 1 or m.stem_stride not in (1, 2):
        raise ConfigError("recipe keys 'model.width' must be >= 1 and 'model.stem_stride' 1 or 2")
    if mon.knn_k < 1 or mon.knn_t <= 0:
        raise ConfigError("recipe keys 'monitor.knn_k' must be >= 1 and 'monitor.knn_t' > 0")
    build_pairs(cfg)  # transform names and options
    if view_frames(cfg) > d.clip_len:
        raise ConfigError(f"recipe key 'augment.temporal': the temporal crop takes {view_frames(cfg)} frames but the "
                          f"loaded window ('data.clip_len') has {d.clip_len}")


def _controlled(cfg, split: str) -> tuple[DecodedVideos, ControlledVideos]:
    spec = cfg.data.controlled or ControlledVideoSpec()
    data = ControlledVideos.from_spec(spec, split)
    return DecodedVideos.from_array(data.to_video_array(cfg.data.label)), data


def load_videos(cfg, split: str, progress: bool = True) -> DecodedVideos:
    """One split (``train`` or ``test``) of the recipe's videos, decoded (cached) or rendered."""
    d = cfg.data
    if d.name == "controlled":
        return _controlled(cfg, split)[0]
    if d.root is None:
        raise DataError(f"data.root is not set: point it at the {d.name} folder")
    listing = video_split(d.name, d.root, split, d.fold, d.splits, d.train_fraction, cfg.seed)
    return decode_videos(listing, d.size, d.max_frames, d.frame_stride, 3, d.cache, d.on_error, progress=progress,
                         root=d.root)


def load_data(cfg, progress: bool = True) -> tuple[DecodedVideos, DecodedVideos]:
    d = cfg.data
    train, test = load_videos(cfg, "train", progress), load_videos(cfg, "test", progress)
    if len(train) < d.batch_size:
        raise DataError(f"{d.name}: the training split has {len(train)} videos, fewer than data.batch_size={d.batch_size}")
    if train.size != test.size:
        raise DataError(f"{d.name}: train frames are {train.size} but test frames {test.size}")
    return train, test


def normalisation(cfg, train: DecodedVideos, max_frames: int = 4096) -> tuple[list[float], list[float]]:
    """``data.mean`` / ``data.std``, else per-channel statistics of (up to ``max_frames``
    evenly spaced) training frames, in ``[0, 1]`` units."""
    if cfg.data.mean is not None:
        if len(cfg.data.mean) != train.channels:
            raise DataError(f"data.mean has {len(cfg.data.mean)} values but the videos have {train.channels} channels")
        return list(cfg.data.mean), list(cfg.data.std)
    rows = np.linspace(0, len(train.frames) - 1, min(max_frames, len(train.frames))).round().astype(np.int64)
    x = np.asarray(train.frames[np.unique(rows)], dtype=np.float64) / 255.0
    mean = x.mean((0, 2, 3))
    std = x.std((0, 2, 3)).clip(1e-3)
    return mean.tolist(), std.tolist()
