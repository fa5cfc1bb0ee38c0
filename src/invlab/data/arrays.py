"""Decoded image data sets held as one uint8 array."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from invlab.errors import DataError

__all__ = ["ImageArray"]


@dataclass
class ImageArray:
    """``images``: uint8 ``(N, C, H, W)`` (in memory or memory-mapped); ``labels``: int64
    ``(N,)`` (``-1`` where unknown); ``classes``: class names, index = label."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise DataError(
                f"{self.source or 'image array'}: expected uint8 images (N, C, H, W), "
                f"got {self.images.dtype} {self.images.shape}"
            )
        if len(self.labels) != len(self.images):
            raise DataError(
                f"{self.source or 'image array'}: {len(self.images)} images but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def select(self, indices: np.ndarray) -> ImageArray:
        indices = np.asarray(indices)
        return ImageArray(
            np.ascontiguousarray(self.images[indices]), self.labels[indices], self.classes, self.source
        )

    def subset(self, n: int | None, seed: int = 0) -> ImageArray:
        """A random subset of ``n`` samples, the same for the same ``seed`` (``None``: all)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise DataError(f"{self.source}: subset size must be positive, got {n}")
        order = np.random.default_rng(seed).permutation(len(self))[:n]
        return self.select(np.sort(order))
