"""Pair batches over an image array, and their bad input."""

from __future__ import annotations

import numpy as np
import pytest

from invlab.data.arrays import ImageArray
from invlab.data.pairs import PairDataset, pair_loader
from invlab.errors import DataError


def _array(n=10):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(2, 2).repeat(2, 3)  # image i is all i
    return ImageArray(images, np.arange(n) % 3, source="toy")


def test_batches_carry_both_members_and_their_groups():
    ds = PairDataset(_array(), [[0, 4], [7, 2]], groups=np.arange(10) // 2)
    assert len(ds) == 4  # symmetric by default
    batch = ds.__getitems__([0, 3])
    assert batch["image"][:, 0, 0, 0].tolist() == [0, 2] and batch["positive"][:, 0, 0, 0].tolist() == [4, 7]
    assert batch["index"].tolist() == [0, 2] and batch["partner"].tolist() == [4, 7]
    assert batch["label"].tolist() == [0, 2] and batch["group"].tolist() == [0, 1]
    assert batch["positive_group"].tolist() == [2, 3]  # samples 4 and 7: groups 2 and 3
    loader = pair_loader(ds, 2, seed=0)
    seen = sorted(int(i) for b in loader for i in b["pair"])
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "pairs, groups, message",
    [
        ([[0, 1, 2]], None, r"\(P, 2\) array"),
        (np.zeros((0, 2)), None, "pair list is empty"),
        ([[0, 10]], None, r"outside \[0, 10\) of toy"),
        ([[0, 1]], np.zeros(3), "one entry per sample"),
    ],
)
def test_bad_pairs_are_refused(pairs, groups, message):
    with pytest.raises(DataError, match=message):
        PairDataset(_array(), pairs, groups)
