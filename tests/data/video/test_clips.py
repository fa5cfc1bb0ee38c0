import numpy as np
import pytest
import torch

from invlab.data.video import (
    ClipDataset,
    ControlledVideos,
    DecodedVideos,
    VideoDataModule,
    clip_indices,
    clip_span,
)


def test_uniform_clip_indices():
    assert clip_span(4, 2) == 7
    assert clip_indices(10, 4, 2).tolist() == [[1, 3, 5, 7]]  # centred: free = 3, start 1
    assert clip_indices(10, 4, 1, 3).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert clip_indices(3, 4, 1).tolist() == [[0, 1, 2, 2]]  # short video: last frame repeated
    assert clip_indices(5, 2, 3, 2).tolist() == [[0, 3], [1, 4]]


def test_random_clip_indices_cover_the_range_and_are_seeded():
    g = torch.Generator().manual_seed(0)
    idx = clip_indices(12, 3, 2, 500, "random", g)
    starts = idx[:, 0]
    assert set(starts.tolist()) == set(range(12 - 5 + 1))
    assert (np.diff(idx, axis=1) == 2).all()
    again = clip_indices(12, 3, 2, 500, "random", torch.Generator().manual_seed(0))
    assert np.array_equal(idx, again)
    with pytest.raises(ValueError):
        clip_indices(12, 3, 2, 1, "middle")


@pytest.fixture(scope="module")
def decoded():
    data = ControlledVideos(12, num_frames=10, image_size=16, motions=["right", "left"])
    return DecodedVideos.from_array(data.to_video_array())


def test_clip_dataset_random_is_a_function_of_seed_epoch_video(decoded):
    ds = ClipDataset(decoded, 4, 2, "random", seed=3)
    a = ds.__getitems__([0, 5, 12 + 5])
    assert a["video"].shape == (3, 3, 4, 16, 16) and a["index"].tolist() == [0, 5, 5]
    b = ClipDataset(decoded, 4, 2, "random", seed=3).__getitems__([12 + 5])
    assert torch.equal(a["video"][2], b["video"][0])
    # frames really are consecutive-at-stride frames of the video
    full = decoded.gather([5], np.arange(10)[None])[0]
    clip = a["video"][1].numpy()
    starts = [s for s in range(10 - 7 + 1) if np.array_equal(full[:, s:s + 7:2], clip)]
    assert len(starts) >= 1


def test_clip_dataset_uniform_enumerates_clips(decoded):
    ds = ClipDataset(decoded, 3, 1, "uniform", num_clips=4)
    assert len(ds) == 48
    batch = ds.__getitems__(list(range(8)))
    assert batch["index"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and batch["clip"].tolist() == [0, 1, 2, 3] * 2
    full = decoded.gather([1], np.arange(10)[None])[0]
    assert np.array_equal(batch["video"][7].numpy(), full[:, 7:10])


def test_datamodule_resume_sees_the_same_clips(decoded):
    dm = VideoDataModule(decoded, decoded, clip_len=4, stride=1, batch_size=4, seed=1)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(2)
    full = [b["video"] for b in loader]
    dm2 = VideoDataModule(decoded, decoded, clip_len=4, stride=1, batch_size=4, seed=1)
    dm2.resume_at(2, 1)
    resumed = [b["video"] for b in dm2.train_dataloader()]
    assert len(resumed) == 2 and all(torch.equal(x, y) for x, y in zip(full[1:], resumed))
    bank, query = dm.val_dataloader()
    first = next(iter(query))
    assert first["video"].shape == (12, 3, 4, 16, 16)
    assert torch.equal(first["video"][0], torch.from_numpy(decoded.gather([0], [[3, 4, 5, 6]])[0]))  # centred
    assert sum(len(b["index"]) for b in query) == 12
