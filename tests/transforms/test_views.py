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


@pytest.mark.parametrize("same_transform", [True, False])
def test_a_shard_of_the_global_batch_gets_the_views_one_process_would_draw(same_transform):
    """``shard=(rank, world)``: parameters drawn for the global batch, this block kept, so a
    sample's views do not depend on how many processes share the batch."""
    from invlab.transforms import (
        ColorJitter,
        Compose,
        HorizontalFlip,
        RandomApply,
        RandomResizedCrop,
    )

    pipe = Compose([RandomResizedCrop(8), HorizontalFlip(), RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8)])
    other = Compose([RandomResizedCrop(8, scale=(0.5, 1.0)), HorizontalFlip()])
    sampler = MultiViewSampler(pipe, 2) if same_transform else MultiViewSampler([pipe, other])
    x = torch.rand(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = sampler(x, torch.Generator().manual_seed(5))
    for world in (2, 3):
        n = 12 // world
        for rank in range(world):
            part = sampler(x[rank * n:(rank + 1) * n], torch.Generator().manual_seed(5), shard=(rank, world))
            for v in range(2):
                torch.testing.assert_close(part[v].x, whole[v].x[rank * n:(rank + 1) * n], rtol=0, atol=1e-6)
                for k, p in part[v].params.items():
                    assert torch.equal(p, whole[v].params[k][rank * n:(rank + 1) * n]), k
    with pytest.raises(ValueError, match=r"rank must lie in \[0, world\)"):
        sampler(x, shard=(2, 2))
