"""Shared fixtures. Real data lives in ../shared/data (see its README): tests that need it
skip with a reason when it is absent (a user's clone) and fail when CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing but CI=true: CI must provide ../shared/data")
        pytest.skip(f"{path} not present (real data sets live in ../shared/data; see its README)")
    return path


@pytest.fixture(scope="session")
def cifar_tarball() -> Path:
    return shared_file("cifar10-jpg.tar.gz")


@pytest.fixture(scope="session")
def cifar_small(cifar_tarball):
    """(train, test) ImageArrays: 512 real CIFAR-10 training and 256 test images."""
    from invlab.data import load_cifar10

    train = load_cifar10(cifar_tarball, "train", progress=False).subset(512, seed=0)
    test = load_cifar10(cifar_tarball, "test", progress=False).subset(256, seed=0)
    return train, test


@pytest.fixture(scope="session")
def etth1_csv() -> Path:
    return shared_file("ETTh1.csv")


@pytest.fixture
def images() -> torch.Tensor:
    """A reproducible batch of 6 RGB images 16x16 in [0, 1] with structure (not pure noise)."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(6, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=(16, 16), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(6, 3, 16, 16, generator=g)).clamp(0, 1)


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, tmp_path_factory, request):
    """Tests that write data caches get their own cache folder unless they use the shared
    real-data fixtures (which benefit from the persistent cache)."""
    if "cifar_small" in request.fixturenames or "cifar_tarball" in request.fixturenames:
        return
    monkeypatch.setenv("INVLAB_CACHE", str(tmp_path_factory.mktemp("cache")))


def pytest_configure(config):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
