"""The 18 transformations of Transforms-2D (Speicher, Nanda & Gummadi, "Understanding the
Role of Invariance in Transfer Learning", TMLR 2024), with the paper's ranges.

In a controlled image the transformations act on the **object layer** (RGBA) before it is
pasted onto a background: geometric transforms and most corruptions move or change colour
and alpha together; photometric transforms, noise and contrast change the colour channels
only (:class:`~invlab.transforms.image.ColourChannels`), so the background is untouched.

| family | name: what it draws |
|---|---|
| geometric | ``translate``: object box placed uniformly anywhere it fits; ``rotate``: U(0, 360) deg; ``scale``: U(0.4, 1); ``hflip``, ``vflip``: p=0.5; ``shear``: x-shear U(-50, 50) deg |
| photometric | ``hue``: shift U(-0.5, 0.5) turns; ``brightness``: factor U(0, 2); ``grayscale``: p=0.5; ``posterize``: 1 bit, p=0.5; ``invert``: p=0.5; ``sharpen``: factor 7, p=0.5 |
| corruption | ``blur``: 7x7 Gaussian, sigma U(0.1, 1.5); ``noise``: additive Gaussian, std U(0.05, 0.15), p=0.5; ``pixelate``: x0.3 then nearest up, p=0.5; ``elastic``: p=0.5; ``erasing``: 14x14 at 32 px (a hole in the object), p=0.5; ``contrast``: factor U(0, 2) |

Where the paper names a torchvision transform without a probability (posterize, invert,
sharpen) invlab uses torchvision's default p=0.5. The noise strength is not given in the
paper: invlab draws std U(0.05, 0.15). Elastic: see
:class:`~invlab.transforms.image.ElasticWarp` (matched to ``alpha=150, sigma=5`` at 32 px).

On whole images (the controlled wrapper for real data sets, ``target="image"``) there is
no object box: ``translate`` becomes a shift of up to 25% of the side in each direction
(zeros fill in); everything else is the same.

The transformations of a set are applied in one fixed order whatever order they are
listed in (:data:`APPLY_ORDER`: geometric, photometric, corruptions, other registry
transforms, and ``translate`` last so that it places the finished object), so a set of
names is a set. On an object layer the geometric steps resample once: everything outside
the layer is transparent, so fusing them loses nothing (it avoids clipping corners that a
shear pushes out and a rotation brings back).

>>> build_transform_2d("rotate")                       # the paper's range
>>> build_transform_2d({"name": "rotate", "degrees": [0, 90]})   # options override it
>>> pipeline_2d(["rotate", "hue", "blur"])             # a Compose keyed rotate.*, hue.*, blur.*
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from invlab.errors import ConfigError
from invlab.transforms import image
from invlab.transforms.base import Compose, RandomApply, Transform
from invlab.transforms.registry import TRANSFORMS, build_transform

__all__ = [
    "Transform2DEntry", "TRANSFORMS_2D", "FAMILIES", "APPLY_ORDER", "transform_2d_names", "build_transform_2d",
    "pipeline_2d", "transform_spec_name",
]


@dataclass(frozen=True)
class Transform2DEntry:
    """One transformation of the catalogue: how to build it and which channels it acts on."""

    family: str  # geometric | photometric | corruption
    factory: Callable[..., Transform]
    options: dict[str, Any] = field(default_factory=dict)
    p: float | None = None  # wrapped in RandomApply(p) when set
    colour_only: bool = False  # acts on the colour channels, never on alpha
    image_factory: Callable[..., Transform] | None = None  # replacement on whole images
    image_options: dict[str, Any] = field(default_factory=dict)


TRANSFORMS_2D: dict[str, Transform2DEntry] = {
    # geometric
    "translate": Transform2DEntry("geometric", image.PlaceObject, image_factory=image.Translate,
                                  image_options={"max_fraction": 0.25}),
    "rotate": Transform2DEntry("geometric", image.Rotate, {"degrees": (0.0, 360.0)}),
    "scale": Transform2DEntry("geometric", image.Scale, {"factor": (0.4, 1.0)}),
    "hflip": Transform2DEntry("geometric", image.HorizontalFlip, {"p": 0.5}),
    "vflip": Transform2DEntry("geometric", image.VerticalFlip, {"p": 0.5}),
    "shear": Transform2DEntry("geometric", image.Shear, {"degrees": 50.0}),
    # photometric
    "hue": Transform2DEntry("photometric", image.Hue, {"factor": (-0.5, 0.5)}, colour_only=True),
    "brightness": Transform2DEntry("photometric", image.Brightness, {"factor": (0.0, 2.0)}, colour_only=True),
    "grayscale": Transform2DEntry("photometric", image.Grayscale, {"p": 0.5}, colour_only=True),
    "posterize": Transform2DEntry("photometric", image.Posterize, {"bits": 1}, p=0.5, colour_only=True),
    "invert": Transform2DEntry("photometric", image.Invert, {"p": 0.5}, colour_only=True),
    "sharpen": Transform2DEntry("photometric", image.Sharpen, {"factor": 7.0}, p=0.5, colour_only=True),
    # corruption
    "blur": Transform2DEntry("corruption", image.GaussianBlur, {"sigma": (0.1, 1.5), "kernel_size": 7}),
    "noise": Transform2DEntry("corruption", image.GaussianNoise, {"std": (0.05, 0.15)}, p=0.5, colour_only=True),
    "pixelate": Transform2DEntry("corruption", image.Pixelate, {"factor": 0.3}, p=0.5),
    "elastic": Transform2DEntry("corruption", image.ElasticWarp, {}, p=0.5),
    "erasing": Transform2DEntry("corruption", image.Erase, {"size": 14 / 32}, p=0.5),
    "contrast": Transform2DEntry("corruption", image.Contrast, {"factor": (0.0, 2.0)}, colour_only=True),
}

FAMILIES: dict[str, list[str]] = {
    fam: [n for n, e in TRANSFORMS_2D.items() if e.family == fam]
    for fam in ("geometric", "photometric", "corruption")
}


APPLY_ORDER: list[str] = [
    "scale", "rotate", "shear", "hflip", "vflip",
    "hue", "brightness", "grayscale", "posterize", "invert", "sharpen", "contrast",
    "blur", "noise", "pixelate", "elastic", "erasing",
    "translate",
]


def transform_2d_names() -> list[str]:
    """The catalogue's names in the paper's order (geometric, photometric, corruption)."""
    return list(TRANSFORMS_2D)


def transform_spec_name(spec: Mapping[str, Any] | str) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        return spec["name"]
    raise ConfigError(f"a transform spec is a name or a mapping with a 'name', got {spec!r}")


def _unknown(name: str, where: str) -> ConfigError:
    options = transform_2d_names() + sorted(set(TRANSFORMS) - set(TRANSFORMS_2D))
    close = difflib.get_close_matches(name, options, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"{where}: unknown transform {name!r}{hint}; Transforms-2D: {', '.join(transform_2d_names())}; "
        f"other invlab transforms: {', '.join(sorted(set(TRANSFORMS) - set(TRANSFORMS_2D)))}"
    )


def build_transform_2d(
    spec: Mapping[str, Any] | str, target: str = "object", where: str = "transform"
) -> Transform:
    """Build one transformation by catalogue name (paper ranges; options in a mapping
    override them, ``p`` sets the RandomApply probability) or, for names outside the
    catalogue, from the general registry (:func:`~invlab.transforms.build_transform`).

    ``target="object"`` (an RGBA layer): colour transforms are wrapped in
    :class:`~invlab.transforms.image.ColourChannels` (alpha passes through), as are
    non-geometric registry transforms. ``target="image"``: whole images, no alpha.
    The returned transform's ``name`` is the spec's name, so a :func:`pipeline_2d` keys its
    parameters ``"<name>.<key>"``.
    """
    if target not in ("object", "image"):
        raise ValueError(f"target must be 'object' or 'image', got {target!r}")
    name = transform_spec_name(spec)
    options = {k: v for k, v in spec.items() if k != "name"} if isinstance(spec, Mapping) else {}
    if name not in TRANSFORMS_2D:
        if name not in TRANSFORMS:
            raise _unknown(name, where)
        t = build_transform(spec, where)
        colour_only = not t.is_affine
    else:
        entry = TRANSFORMS_2D[name]
        factory, defaults = entry.factory, entry.options
        if target == "image" and entry.image_factory is not None:
            factory, defaults = entry.image_factory, entry.image_options
        accepted = set(inspect.signature(factory).parameters)
        p = options.pop("p", entry.p) if "p" not in accepted else None
        unknown = [k for k in options if k not in accepted]
        if unknown:
            choices = sorted(accepted | {"p"})
            close = difflib.get_close_matches(unknown[0], choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown option {unknown[0]!r} for {name!r}{hint}; options: {', '.join(choices)}")
        try:
            t = factory(**{**defaults, **options})
            if p is not None:
                t = RandomApply(t, p)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {name}: {err}") from None
        colour_only = entry.colour_only
    if target == "object" and colour_only:
        t = image.ColourChannels(t)
    if target == "object" and t.is_affine:
        t.preserves_canvas = True  # transparent surroundings: fusing with later steps is exact
    t.name = name
    return t


def pipeline_2d(specs: Sequence[Mapping[str, Any] | str], target: str = "object", where: str = "transforms") -> Compose:
    """A :class:`Compose` of the transformations ``specs`` keyed by name, in
    :data:`APPLY_ORDER` (names outside the catalogue keep their listed order, before
    ``translate``). Each name may appear once (its parameters are a factor of the data set)."""
    if isinstance(specs, (str, Mapping)):
        raise ConfigError(f"{where}: expected a list of transform names, got {specs!r}")
    names = [transform_spec_name(s) for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: transform {dupes[0]!r} is listed twice; each transformation is one factor")
    built = [(n, build_transform_2d(s, target, f"{where}[{i}]")) for i, (n, s) in enumerate(zip(names, specs))]
    extras_rank = APPLY_ORDER.index("translate") - 0.5

    def rank(item: tuple[int, tuple[str, Transform]]) -> tuple[float, int]:
        i, (n, _) = item
        return (APPLY_ORDER.index(n) if n in APPLY_ORDER else extras_rank, i)

    return Compose([t for _, (_, t) in sorted(enumerate(built), key=rank)])
