"""Image data sets by name: ``cifar10``, ``image_folder``, ``digits``, ``controlled``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from invlab.data.archive import extract_once, is_archive
from invlab.data.arrays import ImageArray
from invlab.data.cifar import load_cifar10
from invlab.data.digits import load_digits_array
from invlab.data.image_folder import load_image_folder
from invlab.errors import DataError

__all__ = ["IMAGE_DATASETS", "load_image_dataset", "channel_stats"]


def _cifar10(root, split, **kw) -> ImageArray:
    if root is None:
        raise DataError(
            "data.root is not set: point it at a CIFAR-10 copy (the python layout, an image "
            "folder with train/ and test/, or the .tar.gz of either)"
        )
    return load_cifar10(root, split, cache=kw["cache"], progress=kw["progress"])


def _image_folder(root, split, **kw) -> ImageArray:
    if root is None:
        raise DataError("data.root is not set: point it at a folder with train/<class>/ and test/<class>/")
    root = Path(root).expanduser()
    if is_archive(root):
        root = extract_once(root)
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    split_dir = root / split
    if not split_dir.is_dir():
        # one level down, as archives usually wrap their content in a folder
        inner = [d for d in root.iterdir() if d.is_dir() and (d / split).is_dir()]
        if len(inner) == 1:
            split_dir = inner[0] / split
        else:
            raise DataError(f"{root} has no {split}/ sub-folder; expected {root}/{split}/<class>/<image>")
    size = kw["image_size"]
    return load_image_folder(
        split_dir, channels=kw["channels"], size=size, convert_mode=kw["convert_mode"],
        cache=kw["cache"], progress=kw["progress"],
    )


def _digits(root, split, **kw) -> ImageArray:
    return load_digits_array(split)


def _controlled(root, split, **kw) -> ImageArray:
    """The default controlled set (recipes describe theirs in ``data.controlled``)."""
    from invlab.data.controlled import ControlledSpec, controlled_split

    return controlled_split(ControlledSpec(), split, kw["channels"], kw["cache"], kw["progress"])


IMAGE_DATASETS: dict[str, Callable[..., ImageArray]] = {
    "cifar10": _cifar10,
    "image_folder": _image_folder,
    "digits": _digits,
    "controlled": _controlled,
}


def load_image_dataset(
    name: str,
    root: str | None,
    split: str,
    channels: int | None = 3,
    image_size: int | None = None,
    convert_mode: bool = False,
    cache: str = "memory",
    progress: bool = True,
) -> ImageArray:
    if name not in IMAGE_DATASETS:
        raise DataError(f"unknown image data set {name!r}; known: {', '.join(sorted(IMAGE_DATASETS))}")
    return IMAGE_DATASETS[name](
        root, split, channels=channels, image_size=(image_size, image_size) if image_size else None,
        convert_mode=convert_mode, cache=cache, progress=progress,
    )


def channel_stats(data: ImageArray, max_samples: int = 10000) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in ``[0, 1]`` units (from at most ``max_samples`` images)."""
    images = data.images[: max_samples]
    x = np.asarray(images, dtype=np.float64) / 255.0
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    return [float(m) for m in mean], [float(max(s, 1e-3)) for s in std]
