"""Foreground objects and background photographs for the controlled data sets, from
assets that install with invlab's dependencies (nothing is downloaded).

Foregrounds are **one prototype per class**: an RGBA image whose alpha is the object's
mask. Built-in sets:

- ``glyphs``: 52 characters rendered with Pillow's bundled font (the digits, A-Z, and
  the 16 lower-case letters whose shape differs from their capital), each filled with
  its own two-colour gradient and a dark outline;
- ``digits``: scikit-learn's handwritten digits, the most typical image of each class
  (closest to the class mean), coloured the same way;
- ``glyphs+digits``: both (62 classes);
- a folder path: one image file per class (named by the file), alpha from the file
  (RGBA/LA/P with transparency) or fully opaque.

Backgrounds are random square crops of real photographs: by default the colour and grey
photographs shipped with scikit-image (astronaut, cat, coffee, rocket, Hubble deep field,
retina, ... 14 in all), or every image in a folder the user gives.
"""

from __future__ import annotations

import colorsys
import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from invlab.data.image_folder import IMAGE_EXTENSIONS, decode_image
from invlab.errors import DataError

__all__ = [
    "GLYPH_CHARACTERS", "ASSET_VERSION", "Foregrounds", "load_foregrounds", "background_photos",
    "background_bank", "assets_fingerprint",
]

ASSET_VERSION = 2
_RENDER = 96  # side of the square cell each prototype is rendered in

# digits, capitals, and the lower-case letters that are not just smaller capitals
GLYPH_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abdefghijlmnqrty"

_COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
_GREY_PHOTOS = ("camera", "brick", "grass", "gravel", "moon", "coins", "clock")


class Foregrounds:
    """``cells``: float ``(K, 4, R, R)`` RGBA prototypes in ``[0, 1]`` (colour defined
    everywhere, so resampling never mixes in black from transparent pixels); ``names``:
    one class name per prototype; ``source``: what they came from."""

    def __init__(self, cells: torch.Tensor, names: list[str], source: str):
        if cells.dim() != 4 or cells.shape[1] != 4:
            raise DataError(f"{source}: foreground prototypes must be (K, 4, R, R), got {tuple(cells.shape)}")
        if len(names) != len(cells):
            raise DataError(f"{source}: {len(cells)} prototypes but {len(names)} names")
        self.cells, self.names, self.source = cells, names, source

    def __len__(self) -> int:
        return len(self.names)

    def at_size(self, size: int, object_scale: float) -> torch.Tensor:
        """Prototypes on a ``size x size`` canvas: the cell resized to ``object_scale`` of
        the canvas, centred; ``(K, 4, size, size)``."""
        obj = max(1, int(round(size * object_scale)))
        small = F.interpolate(self.cells, size=(obj, obj), mode="bilinear", antialias=True, align_corners=False)
        before = (size - obj) // 2
        pad = (before, size - obj - before, before, size - obj - before)
        colour = F.pad(small[:, :3], pad, mode="replicate") if obj > 1 else small[:, :3].expand(-1, -1, size, size)
        alpha = F.pad(small[:, 3:], pad)
        return torch.cat([colour, alpha], 1).clamp(0.0, 1.0).contiguous()


def _palette(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two fill colours and an outline colour for class ``index`` (fixed, well spread)."""
    hue = (index * 0.6180339887) % 1.0
    sat = 0.55 + 0.4 * ((index * 0.3819660113) % 1.0)
    val = 0.75 + 0.25 * ((index * 0.7548776662) % 1.0)
    top = np.array(colorsys.hsv_to_rgb(hue, sat, val))
    bottom = np.array(colorsys.hsv_to_rgb((hue + 0.12) % 1.0, min(1.0, sat + 0.1), val * 0.8))
    outline = np.array(colorsys.hsv_to_rgb(hue, 0.6, 0.18))
    return top, bottom, outline


def _colourise(masks: np.ndarray, offset: int = 0) -> torch.Tensor:
    """Masks ``(K, R, R)`` in [0, 1] -> RGBA cells: gradient fill inside, a dark outline
    ring (the mask dilated by ~3% of the cell) around it."""
    k, r, _ = masks.shape
    m = torch.from_numpy(masks).float().unsqueeze(1)
    width = max(1, r // 32)
    ring = F.max_pool2d(m, 2 * width + 1, stride=1, padding=width)
    cells = torch.empty(k, 4, r, r)
    ramp = torch.linspace(0, 1, r).view(1, r, 1)
    for i in range(k):
        top, bottom, outline = (torch.from_numpy(c).float().view(3, 1, 1) for c in _palette(i + offset))
        fill = top * (1 - ramp) + bottom * ramp
        cells[i, :3] = fill * m[i] + outline * (1 - m[i])
        cells[i, 3] = ring[i, 0]
    return cells


def _glyph_masks(chars: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=_RENDER)
    except TypeError:  # Pillow without FreeType: only the small bitmap font
        font = ImageFont.load_default()
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), c, font=font) for c in chars]
    stroke = max(1, max(b[3] - b[1] for b in boxes) // 14)  # bold: the shape must survive 32 px
    boxes = [ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), c, font=font, stroke_width=stroke) for c in chars]
    tallest = max(max(b[2] - b[0], b[3] - b[1]) for b in boxes)
    big = int(np.ceil(tallest / 0.9))  # the largest glyph spans 90% of the cell
    masks = np.zeros((len(chars), _RENDER, _RENDER), dtype=np.float32)
    for i, (c, b) in enumerate(zip(chars, boxes)):
        canvas = Image.new("L", (big, big), 0)
        # centre the glyph's own box; all glyphs share one font size (a lower-case letter
        # stays smaller than a capital)
        x = (big - (b[2] - b[0])) / 2 - b[0]
        y = (big - (b[3] - b[1])) / 2 - b[1]
        ImageDraw.Draw(canvas).text((x, y), c, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
        if big != _RENDER:
            canvas = canvas.resize((_RENDER, _RENDER), Image.Resampling.LANCZOS)
        masks[i] = np.asarray(canvas, dtype=np.float32) / 255.0
    # the outline ring must fit inside the cell
    margin = max(1, _RENDER // 32) + 1
    masks[:, :margin] = masks[:, -margin:] = 0
    masks[:, :, :margin] = masks[:, :, -margin:] = 0
    return masks


def _digit_masks() -> tuple[np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    d = load_digits()
    masks = np.zeros((10, _RENDER, _RENDER), dtype=np.float32)
    for c in range(10):
        imgs = d.images[d.target == c] / 16.0
        proto = imgs[np.argmin(((imgs - imgs.mean(0)) ** 2).sum((1, 2)))]
        inner = int(_RENDER * 0.84)
        t = torch.from_numpy(proto).float().view(1, 1, 8, 8)
        up = F.interpolate(t, size=(inner, inner), mode="bicubic", align_corners=False)[0, 0]
        up = ((up - 0.25) / 0.5).clamp(0, 1)  # sharpen the soft 8x8 strokes into a mask
        o = (_RENDER - inner) // 2
        masks[c, o : o + inner, o : o + inner] = up.numpy()
    return masks, [f"digit{c}" for c in range(10)]


@functools.lru_cache(maxsize=8)
def _builtin_foregrounds(name: str) -> Foregrounds:
    if name == "glyphs":
        return Foregrounds(_colourise(_glyph_masks(GLYPH_CHARACTERS)), list(GLYPH_CHARACTERS), "glyphs")
    if name == "digits":
        masks, names = _digit_masks()
        return Foregrounds(_colourise(masks, offset=len(GLYPH_CHARACTERS)), names, "digits")
    if name == "glyphs+digits":
        a, b = _builtin_foregrounds("glyphs"), _builtin_foregrounds("digits")
        return Foregrounds(torch.cat([a.cells, b.cells]), a.names + b.names, "glyphs+digits")
    raise KeyError(name)


BUILTIN_FOREGROUNDS = ("glyphs", "digits", "glyphs+digits")


def _image_files(folder: Path, what: str) -> list[Path]:
    if not folder.exists():
        raise DataError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{what} path {folder} is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith("."))
    if not files:
        raise DataError(f"{what} folder {folder} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _folder_foregrounds(folder: Path) -> Foregrounds:
    from PIL import Image, UnidentifiedImageError

    files = _image_files(folder, "foreground")
    cells = torch.zeros(len(files), 4, _RENDER, _RENDER)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as img:
                img.load()
                rgba = img.convert("RGBA")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{path}: cannot decode image ({err}); remove or replace the file") from None
        w, h = rgba.size
        s = _RENDER / max(w, h)
        rgba = rgba.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
        arr = torch.from_numpy(np.asarray(rgba, dtype=np.float32) / 255.0).permute(2, 0, 1)
        y, x = (_RENDER - arr.shape[1]) // 2, (_RENDER - arr.shape[2]) // 2
        cells[i, :, y : y + arr.shape[1], x : x + arr.shape[2]] = arr
        # colour outside the object: its mean colour, so resampling does not darken edges
        a = cells[i, 3:]
        mean = (cells[i, :3] * a).sum((1, 2)) / a.sum().clamp_min(1e-6)
        cells[i, :3] = cells[i, :3] * a + mean.view(3, 1, 1) * (1 - a)
    return Foregrounds(cells, [p.stem for p in files], str(folder))


def load_foregrounds(source: str) -> Foregrounds:
    """A built-in set (``glyphs``, ``digits``, ``glyphs+digits``) or a folder of images
    (one per class). Unreadable files raise :class:`~invlab.errors.DataError` naming them."""
    if source in BUILTIN_FOREGROUNDS:
        return _builtin_foregrounds(source)
    path = Path(source).expanduser()
    if not path.exists() and os.sep not in source and "/" not in source:
        raise DataError(
            f"unknown foreground set {source!r}; use {', '.join(BUILTIN_FOREGROUNDS)} or a folder of images"
        )
    return _folder_foregrounds(path)


# -- backgrounds ------------------------------------------------------------------------
def _skimage_photos() -> list[np.ndarray]:
    import skimage.data as skd

    photos = []
    for name in _COLOUR_PHOTOS:
        photos.append(np.asarray(getattr(skd, name)())[..., :3])
    photos.append(np.asarray(skd.stereo_motorcycle()[0])[..., :3])
    for name in _GREY_PHOTOS:
        g = np.asarray(getattr(skd, name)())
        photos.append(np.repeat(g[..., None], 3, axis=2))
    return [p.astype(np.uint8) for p in photos]


def background_photos(source: str = "photos") -> tuple[list[np.ndarray], str]:
    """The photographs ``(H, W, 3)`` uint8 backgrounds are cropped from, and a label.

    ``"photos"``: scikit-image's shipped photographs; otherwise a folder of images
    (recursively; an unreadable file raises a DataError naming it)."""
    if source == "photos":
        return _skimage_photos(), "scikit-image photographs"
    folder = Path(source).expanduser()
    photos = [decode_image(p, 3, None, convert_mode=True).transpose(1, 2, 0) for p in _image_files(folder, "background")]
    return photos, str(folder)


@functools.lru_cache(maxsize=8)
def background_bank(source: str, size: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` random square crops (side 10-40% of the photo's shorter side, anywhere in
    it) of the ``source`` photographs, each resized to ``size``: uint8 ``(count, 3, size, size)``.
    The bank is a pure function of its arguments (the paper's fixed background set)."""
    if count < 1:
        raise DataError(f"the number of backgrounds must be >= 1, got {count}")
    photos, _ = background_photos(source)
    rng = np.random.default_rng([seed, 0xB6])
    which = rng.integers(0, len(photos), count)
    frac = rng.uniform(0.1, 0.4, count)
    pos = rng.uniform(0.0, 1.0, (count, 2))
    from PIL import Image

    pil = [Image.fromarray(p) for p in photos]
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        h, w = photos[which[i]].shape[:2]
        side = max(2, int(round(frac[i] * min(h, w))))
        y, x = int(pos[i, 0] * (h - side)), int(pos[i, 1] * (w - side))
        # PIL's bilinear filter widens its support when shrinking: an antialiased resize
        out[i] = np.asarray(pil[which[i]].resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side)))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def assets_fingerprint(foregrounds: str, backgrounds: str) -> list:
    """What the assets depend on, for cache keys: the built-in sets' library versions, or
    the user folders' file names, sizes and modification times."""
    import PIL
    import skimage
    import sklearn

    def folder_stats(source: str):
        path = Path(source).expanduser()
        if not path.is_dir():
            return source
        return [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*")) if p.is_file()]

    parts: list = [ASSET_VERSION]
    parts.append([foregrounds, PIL.__version__, sklearn.__version__] if foregrounds in BUILTIN_FOREGROUNDS
                 else folder_stats(foregrounds))
    parts.append([backgrounds, skimage.__version__] if backgrounds == "photos" else folder_stats(backgrounds))
    return parts
