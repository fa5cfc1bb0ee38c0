import pytest
import torch

from invlab.errors import ConfigError
from invlab.transforms import (
    ColorJitter,
    Compose,
    GaussianBlur,
    HorizontalFlip,
    RandomApply,
    RandomResizedCrop,
    Rotate,
)
from invlab.transforms.video import (
    ClipPairs,
    FrameShuffle,
    Reverse,
    Spatial,
    TemporalCrop,
    build_temporal,
    build_video_pipeline,
    clips_of,
    frames_of,
)


def _clip(b=4, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, 20, 20, generator=g)


def test_frames_round_trip():
    x = _clip()
    f = frames_of(x)
    assert f.shape == (24, 3, 20, 20) and torch.equal(f[7], x[1, :, 1])
    assert torch.equal(clips_of(f, 6), x)


@pytest.mark.parametrize("image_transform", [
    Compose([RandomResizedCrop(12, scale=(0.2, 1.0)), HorizontalFlip(), RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), 0.8)]),
    Rotate(),
    GaussianBlur(kernel_size=5),
])
def test_spatial_is_one_draw_per_clip_identical_over_frames(image_transform):
    t = Spatial(image_transform)
    x = _clip()
    params = t.sample(4, torch.Generator().manual_seed(1), size=(20, 20))
    assert all(v.shape[0] == 4 for v in params.values())
    y = t.apply(x, params)
    for f in range(6):  # each frame equals the image transform applied with the clip's parameters
        assert torch.allclose(y[:, :, f], image_transform.apply(x[:, :, f], params), atol=1e-6)
    still = x[:, :, :1].expand(-1, -1, 6, -1, -1).contiguous()  # a clip of one repeated frame
    z = t.apply(still, params)
    assert torch.equal(z, z[:, :, :1].expand_as(z))


def test_temporal_crop_indices_speed_and_bounds():
    t = TemporalCrop(3, strides=(1, 2))
    idx = t.indices(10, {"start": torch.tensor([0.0, 1.0, 0.5, 1.0]), "speed": torch.tensor([0, 0, 1, 1])})
    assert idx.tolist() == [[0, 1, 2], [7, 8, 9], [2, 4, 6], [5, 7, 9]]
    x = torch.arange(10.0).view(1, 1, 10, 1, 1).expand(4, 2, 10, 3, 3)
    y = t.apply(x, {"start": torch.tensor([0.0, 1.0, 0.5, 1.0]), "speed": torch.tensor([0, 0, 1, 1])})
    assert y[:, 0, :, 0, 0].tolist() == idx.float().tolist()
    half = TemporalCrop().indices(10, {"start": torch.tensor([1.0]), "speed": torch.tensor([0])})
    assert half.tolist() == [[5, 6, 7, 8, 9]]  # no length: half the window
    short = t.indices(2, {"start": torch.tensor([0.3]), "speed": torch.tensor([1])})
    assert short.tolist() == [[0, 1, 1]]  # last frame repeated
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        t.apply(torch.zeros(2, 3, 4, 4), t.sample(2))


def test_reverse_and_shuffle():
    x = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(2, 1, 5, 2, 2)
    y = Reverse().apply(x, {"reverse": torch.tensor([True, False])})
    assert y[0, 0, :, 0, 0].tolist() == [4, 3, 2, 1, 0] and torch.equal(y[1], x[1])
    s = FrameShuffle(p=1.0)
    params = s.sample(2, torch.Generator().manual_seed(0))
    z = s.apply(x, params)
    order = z[:, 0, :, 0, 0]
    assert sorted(order[0].tolist()) == [0, 1, 2, 3, 4] and order[0].tolist() != [0, 1, 2, 3, 4]
    assert torch.equal(s.apply(x, params), z)  # replayable from the recorded key
    off = s.apply(x, {"shuffle": torch.tensor([False, False]), "key": params["key"]})
    assert torch.equal(off, x)


def _pairs():
    return build_video_pipeline([{"name": "temporal_crop", "length": 4, "strides": [1, 2]}, "reverse"],
                                [{"name": "crop", "size": 16}, "hflip", {"name": "jitter", "brightness": 0.4, "p": 0.8}])


@pytest.mark.parametrize("shared", [["spatial"], ["temporal"], ["crop", "reverse"], []])
def test_pairs_share_exactly_the_named_parameters(shared):
    pairs = _pairs()
    a, b = pairs.sample_pair(64, torch.Generator().manual_seed(0), (20, 20), shared)
    assert set(a) == set(b)

    def is_shared(key):
        fam, step = key.split(".")[:2]
        return fam in shared or step in shared

    for k in a:
        if is_shared(k):
            assert torch.equal(a[k], b[k]), k
        elif a[k].dtype == torch.bool or a[k].dtype == torch.long:
            assert not torch.equal(a[k], b[k]) or a[k].unique().numel() == 1, k
        else:
            assert not torch.allclose(a[k], b[k]), k


def test_spatial_contrast_pair_shares_appearance_temporal_pair_shares_frames():
    pairs = _pairs()
    x = _clip(8, 10)
    g = torch.Generator().manual_seed(3)
    a, b = pairs.sample_pair(8, g, (20, 20), ["temporal"])  # TC: same frames
    ta = pairs.temporal.steps()[0][1].indices(10, {"start": a["temporal.temporal_crop.start"],
                                                   "speed": a["temporal.temporal_crop.speed"]})
    tb = pairs.temporal.steps()[0][1].indices(10, {"start": b["temporal.temporal_crop.start"],
                                                   "speed": b["temporal.temporal_crop.speed"]})
    assert torch.equal(ta, tb)
    a, b = pairs.sample_pair(8, g, (20, 20), ["spatial"])  # SC: same augmentation, other frames
    va, vb = pairs.apply(x, a), pairs.apply(x, b)
    assert va.shape == vb.shape == (8, 3, 4, 16, 16)
    # replaying b's temporal draw with a's spatial draw gives b exactly
    mixed = {**a, **{k: v for k, v in b.items() if k.startswith("temporal.")}}
    assert torch.allclose(pairs.apply(x, mixed), vb)


def test_bad_specs():
    with pytest.raises(ConfigError, match=r"augment.temporal\[0\]: unknown temporal transform 'crop'"):
        build_video_pipeline(["crop"], [])
    with pytest.raises(ConfigError, match="unknown option 'size'"):
        build_temporal([{"name": "temporal_crop", "size": 3}])
    with pytest.raises(ConfigError, match="cannot share 'blur'"):
        _pairs().sample_pair(2, None, (20, 20), ["blur"])
    assert isinstance(_pairs(), ClipPairs)


def test_build_video_transform():
    from invlab.transforms.video import build_video_transform

    assert isinstance(build_video_transform("reverse"), Reverse)
    assert isinstance(build_video_transform({"name": "temporal_crop", "length": 2}), TemporalCrop)
    s = build_video_transform({"name": "rotate", "degrees": [0, 90]})
    assert isinstance(s, Spatial) and s.name == "rotate"
    t = Reverse()
    assert build_video_transform(t) is t
    with pytest.raises(ConfigError, match="unknown transform"):
        build_video_transform("nope")
