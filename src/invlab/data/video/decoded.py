"""Decoded videos at training resolution, cached, so epochs are not decode-bound.

:func:`decode_videos` decodes every file of a :class:`~invlab.data.video.layouts.VideoList`
once with PyAV at a chosen resolution (and at most ``max_frames`` frames, keeping every
``frame_stride``-th) into one ragged uint8 array: :class:`DecodedVideos`, frames
``(total, C, H, W)`` and ``offsets (N + 1,)``. The result is stored in the data cache
(:func:`invlab.data.cache.cache_dir`) keyed by the files' names, sizes and modification
times and the decoding options; ``cache="mmap"`` memory-maps it (sets larger than RAM),
``"memory"`` loads it, ``"none"`` stores nothing.

Bad files: ``on_error="raise"`` (default) stops with the :class:`~invlab.errors.DataError`
naming the file; ``on_error="skip"`` logs one warning per bad file (logger
``invlab.data.video``), leaves it out and records it in :attr:`DecodedVideos.skipped`.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from invlab.data.cache import cache_dir, fingerprint, store_entry
from invlab.data.video.arrays import VideoArray
from invlab.data.video.io import read_video
from invlab.data.video.layouts import VideoList
from invlab.errors import DataError
from invlab.progress import progress as _progress

__all__ = ["DecodedVideos", "decode_videos", "ON_ERROR"]

log = logging.getLogger("invlab.data.video")
ON_ERROR = ("raise", "skip")
_FORMAT = 1


@dataclass
class DecodedVideos:
    """Videos of different lengths in one uint8 array.

    ``frames``: ``(total, C, H, W)``; video ``i`` is ``frames[offsets[i]:offsets[i+1]]``.
    ``labels``: int64 ``(N,)``; ``classes``: names; ``names``: one name per video (the
    file, relative to the data root where known); ``skipped``: files left out
    (``on_error="skip"``) with the reason.
    """

    frames: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    source: str = ""
    names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        what = self.source or "decoded videos"
        if self.frames.ndim != 4 or self.frames.dtype != np.uint8:
            raise DataError(f"{what}: expected uint8 frames (total, C, H, W), got {self.frames.dtype} {self.frames.shape}")
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.offsets) != len(self.labels) + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.frames):
            raise DataError(f"{what}: offsets do not describe {len(self.labels)} videos in {len(self.frames)} frames")
        if (np.diff(self.offsets) < 1).any():
            raise DataError(f"{what}: every video needs at least one frame")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def channels(self) -> int:
        return int(self.frames.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    def gather(self, videos: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Frames ``indices (B, T)`` (within each video, ``0 <= index < length``) of
        ``videos (B,)``: uint8 ``(B, C, T, H, W)``."""
        videos = np.asarray(videos, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        if indices.ndim != 2 or len(indices) != len(videos):
            raise ValueError(f"indices must be (B, T) with B = {len(videos)}, got {indices.shape}")
        if (indices < 0).any() or (indices >= self.lengths[videos][:, None]).any():
            raise IndexError("frame index outside its video")
        rows = (self.offsets[videos][:, None] + indices).reshape(-1)
        order = np.argsort(rows, kind="stable")  # sorted reads are kinder to memory-mapped files
        out = np.empty((len(rows), *self.frames.shape[1:]), dtype=np.uint8)
        out[order] = self.frames[rows[order]]
        b, t = indices.shape
        return out.reshape(b, t, *self.frames.shape[1:]).transpose(0, 2, 1, 3, 4)

    def select(self, rows: np.ndarray) -> DecodedVideos:
        rows = np.asarray(rows, dtype=np.int64)
        parts = [self.frames[self.offsets[i]: self.offsets[i + 1]] for i in rows]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        frames = np.concatenate(parts) if parts else np.empty((0, *self.frames.shape[1:]), np.uint8)
        return DecodedVideos(frames, np.concatenate([[0], np.cumsum(lengths)]), self.labels[rows], self.classes,
                             self.source, [self.names[i] for i in rows] if self.names else [], self.skipped)

    @classmethod
    def from_array(cls, data: VideoArray) -> DecodedVideos:
        """The same videos (all of length ``T``) in the ragged layout."""
        n, c, t, h, w = data.videos.shape
        frames = np.ascontiguousarray(np.asarray(data.videos).transpose(0, 2, 1, 3, 4).reshape(n * t, c, h, w))
        return cls(frames, np.arange(n + 1, dtype=np.int64) * t, data.labels, list(data.classes), data.source,
                   [str(i) for i in range(n)])


def _decode_one(path: Path, size, max_frames: int | None, frame_stride: int, channels: int) -> np.ndarray:
    want = None if max_frames is None else max_frames * frame_stride
    if isinstance(size, int):  # shorter side to `size`, then the central square
        v = read_video(path, size, want, channels)
        h, w = v.shape[-2:]
        y, x = (h - size) // 2, (w - size) // 2
        v = v[:, :, y: y + size, x: x + size]
    else:
        v = read_video(path, size, want, channels)
    return np.ascontiguousarray(v[:, ::frame_stride].transpose(1, 0, 2, 3))  # (T, C, H, W)


def _file_stats(paths: list[Path]) -> list:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(p), None, None))
    return out


def decode_videos(videos: VideoList, size: int | tuple[int, int] = 112, max_frames: int | None = None,
                  frame_stride: int = 1, channels: int = 3, cache: str = "memory", on_error: str = "raise",
                  workers: int | None = None, progress: bool = False, root: str | Path | None = None) -> DecodedVideos:
    """Decode ``videos`` once (see the module docstring).

    ``size``: an int resizes the shorter side to it and keeps the central square; a pair
    ``(H, W)`` resizes to exactly that. ``max_frames``: at most this many frames per video
    after ``frame_stride`` subsampling (bounded memory on long files). ``workers``:
    decoding threads (PyAV releases the GIL; default ``min(4, cpus)``). ``root``: names
    are stored relative to it.
    """
    if on_error not in ON_ERROR:
        raise DataError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if cache not in ("memory", "mmap", "none"):
        raise ValueError(f"cache mode must be 'memory', 'mmap' or 'none', got {cache!r}")
    if frame_stride < 1 or (max_frames is not None and max_frames < 1):
        raise DataError(f"frame_stride and max_frames must be >= 1, got {frame_stride}, {max_frames}")
    if isinstance(size, (list, tuple)):
        size = (int(size[0]), int(size[1]))
    if not len(videos):
        raise DataError(f"{videos.source}: no videos to decode")

    def name(p: Path) -> str:
        if root is not None:
            try:
                return str(Path(p).relative_to(root))
            except ValueError:
                pass
        return str(p)

    def build() -> DecodedVideos:
        n_workers = workers or min(4, os.cpu_count() or 1)
        results: list[np.ndarray | None] = [None] * len(videos)
        skipped: list[str] = []

        def work(i: int):
            try:
                return i, _decode_one(videos.paths[i], size, max_frames, frame_stride, channels), None
            except DataError as err:
                if on_error == "raise":
                    raise
                return i, None, str(err)

        with ThreadPoolExecutor(n_workers) as pool:
            for i, frames, err in _progress(pool.map(work, range(len(videos))), "decoding videos", len(videos),
                                            progress, "video"):
                if err is not None:
                    log.warning("skipping unreadable video: %s", err)
                    skipped.append(err)
                results[i] = frames
        keep = [i for i, r in enumerate(results) if r is not None]
        if not keep:
            raise DataError(f"{videos.source}: none of the {len(videos)} videos could be decoded; first error: "
                            f"{skipped[0] if skipped else '?'}")
        lengths = np.array([len(results[i]) for i in keep], dtype=np.int64)
        frames = np.concatenate([results[i] for i in keep])
        return DecodedVideos(frames, np.concatenate([[0], np.cumsum(lengths)]), videos.labels[keep], videos.classes,
                             videos.source, [name(videos.paths[i]) for i in keep], skipped)

    if cache == "none":
        return build()
    key = fingerprint("videos", _FORMAT, _file_stats(videos.paths), videos.labels.tolist(), videos.classes,
                      size, max_frames, frame_stride, channels, on_error)
    entry = cache_dir() / f"videos-v{_FORMAT}-{key}"
    if not (entry / "meta.json").exists():
        data = build()
        store_entry(entry, {"frames": data.frames, "offsets": data.offsets, "labels": data.labels},
                    {"classes": data.classes, "source": data.source, "names": data.names, "skipped": data.skipped})
        if cache == "memory":
            return data
    meta = json.loads((entry / "meta.json").read_text())
    for msg in meta["skipped"]:
        log.warning("skipping unreadable video (cached decision): %s", msg)
    return DecodedVideos(np.load(entry / "frames.npy", mmap_mode="r" if cache == "mmap" else None),
                         np.load(entry / "offsets.npy"), np.load(entry / "labels.npy"), meta["classes"],
                         meta["source"], meta["names"], meta["skipped"])
