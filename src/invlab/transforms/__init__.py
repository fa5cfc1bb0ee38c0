"""Parameterised transformations: ``sample(n, generator) -> params``, ``apply(x, params)``.

Plain tensor code, no Lightning or files: usable in any training loop.
"""

from invlab.transforms.base import (
    AffineTransform,
    Compose,
    Identity,
    Params,
    ParamSpec,
    RandomApply,
    Transform,
    cat_params,
    select_params,
    warp_affine,
)
from invlab.transforms.image import (
    Brightness,
    ColorJitter,
    ColourChannels,
    Contrast,
    ElasticWarp,
    Erase,
    GaussianBlur,
    GaussianNoise,
    Grayscale,
    HorizontalFlip,
    Hue,
    Invert,
    Pixelate,
    PlaceObject,
    Posterize,
    RandomResizedCrop,
    Resize,
    Rotate,
    Rotate90,
    Saturation,
    Scale,
    Sharpen,
    Shear,
    Solarize,
    Translate,
    VerticalFlip,
)
from invlab.transforms.jigsaw import Jigsaw, permutation_set
from invlab.transforms.registry import (
    TRANSFORMS,
    build_pipeline,
    build_transform,
    register_transform,
    transform_names,
)
from invlab.transforms.timeseries import (
    Jitter,
    MagnitudeWarp,
    Masking,
    Scaling,
    SegmentPermutation,
    TimeWarp,
    WindowCrop,
    WindowSlice,
)
from invlab.transforms.views import MultiViewSampler, View, Views

__all__ = [
    "AffineTransform", "Compose", "Identity", "Params", "ParamSpec", "RandomApply", "Transform",
    "cat_params", "select_params", "warp_affine",
    "Brightness", "ColorJitter", "Contrast", "GaussianBlur", "Grayscale", "HorizontalFlip", "Hue",
    "Invert", "RandomResizedCrop", "Resize", "Rotate", "Rotate90", "Saturation", "Scale", "Shear",
    "Solarize", "Translate", "VerticalFlip", "ColourChannels", "ElasticWarp", "Erase", "GaussianNoise",
    "Pixelate", "PlaceObject", "Posterize", "Sharpen",
    "TRANSFORMS", "build_pipeline", "build_transform", "register_transform", "transform_names",
    "MultiViewSampler", "View", "Views",
    "Jitter", "MagnitudeWarp", "Masking", "Scaling", "SegmentPermutation", "TimeWarp", "WindowCrop", "WindowSlice",
]
__all__ += ["Jigsaw", "permutation_set"]
