import numpy as np
import pytest

from invlab.data.video import probe_video, read_video, write_video
from invlab.errors import DataError


def _video(t=10, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (3, 1, h // 8, w // 8)).astype(np.float64)
    v = np.repeat(np.repeat(base, 8, 2), 8, 3)  # blocky, so H.264 keeps it well
    v = np.repeat(v, t, 1) + np.arange(t).reshape(1, t, 1, 1) * 8
    return np.clip(v, 0, 255).astype(np.uint8)


def test_write_read_round_trip(tmp_path):
    v = _video()
    path = write_video(tmp_path / "a.mp4", v, fps=10)
    info = probe_video(path)
    assert (info.frames, info.height, info.width) == (10, 32, 48) and info.fps == pytest.approx(10)
    back = read_video(path)
    assert back.shape == v.shape and back.dtype == np.uint8
    assert np.abs(back.astype(float) - v).mean() < 6
    assert read_video(path, max_frames=4).shape == (3, 4, 32, 48)
    assert read_video(path, size=16).shape == (3, 10, 16, 24)  # shorter side 16, aspect kept
    assert read_video(path, size=(8, 8)).shape == (3, 10, 8, 8)
    assert read_video(path, channels=1).shape == (1, 10, 32, 48)


def test_write_rejects_odd_sizes_and_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "a.mp4", np.zeros((3, 2, 31, 32), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((3, 2, 32, 32), np.float32))


def test_missing_empty_and_garbage_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4.*empty"):
        read_video(empty)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(DataError, match=r"junk\.avi"):
        read_video(junk)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_truncated_file_names_the_file(tmp_path, keep, suffix):
    path = write_video(tmp_path / f"t{suffix}", _video(t=30, seed=1), fps=10)
    data = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=f"cut\\{suffix}"):
        read_video(cut)
