import numpy as np
import pytest
import torch

from invlab.data.video import ControlledVideos, read_video, write_hmdb51, write_ucf101
from invlab.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return ControlledVideos(96, num_frames=8, image_size=32, motions=["static", "right", "left", "up", "down",
                                                                       "rotate_ccw", "rotate_cw", "grow", "shrink",
                                                                       "brighten", "darken", "track"])


def test_shapes_dtypes_and_factors(small):
    x = small.render(range(5))
    assert x.shape == (5, 3, 8, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    u = small.videos([3, 1])
    assert u.dtype == torch.uint8 and u.shape == (2, 3, 8, 32, 32)
    assert torch.equal(u[1], small.videos([1])[0])
    f = small.factors
    for key in ("appearance", "motion", "object", "colour", "texture", "background", "instance", "speed"):
        assert f[key].shape == (96,)
    for key in ("x", "y", "angle", "scale", "brightness"):
        assert f[f"frame.{key}"].shape == (96, 8)
    arr = small.to_video_array("appearance")
    assert arr.videos.shape == (96, 3, 8, 32, 32) and arr.classes == small.appearance_classes
    assert np.array_equal(arr.labels, small.appearance_labels)
    assert np.array_equal(arr.videos[:5], small.videos(range(5)).numpy())


def test_deterministic_and_motion_twins():
    a = ControlledVideos(24, num_frames=6, image_size=16)
    b = ControlledVideos(24, num_frames=6, image_size=16)
    assert torch.equal(a.videos(range(24)), b.videos(range(24)))
    twin = a.variant(motion_seed=1)
    for key in ("appearance", "motion", "object", "colour", "texture", "background", "instance"):
        assert np.array_equal(a.factors[key], twin.factors[key]), key
    assert not np.allclose(a.factors["frame.x"], twin.factors["frame.x"])
    other = ControlledVideos(24, num_frames=6, image_size=16, content_seed=1)
    assert not np.array_equal(a.appearance_labels, other.appearance_labels)
    test = ControlledVideos(24, num_frames=6, image_size=16, split="test")
    assert not np.array_equal(a.background_ids, test.background_ids)


def test_appearance_and_motion_are_independent_balanced_labels():
    d = ControlledVideos(8 * 8 * 25, num_frames=2, image_size=16, num_classes=8)
    table = np.zeros((8, 8))
    np.add.at(table, (d.appearance_labels, d.motion_labels), 1)
    assert (table.sum(0) == 200).all() and (table.sum(1) == 200).all()
    chi2 = ((table - 25.0) ** 2 / 25.0).sum()
    assert chi2 < 93.0  # df = 49: the 0.9999 quantile; a dependent draw would be far larger


def test_appearance_combines_the_named_factors():
    d = ControlledVideos(60, num_frames=2, image_size=16, num_classes=3, appearance=["object", "colour"], num_colours=4)
    assert len(d.appearance_classes) == 12
    assert np.array_equal(d.appearance_labels, d.object_ids * 4 + d.colour_ids)
    name = d.appearance_classes[int(d.appearance_labels[0])]
    assert name == f"{d.object_names[d.object_ids[0]]}-{d.colour_names[d.colour_ids[0]]}"


def _by_motion(d, name):
    return np.flatnonzero(d.motion_labels == d.motion_classes.index(name))


def test_frame_factors_follow_the_motion_class(small):
    f = small.factors
    step = lambda key, rows: np.diff(f[key][rows], axis=1)  # noqa: E731
    assert (step("frame.x", _by_motion(small, "right")) > 0).all()
    assert (step("frame.x", _by_motion(small, "left")) < 0).all()
    assert (step("frame.y", _by_motion(small, "down")) > 0).all()
    assert (step("frame.y", _by_motion(small, "up")) < 0).all()
    assert (step("frame.angle", _by_motion(small, "rotate_ccw")) > 0).all()
    assert (step("frame.angle", _by_motion(small, "rotate_cw")) < 0).all()
    assert (step("frame.scale", _by_motion(small, "grow")) > 0).all()
    assert (step("frame.scale", _by_motion(small, "shrink")) < 0).all()
    assert (step("frame.brightness", _by_motion(small, "brighten")) > 0).all()
    assert (step("frame.brightness", _by_motion(small, "darken")) < 0).all()
    static = _by_motion(small, "static")
    for key in ("x", "y", "angle", "scale", "brightness"):
        assert np.allclose(step(f"frame.{key}", static), 0)
    track = _by_motion(small, "track")
    for key in ("angle", "scale", "brightness"):  # all three change, monotonically
        s = np.sign(step(f"frame.{key}", track))
        assert (s != 0).all() and (s == s[:, :1]).all()
    # paths stay in the frame
    assert f["frame.x"].min() >= 0 and f["frame.x"].max() <= 32


def test_rendered_object_moves_as_recorded():
    d = ControlledVideos(16, num_frames=8, image_size=48, motions=["right", "down"], num_textures=1,
                         speed=(1.0, 1.0))
    x = d.render(range(16))
    bg = d._backgrounds[torch.from_numpy(d.background_ids)].float().div(255.0)  # (16, 3, S, S)
    light = torch.from_numpy(d.factors["frame.brightness"]).view(16, 1, 8, 1, 1)
    diff = (x - (bg.unsqueeze(2) * light).clamp(0, 1)).abs().sum(1)  # (16, 8, S, S): where the object is
    ys, xs = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    mass = diff.sum((-1, -2))
    cx = (diff * xs).sum((-1, -2)) / mass
    cy = (diff * ys).sum((-1, -2)) / mass
    fx, fy = torch.from_numpy(d.factors["frame.x"]), torch.from_numpy(d.factors["frame.y"])
    # the displacement between first and last frame matches the recorded one within 2 px
    assert torch.allclose(cx[:, -1] - cx[:, 0], fx[:, -1] - fx[:, 0], atol=2.0)
    assert torch.allclose(cy[:, -1] - cy[:, 0], fy[:, -1] - fy[:, 0], atol=2.0)


def test_tracks_share_an_instance():
    d = ControlledVideos(40, num_frames=4, image_size=16, motions=["track"], num_classes=5, tracks_per_instance=4)
    f = d.factors
    assert np.array_equal(f["instance"], np.arange(40) // 4)
    for key in ("object", "colour", "texture", "background", "appearance"):
        per = f[key].reshape(10, 4)
        assert (per == per[:, :1]).all(), key
    assert len(np.unique(f["frame.angle"][:4, 0])) == 4  # different trajectories
    assert len(np.unique(f["object"])) == 5  # categories: several instances each


def test_grey_videos():
    d = ControlledVideos(4, num_frames=3, image_size=16, channels=1)
    assert d.render(range(4)).shape == (4, 1, 3, 16, 16)


@pytest.mark.parametrize("kwargs, words", [
    ({"motions": ["sideways"]}, "motions"),
    ({"appearance": ["shape"]}, "appearance"),
    ({"num_videos": 0}, "num_videos"),
    ({"speed": (1.0, 0.5)}, "speed"),
    ({"num_textures": 9}, "num_textures"),
    ({"num_classes": 1}, "classes"),
])
def test_bad_options(kwargs, words):
    kwargs = {"num_videos": 4, **kwargs}
    with pytest.raises(ConfigError, match=words):
        ControlledVideos(**kwargs)


def test_index_out_of_range(small):
    with pytest.raises(IndexError):
        small.render([96])


def test_ucf101_layout_round_trip(tmp_path):
    train = ControlledVideos(6, num_frames=8, image_size=32, motions=["right", "rotate_ccw"], num_textures=1)
    test = ControlledVideos(4, num_frames=8, image_size=32, motions=["right", "rotate_ccw"], num_textures=1,
                            split="test")
    root = write_ucf101(tmp_path / "ucf", train, test, label="motion")
    assert (root / "classInd.txt").read_text() == "1 Right\n2 RotateCcw\n"
    lines = (root / "trainlist01.txt").read_text().splitlines()
    assert len(lines) == 6
    rel, lab = lines[0].split()
    cls, fname = rel.split("/")
    assert fname.startswith(f"v_{cls}_g") and fname.endswith(".mp4") and int(lab) == train.motion_labels[0] + 1
    assert 8 <= int(fname.split("_g")[1][:2]) <= 25
    test_lines = (root / "testlist01.txt").read_text().splitlines()
    assert len(test_lines) == 4 and all(len(t.split()) == 1 for t in test_lines)
    assert all(1 <= int(t.split("_g")[1][:2]) <= 7 for t in test_lines)
    decoded = read_video(root / rel)
    original = train.videos([0])[0].numpy()
    assert decoded.shape == original.shape == (3, 8, 32, 32)
    err = np.abs(decoded.astype(np.float64) - original).mean()
    assert err < 12.0, err  # lossy H.264 + 4:2:0 chroma, but the same video


def test_hmdb51_layout(tmp_path):
    train = ControlledVideos(6, num_frames=4, image_size=16, motions=["rotate_cw", "grow"])
    test = ControlledVideos(2, num_frames=4, image_size=16, motions=["rotate_cw", "grow"], split="test")
    root = write_hmdb51(tmp_path / "hmdb", train, test, unused=1)
    files = sorted(p.name for p in (root / "splits").iterdir())
    assert files == ["grow_test_split1.txt", "rotate_cw_test_split1.txt"]
    tags = [line.split()[1] for f in files for line in (root / "splits" / f).read_text().splitlines()]
    assert tags.count("2") == 2 and tags.count("0") == 2 and tags.count("1") == 4
    assert len(list((root / "videos").rglob("*.avi"))) == 8
