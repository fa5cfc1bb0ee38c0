"""Batches straight from a uint8 array: no per-image work in loader workers.

Each batch is a dict ``{"image": uint8 (B, C, H, W), "label": int64 (B,), "index":
int64 (B,)}``; augmentation happens later, batched, on the training device.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from invlab.data.arrays import ImageArray
from invlab.data.sharding import EvalShardSampler, ShardedEpochSampler

__all__ = ["ArrayDataset", "EpochShuffleSampler", "ImageDataModule", "array_loader", "process_grid"]


class ArrayDataset(Dataset):
    """Index a uint8 array; ``__getitems__`` fetches a whole batch with one fancy index."""

    def __init__(self, data: ImageArray):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        order = np.argsort(idx)  # sorted reads are kinder to memory-mapped files
        images = np.empty((len(idx), *self.data.images.shape[1:]), dtype=np.uint8)
        images[order] = self.data.images[idx[order]]
        return {
            "image": torch.from_numpy(images),
            "label": torch.from_numpy(np.asarray(self.data.labels[idx], dtype=np.int64)),
            "index": torch.from_numpy(idx),
        }


class EpochShuffleSampler(ShardedEpochSampler):
    """One process's shuffled order: a permutation that depends only on ``(seed, epoch)``
    (:class:`~invlab.data.sharding.ShardedEpochSampler` with batches of one sample, so
    :meth:`resume_at` skips ``skip`` samples)."""

    def __init__(self, length: int, seed: int = 0):
        super().__init__(length, 1, seed, drop_last=False)


def process_grid(trainer) -> tuple[int, int]:
    """``(world size, global rank)`` of the trainer a data module is attached to (``(1, 0)``
    when none is: a loader built by hand)."""
    if trainer is None:
        return 1, 0
    return int(trainer.world_size), int(trainer.global_rank)


def _passthrough(batch):
    return batch


def array_loader(
    data: ImageArray, batch_size: int, shuffle: bool = False, drop_last: bool = False, num_workers: int = 0,
    seed: int = 0, sampler: Sampler | None = None, pin_memory: bool = False,
) -> DataLoader:
    """Batches of ``data`` (an :class:`ImageArray`, or anything with a ``dataset()`` that
    serves such batches, e.g. :class:`~invlab.data.shards.ImageShards`); ``sampler`` (e.g.
    a sharded one) replaces the default order (``shuffle``: :class:`EpochShuffleSampler`;
    else index order); ``pin_memory``: batches in page-locked memory, so the copy to a GPU
    runs asynchronously (Lightning copies with ``non_blocking=True``)."""
    if sampler is None and shuffle:
        sampler = EpochShuffleSampler(len(data), seed)
    return DataLoader(
        ArrayDataset(data) if isinstance(data, ImageArray) else data.dataset(),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=_passthrough,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )


class ImageDataModule(L.LightningDataModule):
    """Training batches from ``train`` (an :class:`ImageArray`, or
    :class:`~invlab.data.shards.ImageShards` for sets larger than memory; shuffled, last
    partial global batch dropped);
    validation loaders ``[bank, query]`` for the kNN monitor: ``bank`` = ``train``
    (optionally a subset), ``query`` = ``test``.

    ``batch_size`` is the per-process batch. Under several processes each one reads its
    own shard (:mod:`invlab.data.sharding`: a function of seed, epoch, rank and world
    size); the trainer must not replace the samplers (``use_distributed_sampler=False``).
    """

    def __init__(
        self,
        train: ImageArray,
        test: ImageArray | None,
        batch_size: int = 256,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = False,
    ):
        super().__init__()
        self.train, self.test = train, test
        self.pin_memory = pin_memory
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches_done: int, world_size: int = 1) -> None:
        """Continue epoch ``epoch`` after the first ``batches_done`` batches of every process
        (``world_size`` is kept for callers; each process skips its own batches)."""
        self._resume = (epoch, batches_done)

    def train_sampler(self) -> ShardedEpochSampler:
        world, rank = process_grid(self.trainer)
        sampler = ShardedEpochSampler(len(self.train), self.batch_size, self.seed, world, rank, drop_last=True,
                                      order=getattr(self.train, "epoch_order", None))
        if self._resume is not None:
            sampler.resume_at(*self._resume)
        return sampler

    def train_dataloader(self) -> DataLoader:
        return array_loader(self.train, self.batch_size, drop_last=True, num_workers=self.num_workers,
                            sampler=self.train_sampler(), pin_memory=self.pin_memory)

    def val_dataloader(self) -> list[DataLoader]:
        if self.test is None:
            return []
        world, rank = process_grid(self.trainer)
        return [
            array_loader(data, self.eval_batch_size, num_workers=self.num_workers,
                         sampler=EvalShardSampler(len(data), world, rank), pin_memory=self.pin_memory)
            for data in (self.train, self.test)
        ]
