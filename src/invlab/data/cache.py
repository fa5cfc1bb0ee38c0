"""On-disk cache of decoded data sets, keyed by a fingerprint of the source files.

Location: ``$INVLAB_CACHE``, else ``$XDG_CACHE_HOME/invlab``, else ``~/.cache/invlab``.
Entries are written to a temporary folder and renamed into place, so an interrupted
decode never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from invlab.data.arrays import ImageArray

__all__ = ["cache_dir", "fingerprint", "cached_image_array", "store_entry"]

_FORMAT = 1


def cache_dir() -> Path:
    root = os.environ.get("INVLAB_CACHE")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "invlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def store_entry(entry: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` (``NAME.npy`` each) and ``meta.json`` into the cache folder ``entry``
    atomically: built in a temporary folder and renamed into place; if another process
    stored the entry first, its copy is kept and ours discarded."""
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".tmp-", dir=entry.parent))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def cached_image_array(
    key: str, build: Callable[[], ImageArray], mode: str = "memory"
) -> ImageArray:
    """Return the cached array for ``key``, building and storing it on a miss.

    ``mode``: ``"memory"`` (load into RAM), ``"mmap"`` (memory-map the image file, for
    sets larger than RAM) or ``"none"`` (always build, store nothing).
    """
    if mode not in ("memory", "mmap", "none"):
        raise ValueError(f"cache mode must be 'memory', 'mmap' or 'none', got {mode!r}")
    if mode == "none":
        return build()
    entry = cache_dir() / f"images-v{_FORMAT}-{key}"
    if not (entry / "meta.json").exists():
        arr = build()
        store_entry(entry, {"images": arr.images, "labels": arr.labels},
                    {"classes": arr.classes, "source": arr.source})
        if mode == "memory":
            return arr
    meta = json.loads((entry / "meta.json").read_text())
    images = np.load(entry / "images.npy", mmap_mode="r" if mode == "mmap" else None)
    labels = np.load(entry / "labels.npy")
    return ImageArray(images, labels, meta["classes"], meta["source"])
