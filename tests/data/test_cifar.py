"""CIFAR-10 loaders: python-pickle layout (safely), image-folder layout (real data)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from invlab.data import CIFAR10_CLASSES, load_cifar10
from invlab.data.cifar import safe_unpickle
from invlab.errors import DataError


def _write_pickle_layout(root, n=4):
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)
    return root


def test_python_pickle_layout(tmp_path):
    root = _write_pickle_layout(tmp_path / "cifar-10-batches-py")
    train = load_cifar10(tmp_path, "train")
    test = load_cifar10(root, "test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.classes == CIFAR10_CLASSES


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_crafted_pickle_cannot_run_code(tmp_path):
    root = _write_pickle_layout(tmp_path / "c")
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f)
    with pytest.raises(DataError, match="refusing to load posix.system|refusing to load os.system|refusing to load nt.system"):
        safe_unpickle(root / "test_batch")
    with pytest.raises(DataError):
        load_cifar10(root, "test", cache="none")


def test_not_a_cifar_copy(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="not a CIFAR-10 copy"):
        load_cifar10(tmp_path / "x")
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    with pytest.raises(DataError, match="split"):
        load_cifar10(tmp_path, "val")


def test_real_cifar10_jpeg_archive(cifar_tarball):
    train = load_cifar10(cifar_tarball, "train", progress=False)
    test = load_cifar10(cifar_tarball, "test", progress=False)
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.classes == CIFAR10_CLASSES
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert 100 < train.images.mean() < 140  # real photos, not blank
    sub = train.subset(1000, seed=0)
    assert len(sub) == 1000 and np.array_equal(sub.labels, train.subset(1000, seed=0).labels)
    assert not np.array_equal(sub.labels, train.subset(1000, seed=1).labels)
