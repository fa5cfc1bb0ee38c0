"""Image transforms on float batches ``(N, C, H, W)`` with values in ``[0, 1]``.

Geometric transforms are :class:`~invlab.transforms.base.AffineTransform` s (fused and
resampled once inside :class:`~invlab.transforms.base.Compose`). Photometric transforms
follow torchvision's definitions (blend-and-clamp for brightness, contrast, saturation;
an HSV hue rotation) but are written as a handful of batched tensor operations: kornia's
HSV-based saturation and hue cost ~45 ms and ~20 ms per 512 CIFAR images on two cores,
these cost ~1 ms and ~3 ms. Kernels that are already fast in kornia (blur, solarize) are
used from kornia.

Conventions: angles in degrees, counter-clockwise positive (torchvision's); crop boxes
are ``(x0, y0, x1, y1)`` as fractions of the input width/height; pixel geometry is
``align_corners=False``. Inputs with 2 or 4 channels carry an alpha channel last (grey +
alpha, RGBA): :class:`ColourChannels` applies a colour transform to the colour channels
only, and :class:`PlaceObject` finds the object where alpha is positive (the controlled
data sets transform an RGBA object layer before pasting it onto a background).

Split by family: :mod:`.kernels` (functional kernels), :mod:`.geometric`,
:mod:`.photometric`, :mod:`.corruptions` and :mod:`.compositing` (objects onto backgrounds).
"""

from invlab.transforms.image.compositing import (
    ColourChannels,
    PlaceObject,
)
from invlab.transforms.image.corruptions import (
    ElasticWarp,
    Erase,
    GaussianNoise,
    Pixelate,
    Posterize,
    Sharpen,
)
from invlab.transforms.image.geometric import (
    HorizontalFlip,
    RandomResizedCrop,
    Resize,
    Rotate,
    Rotate90,
    Scale,
    Shear,
    Translate,
    VerticalFlip,
)
from invlab.transforms.image.kernels import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    alpha_channel,
    posterize,
    rgb_to_gray,
    seeded_normal,
    sharpen,
)
from invlab.transforms.image.photometric import (
    Brightness,
    ColorJitter,
    Contrast,
    GaussianBlur,
    Grayscale,
    Hue,
    Invert,
    Saturation,
    Solarize,
)

__all__ = [
    "RandomResizedCrop",
    "Resize",
    "HorizontalFlip",
    "VerticalFlip",
    "Rotate90",
    "Rotate",
    "Translate",
    "Scale",
    "Shear",
    "Brightness",
    "Contrast",
    "Saturation",
    "Hue",
    "ColorJitter",
    "Grayscale",
    "GaussianBlur",
    "Solarize",
    "Invert",
    "Posterize",
    "Sharpen",
    "GaussianNoise",
    "Pixelate",
    "ElasticWarp",
    "Erase",
    "PlaceObject",
    "ColourChannels",
    "rgb_to_gray",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "posterize",
    "sharpen",
    "seeded_normal",
    "alpha_channel",
]
