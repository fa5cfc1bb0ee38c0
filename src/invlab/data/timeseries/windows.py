"""Batches of time series as ``(batch, channels, time)`` float32 tensors.

Windows are views into the standardised series (no copies until a batch is gathered);
``__getitems__`` fetches a whole batch with one fancy index. Batches are dicts::

    {"series": (B, C, L), "target": (B, C, H) (forecasting, H > 0), "label": (B,) (classification),
     "index": (B,)}
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from invlab.data.loader import EpochShuffleSampler, process_grid
from invlab.data.sharding import EvalShardSampler, ShardedEpochSampler
from invlab.data.timeseries.classification import LabelledSeries
from invlab.data.timeseries.forecasting import ForecastSeries, window_starts

__all__ = ["WindowDataset", "LabelledDataset", "TimeSeriesDataModule", "series_loader"]


class WindowDataset(Dataset):
    """Sliding windows of one split: window ``k`` starts at row ``first + k * stride``.

    ``horizon = 0`` gives inputs only (pretraining).
    """

    def __init__(self, data: ForecastSeries, split: str, seq_len: int, horizon: int = 0, stride: int = 1):
        if stride < 1:
            raise ValueError(f"window stride must be >= 1, got {stride}")
        self.data, self.split = data, split
        self.seq_len, self.horizon, self.stride = seq_len, horizon, stride
        self.first, last = window_starts(data.borders, split, seq_len, horizon)
        self.starts = np.arange(self.first, last, stride, dtype=np.int64)
        # (T - L + 1, C, L) view: row i is the window starting at row i
        self._inputs = np.lib.stride_tricks.sliding_window_view(data.values, seq_len, axis=0)
        self._targets = (
            np.lib.stride_tricks.sliding_window_view(data.values, horizon, axis=0) if horizon > 0 else None
        )

    def __len__(self) -> int:
        return len(self.starts)

    def inputs(self, indices) -> np.ndarray:
        return self._inputs[self.starts[indices]]

    def targets(self, indices) -> np.ndarray:
        if self._targets is None:
            raise ValueError("this window set has no targets (horizon 0)")
        return self._targets[self.starts[indices] + self.seq_len]

    def __getitem__(self, i: int | slice):
        """One window (a batch of one) or a slice of windows, as a batch dict."""
        return self.__getitems__(list(range(len(self)))[i] if isinstance(i, slice) else [i])

    def __getitems__(self, indices) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        batch = {"series": torch.from_numpy(np.ascontiguousarray(self.inputs(idx))), "index": torch.from_numpy(idx)}
        if self._targets is not None:
            batch["target"] = torch.from_numpy(np.ascontiguousarray(self.targets(idx)))
        return batch


class LabelledDataset(Dataset):
    """Whole labelled series (classification)."""

    def __init__(self, data: LabelledSeries):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int | slice):
        """One window (a batch of one) or a slice of windows, as a batch dict."""
        return self.__getitems__(list(range(len(self)))[i] if isinstance(i, slice) else [i])

    def __getitems__(self, indices) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        return {
            "series": torch.from_numpy(np.ascontiguousarray(self.data.x[idx])),
            "label": torch.from_numpy(self.data.y[idx]),
            "index": torch.from_numpy(idx),
        }


def _passthrough(batch):
    return batch


def series_loader(dataset: Dataset, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                  num_workers: int = 0, seed: int = 0, sampler=None) -> DataLoader:
    """Batches of ``dataset``; ``sampler`` replaces the default order (``shuffle``:
    :class:`~invlab.data.loader.EpochShuffleSampler`; else index order)."""
    if sampler is None and shuffle:
        sampler = EpochShuffleSampler(len(dataset), seed)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler,
        drop_last=drop_last, num_workers=num_workers, collate_fn=_passthrough, persistent_workers=num_workers > 0,
    )


class TimeSeriesDataModule(L.LightningDataModule):
    """Shuffled training batches (the last partial global batch dropped when the set is
    larger than one global batch) and an optional validation loader; ``batch_size`` is
    the per-process batch, each process reads its shard (:mod:`invlab.data.sharding`)."""

    def __init__(self, train: Dataset, val: Dataset | None = None, batch_size: int = 32, eval_batch_size: int = 256,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self._resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches_done: int, world_size: int = 1) -> None:
        """Continue epoch ``epoch`` after the first ``batches_done`` batches of every
        process, as a run restarted from a mid-epoch checkpoint must."""
        self._resume = (epoch, batches_done)

    def train_dataloader(self) -> DataLoader:
        world, rank = process_grid(self.trainer)
        drop_last = len(self.train) > self.batch_size * world
        sampler = ShardedEpochSampler(len(self.train), self.batch_size, self.seed, world, rank, drop_last)
        if self._resume is not None:
            sampler.resume_at(*self._resume)
        return series_loader(self.train, self.batch_size, drop_last=drop_last, num_workers=self.num_workers,
                             sampler=sampler)

    def val_dataloader(self) -> list[DataLoader]:
        if self.val is None:
            return []
        world, rank = process_grid(self.trainer)
        return [series_loader(self.val, self.eval_batch_size, num_workers=self.num_workers,
                              sampler=EvalShardSampler(len(self.val), world, rank))]
