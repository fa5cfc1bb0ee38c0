"""scikit-learn's handwritten digits (1,797 real 8x8 grey images, 10 classes): a tiny real
data set that installs with the dependencies."""

from __future__ import annotations

import numpy as np

from invlab.data.arrays import ImageArray

__all__ = ["load_digits_array"]


def load_digits_array(split: str = "train", test_fraction: float = 0.25, seed: int = 0) -> ImageArray:
    """A stratified ``train``/``test`` split of the digits as uint8 ``(N, 1, 8, 8)``."""
    from sklearn.datasets import load_digits

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    labels = d.target.astype(np.int64)
    classes = [str(c) for c in range(10)]
    if split == "all":
        return ImageArray(images, labels, classes, "sklearn.digits")
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test[rng.permutation(idx)[: int(round(len(idx) * test_fraction))]] = True
    mask = test if split == "test" else ~test
    return ImageArray(images[mask], labels[mask], classes, f"sklearn.digits[{split}]")
