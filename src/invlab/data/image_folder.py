"""Image-folder data sets (``root/<class>/<image>``), decoded once into a uint8 cache."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from invlab.data.arrays import ImageArray
from invlab.data.cache import cached_image_array, fingerprint
from invlab.errors import DataError
from invlab.progress import progress as _progress

__all__ = ["IMAGE_EXTENSIONS", "scan_image_folder", "decode_image", "load_image_folder"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_MODE_CHANNELS = {"L": 1, "RGB": 3}


def scan_image_folder(root: str | os.PathLike) -> tuple[list[Path], list[int], list[str]]:
    """Files and labels of ``root/<class>/<file>``; classes sorted by name.

    Files whose extension is not an image extension and hidden files are ignored. An
    empty class folder, or a root without class folders, is an error.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected class sub-folders root/<class>/<image>")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(
            f"{root} has no class sub-folders; expected root/<class>/<image> "
            "(put all images in one sub-folder if they have no labels)"
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (root / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
        if not found:
            raise DataError(
                f"class folder {root / name} contains no images ({', '.join(IMAGE_EXTENSIONS)}); "
                "remove the folder or add images"
            )
        files += found
        labels += [label] * len(found)
    return files, labels, classes


def decode_image(
    path: Path, channels: int | None, size: tuple[int, int] | None, convert_mode: bool
) -> np.ndarray:
    """Decode one file to uint8 ``(C, H, W)``; every problem names ``path``."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if channels is not None and _MODE_CHANNELS.get(mode) != channels:
                if not convert_mode:
                    want = {1: "grayscale (L)", 3: "RGB"}[channels]
                    raise DataError(
                        f"{path}: image mode {mode!r} but the data set is {want}; convert the file, "
                        "or set data.convert_mode=true to convert every image on load"
                    )
                img = _convert(img, channels)
            elif channels is None and mode not in _MODE_CHANNELS:
                raise DataError(
                    f"{path}: image mode {mode!r} is neither grayscale (L) nor RGB; "
                    "set data.channels and data.convert_mode=true to convert"
                )
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot decode image ({err}); remove or replace the file") from None
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = arr.transpose(2, 0, 1)
    return arr


def _convert(img: Image.Image, channels: int) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: rescale to 8 bits instead of clipping
        a = np.asarray(img, dtype=np.float64)
        hi = a.max() if a.max() > 0 else 1.0
        img = Image.fromarray((a / hi * 255).round().astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "P", "PA") and channels == 3:
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert({1: "L", 3: "RGB"}[channels])


def load_image_folder(
    root: str | os.PathLike,
    channels: int | None = 3,
    size: tuple[int, int] | int | None = None,
    convert_mode: bool = False,
    cache: str = "memory",
    progress: bool = True,
    workers: int | None = None,
) -> ImageArray:
    """Decode ``root/<class>/<image>`` into an :class:`ImageArray`, cached on disk.

    Args:
        channels: 3 (RGB), 1 (grey) or ``None`` (take it from the first image). An
            image of another mode is an error naming the file, unless ``convert_mode``.
        size: ``(H, W)`` to resize every image to; ``None`` requires all images to have
            the same size (a different one is an error naming the file).
        cache: ``"memory"``, ``"mmap"`` or ``"none"`` (see :mod:`invlab.data.cache`).
    """
    files, labels, classes = scan_image_folder(root)
    if isinstance(size, int):
        size = (size, size)
    root = Path(root).resolve()
    stats = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = fingerprint("image_folder", str(root), stats, channels, size, convert_mode)

    def build() -> ImageArray:
        first = decode_image(files[0], channels, size, convert_mode)
        n_channels, expected = first.shape[0], first.shape[1:]
        out = np.empty((len(files), n_channels, *expected), dtype=np.uint8)

        def decode(i: int) -> None:
            arr = decode_image(files[i], n_channels, size, convert_mode)
            if arr.shape[1:] != tuple(expected):
                raise DataError(
                    f"{files[i]}: size {arr.shape[2]}x{arr.shape[1]} differs from "
                    f"{expected[1]}x{expected[0]} (first image {files[0]}); set data.image_size to resize all"
                )
            out[i] = arr

        with ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2))) as pool:
            it = pool.map(decode, range(len(files)))
            for _ in _progress(it, f"decoding {root.name}", len(files), progress, "img"):
                pass
        return ImageArray(out, np.asarray(labels, dtype=np.int64), classes, str(root))

    return cached_image_array(key, build, cache)
