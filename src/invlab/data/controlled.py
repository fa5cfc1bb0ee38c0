"""Controlled image data sets with known factors of variation.

:class:`ControlledImages` (Transforms-2D style, Speicher et al., TMLR 2024): a sample is
``background(transform(object))``: one foreground object (one prototype per class, see
:mod:`invlab.data.assets`) resized to the canvas and scaled by ``object_scale`` (0.7),
transformed as an RGBA layer by a chosen set of transformations (the 18 of
:mod:`invlab.transforms.transforms2d`, or any registered invlab transform), and pasted onto
a random crop of a real photograph.

:class:`TransformedImages` is the controlled wrapper for real data sets (the paper's CIFAR
variants): any :class:`~invlab.data.arrays.ImageArray` under a chosen transformation set,
with every parameter recorded.

Three seeds, as in the paper:

- ``structure_seed``: which classes (and, when ``transforms`` is a number, which
  transformations) the set uses;
- ``content_seed``: the class and background of each index;
- ``transform_seed``: the transformation parameters of each index (each transformation
  draws from its own stream, so one can be redrawn while the others stay).

Two sets that differ only in ``transform_seed`` are **twins**: index by index the same
object on the same background under independently drawn transformations
(:meth:`ControlledImages.variant`). Every sample carries its factors
(:attr:`ControlledImages.factors`: ``label``, ``object``, ``background`` and every
transformation parameter, keyed ``"<transform>.<param>"``). Rendering is batched tensor
code; :meth:`to_image_array` renders the whole set once into the uint8 disk cache
(:mod:`invlab.data.cache`).

>>> data = ControlledImages(["rotate", "hue"], 5000, num_classes=30)
>>> x = data.render(range(16))             # float (16, 3, 32, 32) in [0, 1]
>>> data.factors["rotate.angle"][:3]       # the angle of each of the first three
>>> twin = data.variant(transform_seed=1)  # same objects and backgrounds, new angles and hues
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from invlab.data.arrays import ImageArray
from invlab.data.assets import (
    BUILTIN_FOREGROUNDS,
    GLYPH_CHARACTERS,
    assets_fingerprint,
    background_bank,
    load_foregrounds,
)
from invlab.data.cache import cached_image_array, fingerprint
from invlab.errors import ConfigError, DataError
from invlab.progress import progress as _progress
from invlab.transforms.base import Compose, Params, select_params
from invlab.transforms.image import rgb_to_gray
from invlab.transforms.transforms2d import pipeline_2d, transform_2d_names, transform_spec_name

__all__ = [
    "ControlledSpec", "ControlledImages", "TransformedImages", "select_classes", "choose_transforms",
    "controlled_split", "apply_controlled",
]

_FORMAT = 1
_SPLIT_TAGS = {"train": 0, "test": 1, "val": 2}


@dataclass
class ControlledSpec:
    """Recipe form of a controlled data set (section ``data.controlled``).

    With ``data.name: controlled`` it defines the synthetic set; with any other data set
    (``cifar10``, ``image_folder``, ...) the wrapper uses ``transforms``,
    ``transform_seed`` and the class selection (``num_classes``, ``class_offset``,
    ``structure_seed``) only.
    """

    transforms: list[Any] | int = field(default_factory=list)  # names/specs, or how many to draw
    foregrounds: str = "glyphs"  # glyphs | digits | glyphs+digits | a folder (one image per class)
    backgrounds: str = "photos"  # photos (scikit-image) | a folder of photographs
    num_classes: int | None = None  # None: all
    class_offset: int = 0  # start of the block of classes in the structure-seeded order
    train_samples: int = 10000
    test_samples: int = 2000
    image_size: int = 32
    object_scale: float = 0.7
    num_backgrounds: int = 867
    structure_seed: int = 0
    content_seed: int = 0
    transform_seed: int = 0


def _stream_seed(*parts: Any) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (independent streams)."""
    return int(fingerprint("invlab-stream", *parts)[:15], 16)


def choose_transforms(transforms: Sequence[Any] | int, structure_seed: int = 0) -> list[Any]:
    """``transforms`` as given, or ``k`` Transforms-2D names drawn by ``structure_seed``."""
    if isinstance(transforms, bool):
        raise ConfigError(f"transforms must be a list of names or a count, got {transforms!r}")
    if isinstance(transforms, int):
        names = transform_2d_names()
        if not 0 <= transforms <= len(names):
            raise ConfigError(f"transforms: cannot draw {transforms} of the {len(names)} Transforms-2D transformations")
        rng = np.random.default_rng(_stream_seed("transforms", structure_seed))
        return [names[i] for i in sorted(rng.choice(len(names), transforms, replace=False))]
    return list(transforms)


def _class_block(total: int, num_classes: int | None, class_offset: int, structure_seed: int, what: str) -> np.ndarray:
    """Indices of ``num_classes`` classes starting at ``class_offset`` in a
    ``structure_seed``-shuffled order of ``total`` (so blocks at different offsets are
    disjoint)."""
    n = total - class_offset if num_classes is None else num_classes
    if class_offset < 0 or n < 2 or class_offset + n > total:
        raise ConfigError(
            f"{what} has {total} classes: cannot take num_classes={num_classes} from class_offset={class_offset} "
            "(need at least 2 classes within range)"
        )
    order = np.random.default_rng(_stream_seed("classes", structure_seed)).permutation(total)
    return np.sort(order[class_offset : class_offset + n])


def select_classes(data: ImageArray, num_classes: int | None, class_offset: int = 0, structure_seed: int = 0) -> ImageArray:
    """The samples of a block of classes (see :class:`ControlledSpec`), relabelled
    ``0..k-1`` in class order."""
    if num_classes is None and class_offset == 0:
        return data
    if (data.labels < 0).any():
        raise DataError(f"{data.source}: selecting classes needs labels, but some samples have none (-1)")
    keep = _class_block(data.num_classes, num_classes, class_offset, structure_seed, data.source or "the data set")
    mapping = np.full(data.num_classes, -1, dtype=np.int64)
    mapping[keep] = np.arange(len(keep))
    rows = np.flatnonzero(np.isin(data.labels, keep))
    out = data.select(rows)
    names = [data.classes[i] for i in keep] if data.classes else [str(i) for i in keep]
    return ImageArray(out.images, mapping[out.labels], names, f"{data.source}[classes {list(map(int, keep))}]")


class _FactorImages:
    """Shared machinery: per-index factors, per-transformation parameter streams,
    batched rendering, twins and caching. Subclasses give ``_layers(index)`` (float
    ``(B, C, H, W)`` the pipeline acts on) and ``_finish(out, index)``."""

    target = "object"
    batch_size = 512

    def __init__(self, transforms: Sequence[Any], seeds: dict[str, int], split: str, n: int):
        if split not in _SPLIT_TAGS:
            raise ValueError(f"split must be one of {sorted(_SPLIT_TAGS)}, got {split!r}")
        self.transform_specs = list(transforms)
        self.pipeline: Compose = pipeline_2d(self.transform_specs, self.target)
        self.transform_names = [transform_spec_name(s) for s in self.transform_specs]
        self.seeds = dict(seeds)
        self.split, self.n = split, int(n)
        self.params: Params = self._sample_params()

    def _sample_params(self) -> Params:
        out: Params = {}
        for name, t in self.pipeline.steps():
            g = torch.Generator().manual_seed(_stream_seed("params", self.seeds[name], name, self.split))
            out.update({f"{name}.{k}": v for k, v in t.sample(self.n, g, size=self.size).items()})
        return out

    # -- to implement ---------------------------------------------------------------------
    size: tuple[int, int] = (32, 32)
    labels: np.ndarray
    classes: list[str]

    def _layers(self, index: Tensor) -> Tensor:
        raise NotImplementedError

    def _finish(self, out: Tensor, index: Tensor) -> Tensor:
        return out

    def _content_factors(self) -> dict[str, np.ndarray]:
        return {"label": self.labels}

    def cache_key(self) -> str:
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    @property
    def factors(self) -> dict[str, np.ndarray]:
        """Per-index factors: content (``label``, ...) and every transformation parameter."""
        out = dict(self._content_factors())
        out.update({k: v.numpy() for k, v in self.params.items()})
        return out

    def transform_params(self, name: str) -> Params:
        """The parameters of transformation ``name`` (keys without the prefix)."""
        if name not in self.transform_names:
            raise KeyError(f"{name!r} is not one of this set's transformations {self.transform_names}")
        prefix = name + "."
        return {k[len(prefix):]: v for k, v in self.params.items() if k.startswith(prefix)}

    @torch.no_grad()
    def render(self, index: Iterable[int] | Tensor | np.ndarray | slice, params: Params | None = None) -> Tensor:
        """Float images ``(B, C, H, W)`` in ``[0, 1]`` for ``index``; ``params`` (rows
        aligned with ``index``) replaces the recorded transformation parameters, e.g.
        ``pipeline.identity_params(len(index))`` for the untransformed samples."""
        if isinstance(index, slice):
            index = range(*index.indices(self.n))
        if not isinstance(index, (Tensor, np.ndarray)):
            index = np.asarray(list(index), dtype=np.int64)
        index = torch.as_tensor(index, dtype=torch.long).flatten()
        if index.numel() and (index.min() < 0 or index.max() >= self.n):
            raise IndexError(f"index out of range for a data set of {self.n} samples")
        if params is not None:
            missing = [k for k in self.params if k not in params]
            if missing or any(len(v) != len(index) for v in params.values()):
                raise ValueError(f"params must give {sorted(self.params)} for each of the {len(index)} samples")
        out = []
        for s in range(0, len(index), self.batch_size):
            idx = index[s : s + self.batch_size]
            p = select_params(self.params, idx) if params is None else select_params(params, slice(s, s + len(idx)))
            x = self.pipeline.apply(self._layers(idx), p)
            out.append(self._finish(x, idx).clamp_(0.0, 1.0))
        if not out:
            c = 1 if getattr(self, "channels", 3) == 1 else 3
            return torch.zeros(0, c, *self.size)
        return torch.cat(out)

    def images(self, index) -> Tensor:
        """uint8 images ``(B, C, H, W)`` for ``index`` (as stored in the cache)."""
        return self.render(index).mul_(255.0).round_().to(torch.uint8)

    def to_image_array(self, cache: str = "memory", progress: bool = False) -> ImageArray:
        """Render every sample once into a uint8 :class:`ImageArray` (labels = classes),
        stored in the data cache (``cache``: memory, mmap or none)."""

        def build() -> ImageArray:
            first = self.images(range(min(1, self.n)))
            arr = np.empty((self.n, *first.shape[1:]), dtype=np.uint8)
            starts = range(0, self.n, self.batch_size)
            for s in _progress(starts, "rendering", len(starts), progress, "batch"):
                arr[s : s + self.batch_size] = self.images(range(s, min(s + self.batch_size, self.n))).numpy()
            return ImageArray(arr, self.labels.astype(np.int64), list(self.classes), self.source)

        return cached_image_array(self.cache_key(), build, cache)

    @property
    def source(self) -> str:
        return f"{type(self).__name__}[{', '.join(self.transform_names) or 'no transforms'}; {self.split}]"

    def _variant_seeds(self, transform_seed: int | None, resample: Sequence[str] | None, names: list[str]) -> dict[str, int]:
        seeds = {}
        for name in names:
            if transform_seed is not None and (resample is None or name in resample):
                seeds[name] = transform_seed
            else:
                seeds[name] = self.seeds.get(name, self.base_transform_seed)
        if resample is not None:
            missing = [r for r in resample if r not in names]
            if missing:
                raise KeyError(f"cannot resample {missing}: not among the transformations {names}")
        return seeds

    base_transform_seed: int = 0


class ControlledImages(_FactorImages):
    """A controlled image set: ``background(transform(object))`` with known factors.

    Args:
        transforms: transformation names or specs (Transforms-2D catalogue first, then
            the general registry; options override the paper's ranges), or a number of
            Transforms-2D transformations to draw with ``structure_seed``.
        num_samples: size of the set.
        foregrounds, backgrounds: asset sources (:mod:`invlab.data.assets`).
        num_classes, class_offset: which block of the structure-seeded class order.
        image_size: canvas side in pixels (any size; 32 by default, as the paper).
        channels: 3 (RGB) or 1 (grey, the luma of the RGB image).
        object_scale: the object's side as a fraction of the canvas (0.7).
        num_backgrounds: size of the fixed bank of background crops (867, as the paper).
        structure_seed, content_seed, transform_seed: see the module docstring.
        split: ``train``, ``test`` or ``val``: independent content and parameters for
            the same structure.
    """

    def __init__(
        self,
        transforms: Sequence[Any] | int = (),
        num_samples: int = 1000,
        *,
        foregrounds: str = "glyphs",
        backgrounds: str = "photos",
        num_classes: int | None = None,
        class_offset: int = 0,
        image_size: int = 32,
        channels: int = 3,
        object_scale: float = 0.7,
        num_backgrounds: int = 867,
        structure_seed: int = 0,
        content_seed: int = 0,
        transform_seed: int = 0,
        split: str = "train",
        _seeds: dict[str, int] | None = None,
    ):
        if num_samples < 1:
            raise ConfigError(f"a controlled set needs num_samples >= 1, got {num_samples}")
        if image_size < 4:
            raise ConfigError(f"image_size must be >= 4 pixels, got {image_size}")
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if not 0.05 <= object_scale <= 1.0:
            raise ConfigError(f"object_scale must lie within [0.05, 1], got {object_scale}")
        self.options = dict(
            foregrounds=foregrounds, backgrounds=backgrounds, num_classes=num_classes, class_offset=class_offset,
            image_size=image_size, channels=channels, object_scale=object_scale, num_backgrounds=num_backgrounds,
            structure_seed=structure_seed, content_seed=content_seed,
        )
        self.size = (image_size, image_size)
        self.channels = channels
        self.structure_seed, self.content_seed = structure_seed, content_seed
        self.base_transform_seed = transform_seed
        transforms = choose_transforms(transforms, structure_seed)
        names = [transform_spec_name(s) for s in transforms]
        seeds = _seeds if _seeds is not None else {name: transform_seed for name in names}

        fg = load_foregrounds(foregrounds)
        self.objects = _class_block(len(fg), num_classes, class_offset, structure_seed, f"foreground set {fg.source}")
        self.classes = [fg.names[i] for i in self.objects]
        self._prototypes = fg.at_size(image_size, object_scale)[torch.from_numpy(self.objects)]
        self._backgrounds = background_bank(backgrounds, image_size, num_backgrounds)
        rng = np.random.default_rng(_stream_seed("content", content_seed, split))
        k = len(self.objects)
        self.labels = rng.permutation(np.arange(num_samples) % k).astype(np.int64)  # balanced classes
        self.background_ids = rng.integers(0, num_backgrounds, num_samples).astype(np.int64)
        super().__init__(transforms, seeds, split, num_samples)

    @classmethod
    def from_spec(cls, spec: ControlledSpec, split: str = "train", channels: int = 3) -> ControlledImages:
        n = spec.train_samples if split == "train" else spec.test_samples
        return cls(
            spec.transforms, n, foregrounds=spec.foregrounds, backgrounds=spec.backgrounds,
            num_classes=spec.num_classes, class_offset=spec.class_offset, image_size=spec.image_size,
            channels=channels, object_scale=spec.object_scale, num_backgrounds=spec.num_backgrounds,
            structure_seed=spec.structure_seed, content_seed=spec.content_seed, transform_seed=spec.transform_seed,
            split=split,
        )

    def _content_factors(self) -> dict[str, np.ndarray]:
        return {"label": self.labels, "object": self.objects[self.labels], "background": self.background_ids}

    def _layers(self, index: Tensor) -> Tensor:
        return self._prototypes[torch.from_numpy(self.labels)[index]]

    def _finish(self, out: Tensor, index: Tensor) -> Tensor:
        bg = self._backgrounds[torch.from_numpy(self.background_ids)[index]].float().div_(255.0)
        alpha = out[:, 3:].clamp(0.0, 1.0)
        img = bg * (1 - alpha) + out[:, :3].clamp(0.0, 1.0) * alpha
        return rgb_to_gray(img) if self.channels == 1 else img

    def variant(
        self,
        transforms: Sequence[Any] | None = None,
        transform_seed: int | None = None,
        resample: Sequence[str] | None = None,
    ) -> ControlledImages:
        """The same objects and backgrounds (same structure and content seeds) with other
        transformations or parameters.

        ``transform_seed`` redraws the parameters of every transformation, or only of
        those named in ``resample``: ``data.variant(transform_seed=1)`` is a twin of
        ``data``; ``data.variant(transform_seed=1, resample=["rotate"])`` differs from it
        only in the rotation angles. ``transforms`` replaces the set (a transformation it
        keeps keeps its stream).
        """
        specs = list(self.transform_specs) if transforms is None else choose_transforms(transforms, self.structure_seed)
        names = [transform_spec_name(s) for s in specs]
        seeds = self._variant_seeds(transform_seed, resample, names)
        return ControlledImages(specs, self.n, **self.options, transform_seed=self.base_transform_seed,
                                split=self.split, _seeds=seeds)

    def cache_key(self) -> str:
        return fingerprint(
            "controlled", _FORMAT, assets_fingerprint(self.options["foregrounds"], self.options["backgrounds"]),
            json.dumps(self.transform_specs, sort_keys=True, default=str), sorted(self.seeds.items()),
            {k: v for k, v in self.options.items() if k not in ("foregrounds", "backgrounds")},
            self.objects.tolist(), self.n, self.split,
        )

    @property
    def source(self) -> str:
        o = self.options
        return (f"controlled[{o['foregrounds']} x {o['backgrounds']}; {len(self.classes)} classes; "
                f"{', '.join(self.transform_names) or 'no transforms'}; seeds {o['structure_seed']}/"
                f"{o['content_seed']}/{self.base_transform_seed}; {self.split}]")


class TransformedImages(_FactorImages):
    """A real image set under a chosen transformation set, parameters recorded per index
    (the paper's CIFAR variants). Transformations act on the whole image (``translate`` is
    a shift, see :mod:`invlab.transforms.transforms2d`). Twins: :meth:`variant`.

    >>> cifar_rot = TransformedImages(cifar_train, ["rotate", "blur"], transform_seed=0)
    >>> arr = cifar_rot.to_image_array()   # uint8, cached; cifar_rot.factors has every angle
    """

    target = "image"

    def __init__(self, base: ImageArray, transforms: Sequence[Any] = (), transform_seed: int = 0,
                 split: str = "train", _seeds: dict[str, int] | None = None):
        self.base = base
        self.size = base.size
        self.labels = np.asarray(base.labels, dtype=np.int64)
        self.classes = list(base.classes)
        self.channels = base.channels
        self.base_transform_seed = transform_seed
        names = [transform_spec_name(s) for s in transforms]
        seeds = _seeds if _seeds is not None else {name: transform_seed for name in names}
        super().__init__(transforms, seeds, split, len(base))

    def _content_factors(self) -> dict[str, np.ndarray]:
        return {"label": self.labels, "index": np.arange(self.n)}

    def _layers(self, index: Tensor) -> Tensor:
        idx = np.sort(index.numpy())
        order = np.argsort(np.argsort(index.numpy()))
        x = torch.from_numpy(np.ascontiguousarray(self.base.images[idx]))[torch.from_numpy(order)]
        return x.float().div_(255.0)

    def variant(self, transforms: Sequence[Any] | None = None, transform_seed: int | None = None,
                resample: Sequence[str] | None = None) -> TransformedImages:
        """Same base images, other transformations or parameters (see
        :meth:`ControlledImages.variant`)."""
        specs = list(self.transform_specs) if transforms is None else list(transforms)
        seeds = self._variant_seeds(transform_seed, resample, [transform_spec_name(s) for s in specs])
        return TransformedImages(self.base, specs, self.base_transform_seed, self.split, _seeds=seeds)

    def cache_key(self) -> str:
        import hashlib

        h = hashlib.sha256(np.ascontiguousarray(self.base.images).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return fingerprint("transformed", _FORMAT, h.hexdigest(), json.dumps(self.transform_specs, sort_keys=True, default=str),
                           sorted(self.seeds.items()), self.split)

    @property
    def source(self) -> str:
        return f"{self.base.source} under [{', '.join(self.transform_names) or 'no transforms'}] ({self.split})"


def controlled_split(spec: ControlledSpec, split: str, channels: int | None = 3, cache: str = "memory",
                     progress: bool = False) -> ImageArray:
    """The ``split`` of the controlled set ``spec``, rendered and cached."""
    return ControlledImages.from_spec(spec, split, channels or 3).to_image_array(cache, progress)


def apply_controlled(data: ImageArray, spec: ControlledSpec, split: str, cache: str = "memory",
                     progress: bool = False) -> ImageArray:
    """The controlled wrapper as a recipe applies it to a real data set: the class block,
    then the transformations (if any), rendered and cached."""
    data = select_classes(data, spec.num_classes, spec.class_offset, spec.structure_seed)
    transforms = choose_transforms(spec.transforms, spec.structure_seed)
    if not transforms:
        return data
    return TransformedImages(data, transforms, spec.transform_seed, split).to_image_array(cache, progress)


def check_spec(spec: ControlledSpec, synthetic: bool, where: str = "data.controlled") -> None:
    """Validate a spec before any data is touched (errors name the recipe key)."""
    for key in ("train_samples", "test_samples", "image_size", "num_backgrounds"):
        if getattr(spec, key) < 1:
            raise ConfigError(f"recipe key '{where}.{key}' must be >= 1, got {getattr(spec, key)}")
    if spec.image_size < 4:
        raise ConfigError(f"recipe key '{where}.image_size' must be >= 4, got {spec.image_size}")
    if not 0.05 <= spec.object_scale <= 1.0:
        raise ConfigError(f"recipe key '{where}.object_scale' must lie within [0.05, 1], got {spec.object_scale}")
    if spec.num_classes is not None and spec.num_classes < 2:
        raise ConfigError(f"recipe key '{where}.num_classes' must be >= 2, got {spec.num_classes}")
    if spec.class_offset < 0:
        raise ConfigError(f"recipe key '{where}.class_offset' must be >= 0, got {spec.class_offset}")
    try:
        pipeline_2d(choose_transforms(spec.transforms, spec.structure_seed), "object" if synthetic else "image",
                    f"{where}.transforms")
    except ConfigError as err:
        msg = str(err)
        raise ConfigError(msg if msg.startswith(f"{where}") else f"recipe key '{where}.transforms': {msg}") from None
    if synthetic and spec.foregrounds in BUILTIN_FOREGROUNDS:
        total = {"glyphs": len(GLYPH_CHARACTERS), "digits": 10, "glyphs+digits": len(GLYPH_CHARACTERS) + 10}[spec.foregrounds]
        _class_block(total, spec.num_classes, spec.class_offset, 0, f"recipe key '{where}': foreground set {spec.foregrounds!r}")
