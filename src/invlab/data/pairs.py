"""Positive pairs over a uint8 image array, for methods trained on mined pairs
(Transitive Invariance: intra-instance, inter-instance and transitive pairs).

Each batch is ``{"image": uint8 (B, C, H, W), "positive": uint8 (B, C, H, W), "label":
int64 (B,), "index": int64 (B,), "partner": int64 (B,), "group": int64 (B,),
"positive_group": int64 (B,), "pair": int64 (B,)}``: ``image`` is the pair's first sample
(its label and data set index), ``positive`` the second; ``group`` and ``positive_group``
are the two samples' groups (e.g. their object instances; they differ for pairs across
instances) so a loss can keep samples of either member's group from being its negatives.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from invlab.data.arrays import ImageArray
from invlab.data.loader import EpochShuffleSampler, _passthrough
from invlab.errors import DataError

__all__ = ["PairDataset", "pair_loader"]


class PairDataset(Dataset):
    """Item ``i`` is the pair ``(data[pairs[i, 0]], data[pairs[i, 1]])``.

    Args:
        data: the images.
        pairs: ``(P, 2)`` integer sample indices into ``data``.
        groups: ``(N,)`` group of every sample (default: the sample's own index).
        symmetric: also yield each pair the other way round (``2P`` items).
    """

    def __init__(self, data: ImageArray, pairs, groups=None, symmetric: bool = True):
        pairs = np.asarray(pairs, dtype=np.int64)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise DataError(f"pairs must be a (P, 2) array of sample indices, got shape {pairs.shape}")
        if len(pairs) == 0:
            raise DataError("no pairs: the pair list is empty")
        if pairs.min() < 0 or pairs.max() >= len(data):
            raise DataError(f"pairs refer to samples outside [0, {len(data)}) of {data.source or 'the image array'}")
        self.data = data
        self.pairs = np.concatenate([pairs, pairs[:, ::-1]]) if symmetric else pairs
        groups = np.arange(len(data)) if groups is None else np.asarray(groups, dtype=np.int64)
        if groups.shape != (len(data),):
            raise DataError(f"groups must have one entry per sample ({len(data)}), got shape {groups.shape}")
        self.groups = groups

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        which = np.asarray(indices, dtype=np.int64)
        a, b = self.pairs[which, 0], self.pairs[which, 1]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.data.images[a])),
            "positive": torch.from_numpy(np.ascontiguousarray(self.data.images[b])),
            "label": torch.from_numpy(np.asarray(self.data.labels[a], dtype=np.int64)),
            "index": torch.from_numpy(a.copy()),
            "partner": torch.from_numpy(b.copy()),
            "group": torch.from_numpy(self.groups[a]),
            "positive_group": torch.from_numpy(self.groups[b]),
            "pair": torch.from_numpy(which),
        }


def pair_loader(dataset: PairDataset, batch_size: int, shuffle: bool = True, drop_last: bool = True, seed: int = 0) -> DataLoader:
    """Batches of pairs; the order is a function of ``(seed, epoch)`` like the image loaders'."""
    return DataLoader(
        dataset, batch_size=batch_size, sampler=EpochShuffleSampler(len(dataset), seed) if shuffle else None,
        drop_last=drop_last, collate_fn=_passthrough,
    )
