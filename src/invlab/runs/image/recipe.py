"""Recipe sections of the image modality, their validation, and what they build: the
augmentation pipelines and the data (real, controlled, or real data under the controlled
wrapper).

``data.name: controlled`` renders a controlled data set (``data.controlled``, see
:mod:`invlab.data.controlled`); on any other data set a ``data.controlled`` section applies
the controlled wrapper (a class block and a transformation set with recorded parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from invlab.data.arrays import ImageArray
from invlab.data.controlled import ControlledSpec, apply_controlled, check_spec, controlled_split
from invlab.data.registry import channel_stats, load_image_dataset
from invlab.data.shards import ImageShards
from invlab.errors import ConfigError, DataError
from invlab.methods.registry import METHODS
from invlab.nn.heads import HeadSpec
from invlab.transforms.registry import build_pipeline

__all__ = [
    "ImageData", "ImageModel", "ImageAugment", "ImageMonitor", "validate", "build_pipelines", "load_split",
    "load_data", "normalisation",
]


SHARD_STATS_SAMPLES = 10_000  # data.format=shards: normalisation measured on the first samples

# -- recipe sections -------------------------------------------------------------------
@dataclass
class ImageData:
    name: str = "cifar10"  # cifar10 | image_folder | digits | controlled
    root: str | None = None
    format: str = "array"  # array: decoded once into a uint8 cache | shards: tar shards read by offset (`invlab shards`)
    channels: int | None = 3
    image_size: int | None = None  # resize on decode
    convert_mode: bool = False  # convert grey/RGBA/16-bit images instead of failing
    cache: str = "memory"  # memory | mmap | none
    train_subset: int | None = None
    test_subset: int | None = None
    subset_seed: int = 0
    batch_size: int = 256  # global batch, split across devices
    eval_batch_size: int = 512
    num_workers: int = 0
    pin_memory: bool | None = None  # page-locked batches for asynchronous GPU copies; null: when training on CUDA
    mean: list[float] | None = None  # default: measured on the training split
    std: list[float] | None = None
    controlled: ControlledSpec | None = None  # the controlled set, or the wrapper for real data


@dataclass
class ImageModel:
    backbone: str = "resnet18"
    stem: str = "cifar"
    width: int = 64
    zero_init_residual: bool = False
    channels_last: bool = True
    projector: HeadSpec | None = None  # None: the method's default
    predictor: HeadSpec | None = None


_LIGHTLY_CIFAR = [
    {"name": "crop", "size": 32, "scale": [0.08, 1.0]},
    {"name": "hflip", "p": 0.5},
    {"name": "jitter", "brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2, "p": 0.8},
    {"name": "grayscale", "p": 0.2},
]


@dataclass
class ImageAugment:
    views: int = 2
    pipeline: list[dict[str, Any]] = field(default_factory=lambda: [dict(t) for t in _LIGHTLY_CIFAR])
    # optional per-view pipelines (asymmetric views); overrides `pipeline`
    view_pipelines: list[list[dict[str, Any]]] | None = None


@dataclass
class ImageMonitor:
    knn: bool = True
    knn_k: int = 200
    knn_t: float = 0.1
    probe: bool = True


def validate(cfg) -> None:
    """Checks of the image sections (the method's parameters are its own ``MethodSpec.validate``)."""
    d, m, a, mon = cfg.data, cfg.model, cfg.augment, cfg.monitor
    if d.format not in ("array", "shards"):
        raise ConfigError(f"recipe key 'data.format' must be array or shards, got {d.format!r}")
    if d.format == "shards":
        if d.root is None:
            raise ConfigError("recipe key 'data.root': data.format=shards needs the folder the shards were written to")
        for key in ("train_subset", "test_subset", "controlled", "image_size"):
            if getattr(d, key) is not None:
                raise ConfigError(f"recipe key 'data.{key}' does not apply to data.format=shards "
                                  "(write the shards from the subset / at the size you want)")
        if d.name == "controlled":
            raise ConfigError("recipe key 'data.format': controlled sets are rendered, use data.format=array")
    if d.cache not in ("memory", "mmap", "none"):
        raise ConfigError(f"recipe key 'data.cache' must be memory, mmap or none, got {d.cache!r}")
    if d.channels not in (None, 1, 3):
        raise ConfigError(f"recipe key 'data.channels' must be 1, 3 or null, got {d.channels}")
    if d.batch_size < 2:
        raise ConfigError(f"recipe key 'data.batch_size' must be >= 2 for a self-supervised loss, got {d.batch_size}")
    if d.eval_batch_size < 1:
        raise ConfigError(f"recipe key 'data.eval_batch_size' must be >= 1, got {d.eval_batch_size}")
    for key in ("train_subset", "test_subset"):
        v = getattr(d, key)
        if v is not None and v < 1:
            raise ConfigError(f"recipe key 'data.{key}' must be positive, got {v}")
    if d.train_subset is not None and d.train_subset < d.batch_size:
        raise ConfigError(
            f"recipe key 'data.train_subset' ({d.train_subset}) is smaller than 'data.batch_size' "
            f"({d.batch_size}): no full batch can be drawn"
        )
    if (d.mean is None) != (d.std is None):
        raise ConfigError("recipe keys 'data.mean' and 'data.std' must be given together")
    if d.mean is not None and len(d.mean) != len(d.std):
        raise ConfigError("recipe keys 'data.mean' and 'data.std' need the same number of channels")
    if mon.knn_k < 1 or mon.knn_t <= 0:
        raise ConfigError("recipe keys 'monitor.knn_k' must be >= 1 and 'monitor.knn_t' > 0")
    if m.width < 1:
        raise ConfigError(f"recipe key 'model.width' must be >= 1, got {m.width}")
    if m.stem not in ("cifar", "imagenet"):
        raise ConfigError(f"recipe key 'model.stem' must be cifar or imagenet, got {m.stem!r}")
    if a.views < 1:
        raise ConfigError(f"recipe key 'augment.views' must be >= 1, got {a.views}")
    if a.view_pipelines is not None and len(a.view_pipelines) != a.views:
        raise ConfigError(f"recipe key 'augment.view_pipelines' has {len(a.view_pipelines)} pipelines for {a.views} views")
    if d.name == "controlled":
        if d.image_size is not None and d.controlled is not None and d.image_size != d.controlled.image_size:
            raise ConfigError(
                f"recipe key 'data.image_size' ({d.image_size}) differs from 'data.controlled.image_size' "
                f"({d.controlled.image_size}); a controlled set is rendered at data.controlled.image_size"
            )
        if d.root is not None:
            raise ConfigError("recipe key 'data.root': a controlled set is rendered, not read; use "
                              "data.controlled.foregrounds / backgrounds for your own images")
    if d.controlled is not None:
        check_spec(d.controlled, synthetic=d.name == "controlled")
    if METHODS[cfg.method].needs_labels:
        for key in ("projector", "predictor"):
            if getattr(m, key) is not None:
                raise ConfigError(f"recipe key 'model.{key}': {cfg.method} has no {key} (its head is a linear classifier)")
    build_pipelines(cfg)  # transform names and options (the method's own checks follow: MethodSpec.validate)


# -- building ---------------------------------------------------------------------------
def build_pipelines(cfg):
    a = cfg.augment
    if a.view_pipelines is not None:
        return [build_pipeline(p, f"augment.view_pipelines[{i}]") for i, p in enumerate(a.view_pipelines)]
    pipe = build_pipeline(a.pipeline, "augment.pipeline")
    return [pipe] * a.views


def load_split(cfg, split: str, progress: bool = True) -> ImageArray:
    """One split of the recipe's data set (controlled sets rendered, the wrapper applied)."""
    d = cfg.data
    if d.format == "shards":
        return ImageShards.open(d.root, split, convert_mode=d.convert_mode)
    if d.name == "controlled":
        return controlled_split(d.controlled or ControlledSpec(), split, d.channels, d.cache, progress)
    kw = dict(channels=d.channels, image_size=d.image_size, convert_mode=d.convert_mode, cache=d.cache, progress=progress)
    data = load_image_dataset(d.name, d.root, split, **kw)
    if d.controlled is not None:
        data = apply_controlled(data, d.controlled, split, d.cache, progress)
    return data


def load_data(cfg, progress: bool = True) -> tuple[ImageArray, ImageArray]:
    d = cfg.data
    train, test = load_split(cfg, "train", progress), load_split(cfg, "test", progress)
    if d.format == "array":
        train, test = train.subset(d.train_subset, d.subset_seed), test.subset(d.test_subset, d.subset_seed)
    if len(train) < d.batch_size:
        raise DataError(f"{d.name}: the training split has {len(train)} images, fewer than data.batch_size={d.batch_size}")
    if train.channels != test.channels or train.size != test.size:
        raise DataError(
            f"{d.name}: train images are {train.channels}x{train.size} but test images {test.channels}x{test.size}; "
            "set data.image_size to resize both"
        )
    return train, test


def normalisation(cfg, train: ImageArray) -> tuple[list[float], list[float]]:
    if cfg.data.mean is not None:
        if len(cfg.data.mean) != train.channels:
            raise DataError(f"data.mean has {len(cfg.data.mean)} values but the images have {train.channels} channels")
        return list(cfg.data.mean), list(cfg.data.std)
    if isinstance(train, ImageShards):  # measured on the first samples, not the whole set
        return channel_stats(train.head(SHARD_STATS_SAMPLES))
    return channel_stats(train)
