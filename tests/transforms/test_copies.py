"""Transformed copies: E-SSL's rotated batch and which parameter is enumerated."""

from __future__ import annotations

import pytest
import torch

from invlab.transforms import Compose, GaussianBlur, HorizontalFlip, Jigsaw, RandomApply, Rotate90
from invlab.transforms.copies import enumerable_key, transformed_copies


def test_rotated_batch_has_every_image_in_all_four_rotations_with_the_right_labels(images):
    target = Compose([Rotate90()])
    key = enumerable_key(target, 4)
    assert key == "rot90.k"
    x, params = transformed_copies(images, target, 4, torch.Generator().manual_seed(0), key)
    n = len(images)
    assert x.shape == (4 * n, *images.shape[1:])
    labels = params["rot90.k"]
    assert labels.dtype == torch.long and labels.tolist() == [k for k in range(4) for _ in range(n)]
    for i in range(n):
        rows = [j * n + i for j in range(4)]  # copy-major
        assert sorted(labels[rows].tolist()) == [0, 1, 2, 3]
        for r in rows:
            assert torch.equal(x[r], torch.rot90(images[i], int(labels[r]), dims=(-2, -1)))


def test_without_enumeration_copies_are_drawn_at_random(images):
    x, params = transformed_copies(images, Jigsaw(), 3, torch.Generator().manual_seed(0))
    assert x.shape[0] == 3 * len(images) and params["perm"].shape == (3 * len(images),)
    assert len(set(params["perm"].tolist())) > 4


def test_enumerable_key_rules():
    assert enumerable_key(Rotate90(), 4) == "k"
    assert enumerable_key(Rotate90(), 8) == "k"
    assert enumerable_key(Rotate90(), 3) is None  # 3 copies cannot cover 4 values evenly
    assert enumerable_key(HorizontalFlip(), 4) == "flip"
    assert enumerable_key(Jigsaw(), 4) is None  # 24 values
    blur = Compose([RandomApply(GaussianBlur(), p=0.5)])
    assert enumerable_key(blur, 2) == "blur.fired"  # the only discrete/binary parameter
    assert enumerable_key(Rotate90(), 4, None) is None
    with pytest.raises(ValueError, match="multiple of the number of values"):
        enumerable_key(Rotate90(), 6, "k")
    with pytest.raises(ValueError, match="only scalar discrete/binary"):
        enumerable_key(blur, 2, "blur.sigma")
    with pytest.raises(ValueError, match="has parameters"):
        enumerable_key(Rotate90(), 4, "angle")
    with pytest.raises(ValueError, match="copies must be >= 1"):
        enumerable_key(Rotate90(), 0)


def test_enumerated_binary_keeps_its_dtype(images):
    x, params = transformed_copies(images, HorizontalFlip(), 2, None, "flip")
    assert params["flip"].dtype == torch.bool
    n = len(images)
    assert torch.equal(x[:n], images) and torch.equal(x[n:], images.flip(-1))
