"""Sharding is a pure function of (seed, epoch, rank, world size): every sample once per
epoch across processes (the remainder as documented), the same global batches as one
process, and a resume that skips exactly what each process had consumed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invlab.data.arrays import ImageArray
from invlab.data.loader import EpochShuffleSampler, ImageDataModule
from invlab.data.sharding import EvalShardSampler, ShardedEpochSampler, drop_padding, epoch_order


def _samplers(length, batch, world, seed=0, drop_last=True):
    return [ShardedEpochSampler(length, batch, seed, world, r, drop_last) for r in range(world)]


@pytest.mark.parametrize("length, batch, world", [(96, 8, 2), (100, 8, 2), (100, 4, 3), (1347, 64, 4)])
def test_every_sample_once_per_epoch_across_ranks_and_the_remainder_of_one_process(length, batch, world):
    samplers = _samplers(length, batch, world, seed=3)
    one = EpochShuffleSampler(length, seed=3)
    for epoch in range(4):
        for s in samplers + [one]:
            s.set_epoch(epoch)
        per_rank = [list(s) for s in samplers]
        assert len({len(p) for p in per_rank}) == 1 and all(len(p) == len(s) for p, s in zip(per_rank, samplers))
        seen = [i for p in per_rank for i in p]
        assert len(seen) == len(set(seen))  # never twice
        order = list(one)
        assert order == epoch_order(length, 3, epoch)
        kept = length - length % (batch * world)
        # exactly the samples one process with the global batch reads; the left-out tail of
        # the permutation is the one it drops (drop_last)
        assert sorted(seen) == sorted(order[:kept])
        # step s: rank-major blocks of the one-process global batch
        steps = kept // (batch * world)
        for s in range(steps):
            glob = [i for p in per_rank for i in p[s * batch:(s + 1) * batch]]
            assert glob == order[s * batch * world:(s + 1) * batch * world]
    # a new order every epoch, for every rank
    samplers[0].set_epoch(0)
    first = list(samplers[0])
    samplers[0].set_epoch(1)
    assert list(samplers[0]) != first


def test_without_drop_last_the_last_partial_global_batch_is_split_and_padded():
    samplers = _samplers(10, 4, 3, drop_last=False)  # 10 < 12: one global step of 4, 4, 4 with 2 repeats
    per_rank = [list(s) for s in samplers]
    assert [len(p) for p in per_rank] == [4, 4, 4]
    seen = [i for p in per_rank for i in p]
    order = epoch_order(10, 0, 0)
    assert sorted(set(seen)) == list(range(10)) and seen[-2:] == order[:2]  # padded from the epoch's start
    # one process, no drop_last: every sample once, one partial batch
    assert list(ShardedEpochSampler(10, 16, drop_last=False)) == order


def test_sharding_does_not_depend_on_anything_but_seed_epoch_rank_world():
    a, b = ShardedEpochSampler(200, 8, 5, 4, 2), ShardedEpochSampler(200, 8, 5, 4, 2)
    b.set_epoch(7)
    list(b)
    b.set_epoch(2)
    a.set_epoch(2)
    assert list(a) == list(b) == a.indices(2)
    assert ShardedEpochSampler(200, 8, 6, 4, 2).indices(2) != a.indices(2)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_resume_skips_exactly_the_batches_each_rank_consumed_and_len_stays_the_epochs(world):
    for rank in range(world):
        whole = ShardedEpochSampler(150, 5, 1, world, rank)
        resumed = ShardedEpochSampler(150, 5, 1, world, rank)
        resumed.resume_at(2, 3)
        assert len(resumed) == len(whole)  # the schedule is sized from len(); the loop counts on from 3
        assert list(resumed) == whole.indices(2)[15:]
        resumed.set_epoch(3)
        assert list(resumed) == whole.indices(3)  # later epochs are whole


def test_image_data_module_shards_by_the_attached_trainers_rank():
    data = ImageArray(np.zeros((40, 1, 2, 2), np.uint8), np.arange(40) % 3)

    class Trainer:
        world_size, global_rank = 2, 1

    dm = ImageDataModule(data, data, batch_size=4, eval_batch_size=7)
    dm.trainer = Trainer()
    dm.resume_at(0, 2)
    batches = list(dm.train_dataloader())
    whole = ShardedEpochSampler(40, 4, 0, 2, 1).indices(0)
    assert torch.cat([b["index"] for b in batches]).tolist() == whole[8:]
    bank = torch.cat([b["index"] for b in dm.val_dataloader()[0]]).tolist()
    assert bank == list(range(20, 40))


@pytest.mark.parametrize("length, world", [(10, 3), (7, 4), (3, 4), (8, 2), (0, 2)])
def test_eval_shards_cover_everything_with_equal_lengths_and_padding_drops_out(length, world):
    shards = [list(EvalShardSampler(length, world, r)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    gathered = torch.tensor([i for s in shards for i in s], dtype=torch.long)
    feats = gathered.float()[:, None] * 10
    index, kept = drop_padding(gathered, feats)
    assert index.tolist() == list(range(length)) and kept[:, 0].tolist() == [10.0 * i for i in range(length)]


def test_bad_shard_arguments_are_refused():
    with pytest.raises(ValueError, match="rank 2 is not in a world of 2"):
        ShardedEpochSampler(10, 2, world_size=2, rank=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ShardedEpochSampler(10, 0)


class _Trainer:
    def __init__(self, world, rank):
        self.world_size, self.global_rank = world, rank


@pytest.mark.parametrize("resume", [None, (1, 2)])
def test_time_series_and_video_modules_shard_exactly_once_and_resume_per_rank(resume):
    from invlab.data.timeseries import LabelledDataset, TimeSeriesDataModule
    from invlab.data.timeseries.classification import LabelledSeries
    from invlab.data.video import VideoDataModule
    from invlab.data.video.decoded import DecodedVideos

    series = LabelledDataset(LabelledSeries(np.zeros((50, 2, 6), np.float32), np.arange(50) % 2, ["a", "b"]))
    lengths = np.arange(30) % 3 + 4
    videos = DecodedVideos(np.zeros((int(lengths.sum()), 1, 2, 2), np.uint8), np.r_[0, np.cumsum(lengths)],
                           np.arange(30) % 2, ["a", "b"])
    for make, n, b in [(lambda: TimeSeriesDataModule(series, None, batch_size=4), 50, 4),
                       (lambda: VideoDataModule(videos, None, clip_len=2, batch_size=3), 30, 3)]:
        for epoch in (0, 1):
            seen, lens = [], set()
            for rank in range(2):
                dm = make()
                dm.trainer = _Trainer(2, rank)
                if resume is not None:
                    dm.resume_at(*resume)
                loader = dm.train_dataloader()
                loader.sampler.set_epoch(epoch)
                batches = [bt["index"].tolist() for bt in loader]
                lens.add(len(loader))
                whole = ShardedEpochSampler(n, b, 0, 2, rank).indices(epoch)
                skip = resume[1] * b if resume is not None and resume[0] == epoch else 0
                assert [i for bt in batches for i in bt] == whole[skip:]
                seen += whole
            assert len(lens) == 1 and len(seen) == len(set(seen)) == n - n % (2 * b)
