"""CIFAR-10: the python-pickle layout, the image-folder layout, or an archive of either.

The pickle batches are read with a restricted unpickler that only rebuilds numpy arrays,
lists, dicts, strings and numbers: a crafted file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from invlab.data.archive import extract_once, is_archive
from invlab.data.arrays import ImageArray
from invlab.data.cache import cached_image_array, fingerprint
from invlab.data.image_folder import load_image_folder
from invlab.errors import DataError

__all__ = ["CIFAR10_CLASSES", "load_cifar10", "safe_unpickle"]

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")


def safe_unpickle(path: Path) -> object:
    """Unpickle a data file allowing only plain containers and numpy arrays."""
    try:
        return _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{path}: not a valid CIFAR batch ({err})") from None


def _find_layout(root: Path) -> tuple[str, Path]:
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
        if (candidate / "data_batch_1").exists() and (candidate / "test_batch").exists():
            return "pickle", candidate
        if (candidate / "train").is_dir() and (candidate / "test").is_dir():
            return "folder", candidate
    raise DataError(
        f"{root}: not a CIFAR-10 copy; expected the python layout (data_batch_1..5, test_batch), "
        "an image-folder layout (train/<class>/, test/<class>/), or an archive of either"
    )


def _load_pickle_split(root: Path, split: str) -> ImageArray:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = root / name
        if not path.exists():
            raise DataError(f"{path} is missing from the CIFAR-10 python layout")
        batch = safe_unpickle(path)
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise DataError(f"{path}: expected a dict with 'data' and 'labels'")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path}: expected data of shape (N, 3072), got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return ImageArray(np.concatenate(images), np.concatenate(labels), list(CIFAR10_CLASSES), str(root))


def load_cifar10(root: str | Path, split: str = "train", cache: str = "memory", progress: bool = True) -> ImageArray:
    """Load a CIFAR-10 split (``"train"``: 50,000 images, ``"test"``: 10,000)."""
    if split not in ("train", "test"):
        raise DataError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"CIFAR-10 path {root} does not exist")
    if is_archive(root):
        root = extract_once(root)
    layout, base = _find_layout(root)
    if layout == "folder":
        return load_image_folder(base / split, channels=3, cache=cache, progress=progress)
    st = (base / "test_batch").stat()
    key = fingerprint("cifar10-pickle", str(base.resolve()), split, st.st_size, st.st_mtime_ns)
    return cached_image_array(key, lambda: _load_pickle_split(base, split), cache)
