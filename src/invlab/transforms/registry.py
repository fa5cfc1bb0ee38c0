"""Build transforms from plain specs (recipes): ``{"name": "jitter", "brightness": 0.4, "p": 0.8}``.

``p`` wraps a transform in :class:`RandomApply` unless the transform draws its own
probability (flips, grayscale, invert).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from invlab.errors import ConfigError
from invlab.transforms import image, timeseries
from invlab.transforms.base import Compose, RandomApply, Transform
from invlab.transforms.jigsaw import Jigsaw

__all__ = ["TRANSFORMS", "register_transform", "build_transform", "build_pipeline", "transform_names"]

TRANSFORMS: dict[str, Callable[..., Transform]] = {}
# what each registered name acts on: "image" (N, C, H, W) or "series" (N, C, T)
TRANSFORM_KINDS: dict[str, str] = {}


def register_transform(name: str, factory: Callable[..., Transform], *aliases: str, kind: str = "image") -> None:
    """Make ``factory`` buildable from specs under ``name`` (and ``aliases``). ``kind`` says
    what it acts on (``"image"`` or ``"series"``). A name already taken is refused, so an
    alias can never silently replace another transform."""
    if kind not in ("image", "series"):
        raise ValueError(f"kind must be 'image' or 'series', got {kind!r}")
    for key in (name, *aliases):
        if key in TRANSFORMS and TRANSFORMS[key] is not factory:
            raise ValueError(f"transform name {key!r} is already registered to {TRANSFORMS[key]!r}")
        TRANSFORMS[key] = factory
        TRANSFORM_KINDS[key] = kind


for _cls, _aliases in (
    (image.RandomResizedCrop, ("resized_crop", "random_resized_crop")),
    (image.Resize, ()),
    (image.HorizontalFlip, ("horizontal_flip",)),
    (image.VerticalFlip, ("vertical_flip",)),
    (image.Rotate90, ("rotate90",)),
    (image.Rotate, ("rotation",)),
    (image.Translate, ()),
    (image.Scale, ()),
    (image.Shear, ()),
    (image.Brightness, ()),
    (image.Contrast, ()),
    (image.Saturation, ()),
    (image.Hue, ()),
    (image.ColorJitter, ("color_jitter",)),
    (image.Grayscale, ("gray",)),
    (image.GaussianBlur, ("gaussian_blur",)),
    (image.Solarize, ()),
    (image.Invert, ("color_inversion",)),
    (image.Posterize, ()),
    (image.Sharpen, ("sharpness",)),
    (image.GaussianNoise, ("gaussian_noise", "additive_noise")),
    (image.Pixelate, ()),
    (image.ElasticWarp, ("elastic_warp",)),
    (image.Erase, ("erasing", "random_erasing")),
):
    register_transform(_cls.name, _cls, *_aliases)
register_transform(Jigsaw.name, Jigsaw)

# PlaceObject's own name is "translate" (the Transforms-2D factor); in recipes "translate"
# is the whole-image shift, so object placement is registered as "place_object".
register_transform("place_object", image.PlaceObject, "object_translate")

# time series (batch, channels, time); prefixed where an image transform has the plain name
for _cls, _aliases in (
    (timeseries.Jitter, ()),
    (timeseries.Scaling, ("ts_scale",)),
    (timeseries.MagnitudeWarp, ()),
    (timeseries.TimeWarp, ()),
    (timeseries.WindowSlice, ()),
    (timeseries.WindowCrop, ()),
    (timeseries.SegmentPermutation, ("ts_permutation",)),
    (timeseries.Masking, ("ts_mask",)),
):
    register_transform(_cls.name, _cls, *_aliases, kind="series")


def transform_names(kind: str | None = None) -> list[str]:
    """Every registered name, or those acting on ``kind`` (``"image"`` or ``"series"``)."""
    return sorted(k for k in TRANSFORMS if kind is None or TRANSFORM_KINDS[k] == kind)


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build_transform(spec: Mapping[str, Any] | str, where: str = "transform") -> Transform:
    """Build one transform from ``spec``; errors name ``where`` (e.g. the recipe key)."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(f"{where}: a transform spec needs a 'name', got {spec!r}")
    spec = dict(spec)
    name = spec.pop("name")
    if name not in TRANSFORMS:
        raise ConfigError(
            f"{where}: unknown transform {name!r}{_suggest(name, TRANSFORMS)}; "
            f"known: {', '.join(transform_names())}"
        )
    factory = TRANSFORMS[name]
    accepted = set(inspect.signature(factory).parameters)
    p = None
    if "p" in spec and "p" not in accepted:
        p = spec.pop("p")
    unknown = [k for k in spec if k not in accepted]
    if unknown:
        options = sorted(accepted | {"p"})
        raise ConfigError(
            f"{where}: unknown option {unknown[0]!r} for transform {name!r}"
            f"{_suggest(unknown[0], options)}; options: {', '.join(options)}"
        )
    try:
        t = factory(**spec)
        if p is not None:
            t = RandomApply(t, p)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {name}: {err}") from None
    return t


def build_pipeline(specs: Sequence[Mapping[str, Any] | str], where: str = "pipeline") -> Compose:
    """Build a :class:`Compose` from a list of specs."""
    if isinstance(specs, (str, Mapping)):
        raise ConfigError(f"{where}: expected a list of transform specs, got {specs!r}")
    return Compose([build_transform(s, f"{where}[{i}]") for i, s in enumerate(specs)])
