from __future__ import annotations

import pytest
import torch

from invlab.transforms import Compose, HorizontalFlip, MultiViewSampler, RandomResizedCrop, Rotate90


def test_views_carry_their_parameters_and_replay(images):
    pipe = Compose([RandomResizedCrop(8), HorizontalFlip()])
    views = MultiViewSampler(pipe, 3)(images, torch.Generator().manual_seed(0), index=torch.arange(6))
    assert len(views) == 3 and views.index.tolist() == list(range(6))
    for v in views:
        assert v.x.shape == (6, 3, 8, 8)
        assert torch.equal(v.transform.apply(images, v.params), v.x)
    assert not torch.equal(views[0].x, views[1].x)


def test_per_view_pipelines_may_differ_in_size(images):
    sampler = MultiViewSampler([RandomResizedCrop(16), RandomResizedCrop(8), Compose([RandomResizedCrop(8), Rotate90()])])
    views = sampler(images)
    assert [tuple(v.x.shape[-2:]) for v in views] == [(16, 16), (8, 8), (8, 8)]
    assert "rot90.k" in views[2].params


def test_view_count_checks():
    with pytest.raises(ValueError):
        MultiViewSampler([RandomResizedCrop(8)], num_views=2)
    with pytest.raises(ValueError):
        MultiViewSampler([])
