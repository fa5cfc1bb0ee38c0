"""Decoded video data sets held as one uint8 array.

Layout convention for the whole video modality: a clip or video is ``(C, T, H, W)``
(channels, frames, height, width) and a batch is ``(B, C, T, H, W)``: the layout 3D
convolutions take. Stored videos are uint8, models see float in ``[0, 1]`` (then
normalised).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from invlab.errors import DataError

__all__ = ["VideoArray"]


@dataclass
class VideoArray:
    """``videos``: uint8 ``(N, C, T, H, W)`` (in memory or memory-mapped), every video the
    same length ``T``; ``labels``: int64 ``(N,)`` (``-1`` where unknown); ``classes``:
    class names, index = label; ``groups``: optional int64 ``(N,)`` (the source video a
    clip came from, e.g. for video-level evaluation or UCF101's groups)."""

    videos: np.ndarray
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    source: str = ""
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        what = self.source or "video array"
        if self.videos.ndim != 5 or self.videos.dtype != np.uint8:
            raise DataError(f"{what}: expected uint8 videos (N, C, T, H, W), got {self.videos.dtype} {self.videos.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.labels) != len(self.videos):
            raise DataError(f"{what}: {len(self.videos)} videos but {len(self.labels)} labels")
        if self.groups is not None:
            self.groups = np.asarray(self.groups, dtype=np.int64)
            if len(self.groups) != len(self.videos):
                raise DataError(f"{what}: {len(self.videos)} videos but {len(self.groups)} group ids")

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    @property
    def channels(self) -> int:
        return int(self.videos.shape[1])

    @property
    def num_frames(self) -> int:
        return int(self.videos.shape[2])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.videos.shape[3]), int(self.videos.shape[4])

    def select(self, indices: np.ndarray) -> VideoArray:
        indices = np.asarray(indices)
        groups = None if self.groups is None else self.groups[indices]
        return VideoArray(np.ascontiguousarray(self.videos[indices]), self.labels[indices], self.classes,
                          self.source, groups)
