"""Clip sampling and clip loaders.

A clip is ``T = clip_len`` frames taken every ``stride`` frames from a start index, so it
spans ``(T - 1) * stride + 1`` frames. :func:`clip_indices` gives the frame indices of
``num_clips`` clips of one video:

- ``mode="uniform"``: starts evenly spaced over the possible range (one clip: the
  centred one), the usual evaluation protocol;
- ``mode="random"``: starts drawn uniformly from the possible range (training).

A video shorter than a clip's span is **padded by repeating its last frame** (indices
clamped to ``length - 1``), documented policy.

:class:`ClipDataset` serves batches ``{"video": uint8 (B, C, T, H, W), "label", "index"
(video), "clip"}`` from :class:`~invlab.data.video.decoded.DecodedVideos` with one fancy
index per batch. Training draws each clip's start from a generator seeded by ``(seed,
epoch, video)``, so a resumed run sees exactly the clips an uninterrupted one would
(:class:`EpochClipSampler` hands the epoch to the dataset inside the index, which works
with loader workers too; under several processes each reads its shard, see
:mod:`invlab.data.sharding`). Evaluation enumerates every ``(video, clip)`` pair (``num_clips``
uniform clips per video) for clip-level and video-level (averaged) scores.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from invlab.data.loader import process_grid
from invlab.data.sharding import EvalShardSampler, ShardedEpochSampler
from invlab.data.video.decoded import DecodedVideos

__all__ = ["clip_span", "clip_indices", "ClipDataset", "EpochClipSampler", "VideoDataModule", "clip_loader"]


def clip_span(clip_len: int, stride: int = 1) -> int:
    """Frames a clip covers: ``(clip_len - 1) * stride + 1``."""
    return (clip_len - 1) * stride + 1


def clip_indices(length: int, clip_len: int, stride: int = 1, num_clips: int = 1, mode: str = "uniform",
                 generator: torch.Generator | None = None) -> np.ndarray:
    """Frame indices ``(num_clips, clip_len)`` of clips of a video of ``length`` frames."""
    if length < 1 or clip_len < 1 or stride < 1 or num_clips < 1:
        raise ValueError(f"length, clip_len, stride and num_clips must be >= 1, got {length}, {clip_len}, "
                         f"{stride}, {num_clips}")
    free = max(0, length - clip_span(clip_len, stride))
    if mode == "uniform":
        starts = np.array([free // 2]) if num_clips == 1 else np.round(np.linspace(0, free, num_clips)).astype(np.int64)
    elif mode == "random":
        starts = torch.randint(0, free + 1, (num_clips,), generator=generator).numpy()
    else:
        raise ValueError(f"mode must be 'uniform' or 'random', got {mode!r}")
    idx = starts[:, None] + stride * np.arange(clip_len)[None, :]
    return np.minimum(idx, length - 1).astype(np.int64)


class ClipDataset(Dataset):
    """Clips of ``videos`` (see the module docstring).

    ``mode="random"``: one clip per video, item ids are ``epoch * N + video`` (from
    :class:`EpochClipSampler`; a plain id ``i < N`` means epoch 0). ``mode="uniform"``:
    ``num_clips`` clips per video, item ``i`` is clip ``i % num_clips`` of video
    ``i // num_clips``.
    """

    def __init__(self, videos: DecodedVideos, clip_len: int, stride: int = 1, mode: str = "random",
                 num_clips: int = 1, seed: int = 0):
        if mode not in ("random", "uniform"):
            raise ValueError(f"mode must be 'uniform' or 'random', got {mode!r}")
        self.videos, self.clip_len, self.stride, self.mode = videos, clip_len, stride, mode
        self.num_clips = 1 if mode == "random" else num_clips
        self.seed = seed

    def __len__(self) -> int:
        return len(self.videos) * self.num_clips

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.__getitems__([i])

    def _random_starts(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.videos)
        video, epoch = items % n, items // n
        lengths = self.videos.lengths
        idx = np.empty((len(items), self.clip_len), dtype=np.int64)
        for k, (v, e) in enumerate(zip(video, epoch)):
            g = torch.Generator().manual_seed(int((self.seed * 1_000_003 + int(e)) * 10_000_019 + int(v)))
            idx[k] = clip_indices(int(lengths[v]), self.clip_len, self.stride, 1, "random", g)[0]
        return video, idx

    def __getitems__(self, items: list[int]) -> dict[str, torch.Tensor]:
        items = np.asarray(items, dtype=np.int64)
        if self.mode == "random":
            video, idx = self._random_starts(items)
            clip = np.zeros(len(items), dtype=np.int64)
        else:
            video, clip = items // self.num_clips, items % self.num_clips
            lengths = self.videos.lengths
            idx = np.stack([clip_indices(int(lengths[v]), self.clip_len, self.stride, self.num_clips, "uniform")[c]
                            for v, c in zip(video, clip)])
        return {
            "video": torch.from_numpy(self.videos.gather(video, idx)),
            "label": torch.from_numpy(self.videos.labels[video]),
            "index": torch.from_numpy(video),
            "clip": torch.from_numpy(clip),
        }


class EpochClipSampler(ShardedEpochSampler):
    """One process's shuffled videos whose items carry the epoch (``epoch * length +
    video``), so clip offsets are a function of (seed, epoch, video); a
    :class:`~invlab.data.sharding.ShardedEpochSampler` with ``epoch_items``."""

    def __init__(self, length: int, seed: int = 0, batch_size: int = 1, world_size: int = 1, rank: int = 0,
                 drop_last: bool = False):
        super().__init__(length, batch_size, seed, world_size, rank, drop_last, epoch_items=True)


def _passthrough(batch):
    return batch


def clip_loader(dataset: ClipDataset, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                num_workers: int = 0, seed: int = 0, sampler=None) -> DataLoader:
    """Batches of clips; ``sampler`` replaces the default order (``shuffle``: an
    :class:`EpochClipSampler`, random clips only; else index order)."""
    if sampler is None and shuffle:
        sampler = EpochClipSampler(len(dataset.videos), seed)
    if (shuffle or isinstance(sampler, EpochClipSampler)) and dataset.mode != "random":
        raise ValueError("shuffled clip loaders draw random clips: use mode='random'")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=num_workers,
                      collate_fn=_passthrough, persistent_workers=num_workers > 0)


class VideoDataModule(L.LightningDataModule):
    """Training batches of random clips of ``clip_len`` frames at ``stride`` from
    ``train`` (shuffled, last partial batch dropped); validation loaders ``[bank, query]``
    of the centred clip of each ``train`` / ``test`` video (the kNN monitor)."""

    def __init__(self, train: DecodedVideos, test: DecodedVideos | None, clip_len: int, stride: int = 1,
                 batch_size: int = 32, eval_batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 eval_clip_len: int | None = None, eval_stride: int | None = None):
        super().__init__()
        self.train, self.test = train, test
        self.clip_len, self.stride = clip_len, stride
        self.eval_clip_len = eval_clip_len or clip_len
        self.eval_stride = eval_stride or stride
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches_done: int, world_size: int = 1) -> None:
        """Continue epoch ``epoch`` after the first ``batches_done`` batches of every process."""
        self._resume = (epoch, batches_done)

    def train_dataloader(self) -> DataLoader:
        ds = ClipDataset(self.train, self.clip_len, self.stride, "random", seed=self.seed)
        world, rank = process_grid(self.trainer)
        sampler = EpochClipSampler(len(self.train), self.seed, self.batch_size, world, rank, drop_last=True)
        if self._resume is not None:
            sampler.resume_at(*self._resume)
        return clip_loader(ds, self.batch_size, drop_last=True, num_workers=self.num_workers, sampler=sampler)

    def val_dataloader(self) -> list[DataLoader]:
        if self.test is None:
            return []
        world, rank = process_grid(self.trainer)
        return [clip_loader(ClipDataset(v, self.eval_clip_len, self.eval_stride, "uniform", 1), self.eval_batch_size,
                            num_workers=self.num_workers, sampler=EvalShardSampler(len(v), world, rank))
                for v in (self.train, self.test)]
