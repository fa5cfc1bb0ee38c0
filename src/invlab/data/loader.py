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
from invlab.seeding import stream_generator

__all__ = ["ArrayDataset", "EpochShuffleSampler", "ImageDataModule", "array_loader"]


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


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on ``(seed, epoch)``, so a resumed run sees the
    same order as an uninterrupted one (Lightning calls :meth:`set_epoch`).

    :meth:`resume_at` makes the next epoch ``epoch`` start after its first ``skip``
    samples (a run restarted from a mid-epoch checkpoint); later epochs are whole.
    """

    def __init__(self, length: int, seed: int = 0):
        self.length, self.seed, self.epoch = length, seed, 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        self.epoch = epoch
        self._resume = (epoch, skip)

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        g = stream_generator("shuffle", self.seed, self.epoch)
        order = torch.randperm(self.length, generator=g).tolist()
        if self._resume is not None and self._resume[0] == self.epoch:
            order = order[self._resume[1] :]
            self._resume = None
        return iter(order)


def _passthrough(batch):
    return batch


def array_loader(
    data: ImageArray, batch_size: int, shuffle: bool = False, drop_last: bool = False, num_workers: int = 0,
    seed: int = 0, pin_memory: bool = False,
) -> DataLoader:
    """``pin_memory``: batches in page-locked memory, so the copy to a GPU runs
    asynchronously (Lightning copies with ``non_blocking=True``)."""
    return DataLoader(
        ArrayDataset(data),
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(data), seed) if shuffle else None,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=_passthrough,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )


class ImageDataModule(L.LightningDataModule):
    """Training batches from ``train`` (shuffled, last partial batch dropped); validation
    loaders ``[bank, query]`` for the kNN monitor: ``bank`` = ``train`` (optionally a
    subset), ``query`` = ``test``."""

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
        """Continue epoch ``epoch`` after its first ``batches_done`` batches (per process)."""
        self._resume = (epoch, batches_done * self.batch_size * world_size)

    def train_dataloader(self) -> DataLoader:
        loader = array_loader(self.train, self.batch_size, True, True, self.num_workers, self.seed, self.pin_memory)
        if self._resume is not None:
            loader.sampler.resume_at(*self._resume)
        return loader

    def val_dataloader(self) -> list[DataLoader]:
        if self.test is None:
            return []
        return [
            array_loader(self.train, self.eval_batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory),
            array_loader(self.test, self.eval_batch_size, num_workers=self.num_workers, pin_memory=self.pin_memory),
        ]
