"""The image modality: recipe sections, run set-up, kNN / linear-probe protocols, and the
image methods' hyperparameters (SimCLR, SimSiam, Barlow Twins, supervised).

``data.name: controlled`` renders a controlled data set (``data.controlled``, see
:mod:`invlab.data.controlled`); on any other data set a ``data.controlled`` section applies
the controlled wrapper (a class block and a transformation set with recorded parameters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from invlab.data.arrays import ImageArray
from invlab.data.controlled import (
    ControlledImages,
    ControlledSpec,
    TransformedImages,
    apply_controlled,
    check_spec,
    choose_transforms,
    controlled_split,
    select_classes,
)
from invlab.data.loader import ImageDataModule
from invlab.data.registry import channel_stats, load_image_dataset
from invlab.errors import ConfigError, DataError
from invlab.evaluation.equivariance import equivariance_profile
from invlab.evaluation.features import extract_features
from invlab.evaluation.invariance import invariance_profile
from invlab.evaluation.knn import knn_accuracy
from invlab.evaluation.linear_probe import linear_probe
from invlab.losses.equivariance import prediction_layout
from invlab.methods import BarlowTwins, SimCLR, SimSiam
from invlab.methods.base import SSLMethod
from invlab.methods.essl import EBarlowTwins, EquivarianceSpec, ESimCLR, ESimSiam
from invlab.methods.supervised import Supervised
from invlab.nn.encoder import Encoder
from invlab.nn.heads import HeadSpec
from invlab.nn.registry import build_backbone
from invlab.report import markdown_table
from invlab.runs.export import export_encoder, load_encoder
from invlab.runs.registry import (
    MODALITIES,
    MethodSpec,
    Modality,
    RunParts,
    register_method,
    register_modality,
)
from invlab.transforms.copies import enumerable_key
from invlab.transforms.registry import build_pipeline
from invlab.transforms.transforms2d import transform_2d_names
from invlab.transforms.views import MultiViewSampler

__all__ = [
    "ImageData", "ImageModel", "ImageAugment", "ImageMonitor", "SimCLRParams", "SimSiamParams",
    "BarlowTwinsParams", "SupervisedParams", "IMAGE_METHOD_CLASSES", "load_data", "normalisation", "build_encoder",
    "build_pipelines", "build_method", "setup", "knn_protocol", "linear_protocol", "measurement_data",
    "invariance_protocol", "equivariance_protocol",
]


# -- recipe sections -------------------------------------------------------------------
@dataclass
class ImageData:
    name: str = "cifar10"  # cifar10 | image_folder | digits | controlled
    root: str | None = None
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


@dataclass
class SimCLRParams:
    temperature: float = 0.5
    gather: bool | None = None
    loss: str = "nt_xent"  # nt_xent (all 2B-2 negatives) | info_nce (cross-view negatives only, E-SSL's)


@dataclass
class SimSiamParams:
    pass


@dataclass
class BarlowTwinsParams:
    lambda_offdiag: float = 5e-3
    gather: bool | None = None


@dataclass
class SupervisedParams:
    label_smoothing: float = 0.0


IMAGE_METHOD_CLASSES: dict[str, type[SSLMethod]] = {
    "simclr": SimCLR, "simsiam": SimSiam, "barlow_twins": BarlowTwins, "supervised": Supervised,
}


def validate(cfg) -> None:
    d, m, a, mon = cfg.data, cfg.model, cfg.augment, cfg.monitor
    if getattr(cfg.params, "temperature", 1.0) <= 0:
        raise ConfigError("recipe key 'params.temperature' must be positive")
    if getattr(cfg.params, "loss", "nt_xent") not in ("nt_xent", "info_nce"):
        raise ConfigError(f"recipe key 'params.loss' must be nt_xent or info_nce, got {cfg.params.loss!r}")
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
    if getattr(IMAGE_METHOD_CLASSES.get(cfg.method), "needs_labels", False):
        for key in ("projector", "predictor"):
            if getattr(m, key) is not None:
                raise ConfigError(f"recipe key 'model.{key}': {cfg.method} has no {key} (its head is a linear classifier)")
    if getattr(cfg.params, "label_smoothing", 0.0) < 0 or getattr(cfg.params, "label_smoothing", 0.0) >= 1:
        raise ConfigError("recipe key 'params.label_smoothing' must lie within [0, 1)")
    build_pipelines(cfg)  # transform names and options
    _validate_equivariance(cfg)
    validate_learned_augmentation(cfg)


# -- building -------------------------------------------------------------------------
def build_pipelines(cfg):
    a = cfg.augment
    if a.view_pipelines is not None:
        return [build_pipeline(p, f"augment.view_pipelines[{i}]") for i, p in enumerate(a.view_pipelines)]
    pipe = build_pipeline(a.pipeline, "augment.pipeline")
    return [pipe] * a.views


def load_split(cfg, split: str, progress: bool = True) -> ImageArray:
    """One split of the recipe's data set (controlled sets rendered, the wrapper applied)."""
    d = cfg.data
    if d.name == "controlled":
        return controlled_split(d.controlled or ControlledSpec(), split, d.channels, d.cache, progress)
    kw = dict(channels=d.channels, image_size=d.image_size, convert_mode=d.convert_mode, cache=d.cache, progress=progress)
    data = load_image_dataset(d.name, d.root, split, **kw)
    if d.controlled is not None:
        data = apply_controlled(data, d.controlled, split, d.cache, progress)
    return data


def load_data(cfg, progress: bool = True) -> tuple[ImageArray, ImageArray]:
    d = cfg.data
    train = load_split(cfg, "train", progress).subset(d.train_subset, d.subset_seed)
    test = load_split(cfg, "test", progress).subset(d.test_subset, d.subset_seed)
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
    return channel_stats(train)


def build_encoder(cfg, mean: list[float], std: list[float], channels: int) -> Encoder:
    m = cfg.model
    backbone = build_backbone(m.backbone, width=m.width, stem=m.stem, in_channels=channels,
                              zero_init_residual=m.zero_init_residual)
    return Encoder(backbone, mean, std, channels_last=m.channels_last)


def build_method(cfg, mean: list[float], std: list[float], channels: int, num_classes: int | None) -> SSLMethod:
    encoder = build_encoder(cfg, mean, std, channels)
    views = MultiViewSampler(build_pipelines(cfg))
    params = cfg.params
    kwargs = {k: getattr(params, k) for k in params.__dataclass_fields__}
    if cfg.model.projector is not None:
        kwargs["projector"] = cfg.model.projector
    if cfg.model.predictor is not None:
        kwargs["predictor"] = cfg.model.predictor
    cls = IMAGE_METHOD_CLASSES[cfg.method]
    needs_labels = getattr(cls, "needs_labels", False)
    return cls(
        encoder, views,
        num_classes=num_classes if cfg.monitor.probe or cfg.monitor.knn or needs_labels else None,
        optim=cfg.optim, knn_k=cfg.monitor.knn_k, knn_t=cfg.monitor.knn_t, seed=cfg.seed, **kwargs,
    )


def setup(cfg, world_size: int, progress: bool) -> RunParts:
    train, test = load_data(cfg, progress=progress)
    mean, std = normalisation(cfg, train)
    method = build_method(cfg, mean, std, train.channels, train.num_classes)
    datamodule = ImageDataModule(
        train, test if (cfg.monitor.knn or cfg.monitor.probe) else None,
        batch_size=cfg.data.batch_size // world_size, eval_batch_size=cfg.data.eval_batch_size,
        num_workers=cfg.data.num_workers, seed=cfg.seed,
    )

    def export(folder: Path) -> None:
        export_encoder(method.encoder, folder, modality="image", method=cfg.method, input_size=list(train.size),
                       channels=train.channels, classes=train.classes)

    return RunParts(method, datamodule, export, {"train_size": len(train), "test_size": len(test)})


# -- evaluation protocols -----------------------------------------------------------------
def _features(model: str | Path, cfg, batch_size: int, progress: bool):
    encoder, _ = load_encoder(model)
    train, test = load_data(cfg, progress=progress)
    if train.channels != encoder.mean.shape[1]:
        raise ConfigError(f"the encoder expects {encoder.mean.shape[1]} channels but {cfg.data.name} has {train.channels}")
    t0 = time.perf_counter()
    train_x, train_y = extract_features(encoder, train, batch_size, show_progress=progress, desc="bank features")
    test_x, test_y = extract_features(encoder, test, batch_size, show_progress=progress, desc="test features")
    base = {"data": cfg.data.name, "train_size": len(train), "test_size": len(test), "feature_dim": int(train_x.shape[1])}
    return (train_x, train_y, test_x, test_y, train.num_classes), base, t0


def knn_protocol(model, cfg, k: int = 200, temperature: float = 0.1, batch_size: int = 512, progress: bool = True,
                 **_: Any) -> dict[str, Any]:
    (tx, ty, qx, qy, c), result, t0 = _features(model, cfg, batch_size, progress)
    result.update(k=k, temperature=temperature, top1=knn_accuracy(qx, qy, tx, ty, c, k, temperature))
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
    encoder, _ = load_encoder(model)
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
    encoder, _ = load_encoder(model)
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


def encoder_from_state(cfg, state: dict[str, torch.Tensor]) -> Encoder:
    encoder = build_encoder(cfg, state["mean"].flatten().tolist(), state["std"].flatten().tolist(),
                            int(state["mean"].numel()))
    encoder.channels_last = False
    return encoder


register_modality(
    Modality(
        name="image", data=ImageData, model=ImageModel, augment=ImageAugment, monitor=ImageMonitor,
        setup=setup, validate=validate,
        protocols={"knn": knn_protocol, "linear": linear_protocol, "invariance": invariance_protocol,
                   "equivariance": equivariance_protocol},
        encoder_from_state=encoder_from_state,
    )
)
register_method(MethodSpec("simclr", "image", SimCLRParams, views=2))
register_method(MethodSpec("simsiam", "image", SimSiamParams, views=2))
register_method(MethodSpec("barlow_twins", "image", BarlowTwinsParams, views=2))
register_method(MethodSpec("supervised", "image", SupervisedParams, views=1))


# -- E-SSL (issue 6): the base methods plus an equivariance objective ---------------------
@dataclass
class ESimCLRParams(SimCLRParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=0.4))


@dataclass
class ESimSiamParams(SimSiamParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=0.4))


@dataclass
class EBarlowTwinsParams(BarlowTwinsParams):
    equivariance: EquivarianceSpec = field(default_factory=lambda: EquivarianceSpec(weight=8.0))


def _validate_equivariance(cfg) -> None:
    spec = getattr(cfg.params, "equivariance", None)
    if spec is None:
        return
    if spec.weight < 0:
        raise ConfigError(f"recipe key 'params.equivariance.weight' must be >= 0, got {spec.weight}")
    if spec.copies < 1:
        raise ConfigError(f"recipe key 'params.equivariance.copies' must be >= 1, got {spec.copies}")
    if spec.norm not in ("none", "batch", "layer", "batch_noaffine"):
        raise ConfigError(f"recipe key 'params.equivariance.norm' must be none, batch, layer or batch_noaffine, got {spec.norm!r}")
    build_pipeline(spec.view, "params.equivariance.view")
    target = build_pipeline(spec.target, "params.equivariance.target")
    try:
        enumerable_key(target, spec.copies, spec.enumerate)
        prediction_layout(target.param_specs(), spec.predict)
    except ValueError as err:
        raise ConfigError(f"recipe section 'params.equivariance': {err}") from None


IMAGE_METHOD_CLASSES.update(e_simclr=ESimCLR, e_simsiam=ESimSiam, e_barlow_twins=EBarlowTwins)
register_method(MethodSpec("e_simclr", "image", ESimCLRParams, views=2))
register_method(MethodSpec("e_simsiam", "image", ESimSiamParams, views=2))
register_method(MethodSpec("e_barlow_twins", "image", EBarlowTwinsParams, views=2))


# -- learned augmentation (issue 13): InstaAug / Augerino on supervised training or SimCLR --
# (kept to these lines so they move into methods/instaaug.py's SPEC with issue 11's registry)
from invlab.methods.instaaug import (  # noqa: E402
    InstaAugSimCLR,
    InstaAugSupervised,
    LearnedAugmentSpec,
)
from invlab.methods.instaaug import check_spec as _check_augmentation  # noqa: E402


@dataclass
class InstaAugParams(SupervisedParams):
    augmentation: LearnedAugmentSpec = field(default_factory=LearnedAugmentSpec)


@dataclass
class AugerinoParams(SupervisedParams):
    augmentation: LearnedAugmentSpec = field(default_factory=lambda: LearnedAugmentSpec(kind="augerino"))


@dataclass
class InstaAugSimCLRParams(SimCLRParams):
    augmentation: LearnedAugmentSpec = field(
        default_factory=lambda: LearnedAugmentSpec(entropy="target", freeze_fraction=0.1))


def validate_learned_augmentation(cfg) -> None:
    spec = getattr(cfg.params, "augmentation", None)
    if isinstance(spec, LearnedAugmentSpec):
        _check_augmentation(spec)
        if cfg.method == "instaaug_simclr" and spec.kind == "augerino":
            raise ConfigError("recipe key 'params.augmentation.kind': augerino is for supervised training only")


IMAGE_METHOD_CLASSES.update(instaaug=InstaAugSupervised, augerino=InstaAugSupervised, instaaug_simclr=InstaAugSimCLR)
register_method(MethodSpec("instaaug", "image", InstaAugParams, views=1))
register_method(MethodSpec("augerino", "image", AugerinoParams, views=1))
register_method(MethodSpec("instaaug_simclr", "image", InstaAugSimCLRParams, views=2))


def augmentation_protocol(model, cfg, num_images: int = 8, progress: bool = False, **_: Any) -> dict[str, Any]:
    """Pictures of a learned augmentation (InstaAug crop heat-maps, per-input ranges;
    Augerino's widths) for the first ``num_images`` test images, written into the run
    folder (``augmentation_*.png``). Needs the run's checkpoint (the invariance module is
    not part of the exported encoder)."""
    from invlab.methods.instaaug import LearnedAugmentation, augmentation_pictures
    from invlab.runs.checkpoint import safe_torch_load
    from invlab.runs.run_dir import RunDir

    run = RunDir.find(model)
    if run is None or not run.last_checkpoint.exists():
        raise ConfigError(f"{model}: the augmentation protocol needs a run folder with checkpoints/last.ckpt")
    train, test = load_data(cfg, progress=progress)
    mean, std = normalisation(cfg, train)
    method = build_method(cfg, mean, std, train.channels, train.num_classes)
    if not isinstance(method, LearnedAugmentation):
        raise ConfigError(f"method {cfg.method!r} learns no augmentation; the augmentation protocol is for "
                          "instaaug, augerino and instaaug_simclr runs")
    method.load_state_dict(safe_torch_load(run.last_checkpoint)["state_dict"])
    method.eval()
    n = min(num_images, len(test))
    x = torch.from_numpy(test.images[:n]).float() / 255.0
    result = augmentation_pictures(method, x, run.path)
    result["num_images"] = n
    return result


MODALITIES["image"].protocols["augmentation"] = augmentation_protocol
