from __future__ import annotations

import numpy as np
import torch

from invlab.data import (
    ArrayDataset,
    EpochShuffleSampler,
    ImageArray,
    array_loader,
    load_digits_array,
)


def _array(n=10):
    images = np.arange(n * 3 * 2 * 2, dtype=np.uint8).reshape(n, 3, 2, 2)
    return ImageArray(images, np.arange(n) % 3, ["a", "b", "c"], "test")


def test_getitems_returns_one_batched_dict():
    ds = ArrayDataset(_array())
    batch = ds.__getitems__([7, 2, 5])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (3, 3, 2, 2)
    assert batch["index"].tolist() == [7, 2, 5] and batch["label"].tolist() == [1, 2, 2]
    assert torch.equal(batch["image"][0], torch.from_numpy(ds.data.images[7]))


def test_loader_batches_and_drops_last():
    batches = list(array_loader(_array(10), 4, shuffle=True, drop_last=True))
    assert len(batches) == 2 and all(len(b["index"]) == 4 for b in batches)


def test_epoch_shuffle_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(20, seed=1), EpochShuffleSampler(20, seed=1)
    a.set_epoch(3)
    list(b)  # consuming does not change what an epoch yields
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b) and sorted(b) == list(range(20))


def test_digits_split_is_stratified_and_disjoint():
    train, test = load_digits_array("train"), load_digits_array("test")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(test) == 1797
    assert set(np.unique(test.labels)) == set(range(10))
    assert train.images.max() == 255
