import logging

import numpy as np
import pytest

from invlab.data.video import (
    ControlledVideos,
    DecodedVideos,
    VideoList,
    decode_videos,
    read_video,
    ucf101_split,
    write_ucf101,
)
from invlab.errors import DataError


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    train = ControlledVideos(6, num_frames=10, image_size=32, motions=["right", "left"])
    test = ControlledVideos(2, num_frames=10, image_size=32, motions=["right", "left"], split="test")
    return write_ucf101(tmp_path_factory.mktemp("ucf") / "ucf", train, test), train


def test_decode_matches_the_files_and_caches(ucf):
    root, _ = ucf
    lst = ucf101_split(root, "train")
    d = decode_videos(lst, size=16, cache="memory", root=root)
    assert len(d) == 6 and d.frames.shape == (60, 3, 16, 16) and list(d.lengths) == [10] * 6
    assert d.names[0] == str(lst.paths[0].relative_to(root))
    direct = read_video(lst.paths[2], 16)
    assert np.array_equal(d.gather([2], np.arange(10)[None])[0], direct)
    again = decode_videos(lst, size=16, cache="mmap", root=root)  # served from the cache
    assert isinstance(again.frames, np.memmap) and np.array_equal(again.frames, d.frames)
    sub = decode_videos(lst, size=(8, 12), max_frames=3, frame_stride=2, cache="none")
    assert sub.frames.shape == (18, 3, 8, 12)
    assert np.array_equal(sub.gather([0], [[0, 1, 2]])[0], read_video(lst.paths[0], (8, 12))[:, 0:6:2])


def test_from_array_and_gather(ucf):
    _, train = ucf
    arr = train.to_video_array()
    d = DecodedVideos.from_array(arr)
    expected = np.stack([arr.videos[1][:, [0, 2, 4]], arr.videos[4][:, [9, 8, 7]]])
    assert np.array_equal(d.gather([1, 4], [[0, 2, 4], [9, 8, 7]]), expected)
    with pytest.raises(IndexError):
        d.gather([0], [[10]])
    s = d.select([5, 0])
    assert np.array_equal(s.gather([0], [[3]]), d.gather([5], [[3]]))


def _with_bad_files(root, tmp_path):
    lst = ucf101_split(root, "train")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    junk = bad_dir / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    cut = bad_dir / "cut.mp4"
    cut.write_bytes(lst.paths[0].read_bytes()[:300])
    paths = [lst.paths[0], junk, lst.paths[1], cut]
    return VideoList(paths, np.array([0, 1, 0, 1]), lst.classes, "mixed")


def test_bad_file_raises_naming_it_by_default(ucf, tmp_path):
    lst = _with_bad_files(ucf[0], tmp_path)
    with pytest.raises(DataError, match=r"junk\.mp4|cut\.mp4"):
        decode_videos(lst, size=16, cache="none", workers=1)


def test_bad_files_skipped_with_a_warning_each(ucf, tmp_path, caplog):
    lst = _with_bad_files(ucf[0], tmp_path)
    with caplog.at_level(logging.WARNING, logger="invlab.data.video"):
        d = decode_videos(lst, size=16, cache="memory", on_error="skip")
    assert len(d) == 2 and list(d.labels) == [0, 0]
    assert len(d.skipped) == 2 and any("junk.mp4" in s for s in d.skipped) and any("cut.mp4" in s for s in d.skipped)
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("junk.mp4" in m for m in msgs) == 1 and sum("cut.mp4" in m for m in msgs) == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="invlab.data.video"):
        again = decode_videos(lst, size=16, cache="memory", on_error="skip")  # cached: still warned
    assert len(again) == 2 and sum("junk.mp4" in r.getMessage() for r in caplog.records) == 1


def test_all_bad_and_bad_options(ucf, tmp_path):
    lst = _with_bad_files(ucf[0], tmp_path)
    only_bad = VideoList([lst.paths[1], lst.paths[3]], np.array([0, 1]), lst.classes, "bad")
    with pytest.raises(DataError, match="none of the 2 videos could be decoded"):
        decode_videos(only_bad, size=16, cache="none", on_error="skip")
    with pytest.raises(DataError, match="on_error"):
        decode_videos(lst, on_error="ignore")
