import numpy as np
import pytest

from invlab.data.video import (
    ControlledVideos,
    class_folder_split,
    hmdb51_split,
    ucf101_split,
    video_split,
    write_hmdb51,
    write_ucf101,
)
from invlab.errors import DataError

MOTIONS = ["right", "up", "grow"]


@pytest.fixture(scope="module")
def sets():
    train = ControlledVideos(9, num_frames=6, image_size=16, motions=MOTIONS)
    test = ControlledVideos(6, num_frames=6, image_size=16, motions=MOTIONS, split="test")
    return train, test


@pytest.fixture(scope="module")
def ucf(sets, tmp_path_factory):
    return write_ucf101(tmp_path_factory.mktemp("ucf") / "UCF101", *sets)


@pytest.fixture(scope="module")
def hmdb(sets, tmp_path_factory):
    return write_hmdb51(tmp_path_factory.mktemp("hmdb") / "hmdb51", *sets, unused=1)


def test_ucf101_split_files(ucf, sets):
    train, test = ucf101_split(ucf, "train"), ucf101_split(ucf, "test")
    assert train.classes == ["Right", "Up", "Grow"]
    assert len(train) == 9 and len(test) == 6
    assert np.array_equal(train.labels, sets[0].motion_labels)
    assert np.array_equal(test.labels, sets[1].motion_labels)  # test labels from the class folder
    assert all(p.is_file() and p.parent.name == train.classes[lab] for p, lab in zip(train.paths, train.labels))
    assert len(video_split("ucf101", ucf, "test")) == 6


def test_ucf101_split_folder_elsewhere(ucf, tmp_path):
    other = tmp_path / "ucfTrainTestlist"
    other.mkdir()
    for f in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        (other / f).write_text((ucf / f).read_text())
    assert len(ucf101_split(ucf, "train", splits=other)) == 9


def _copy_ucf(ucf, tmp_path, **replace):
    import shutil

    root = tmp_path / "u"
    shutil.copytree(ucf, root)
    for name, text in replace.items():
        (root / name.replace("_txt", ".txt")).write_text(text)
    return root


def test_malformed_ucf101_split_files_name_file_and_line(ucf, tmp_path):
    first = (ucf / "trainlist01.txt").read_text().splitlines()[0]
    rel, lab = first.split()
    cases = {
        "classInd_txt": ("1 Right\n3 Up\n2 Grow\n", r"classInd.txt, line 2: class index 3 out of order"),
        "trainlist01_txt": (f"{rel} 7\n", r"trainlist01.txt, line 1: label '7' is not a class index"),
    }
    for key, (text, msg) in cases.items():
        root = _copy_ucf(ucf, tmp_path / key, **{key: text})
        with pytest.raises(DataError, match=msg):
            ucf101_split(root, "train")
    wrong = 1 + (int(lab) % 3)
    root = _copy_ucf(ucf, tmp_path / "mismatch", trainlist01_txt=f"{rel} {wrong}\n")
    with pytest.raises(DataError, match=r"line 1: label .* but the file is in folder"):
        ucf101_split(root, "train")
    root = _copy_ucf(ucf, tmp_path / "missing", testlist01_txt="Right/v_Right_g01_c99.mp4\n")
    with pytest.raises(DataError, match=r"testlist01.txt, line 1: video .*c99.mp4 does not exist"):
        ucf101_split(root, "test")
    root = _copy_ucf(ucf, tmp_path / "badclass", testlist01_txt="Nope/x.mp4\n")
    with pytest.raises(DataError, match=r"testlist01.txt, line 1: 'Nope/x.mp4' is not"):
        ucf101_split(root, "test")
    with pytest.raises(DataError, match="no split files"):
        ucf101_split(tmp_path, "train")
    with pytest.raises(DataError, match="does not exist"):
        ucf101_split(tmp_path / "nothing", "train")


def test_hmdb51_split_files(hmdb, sets):
    train, test = hmdb51_split(hmdb, "train"), hmdb51_split(hmdb, "test")
    assert train.classes == ["grow", "right", "up"]  # sorted split-file names
    assert len(test) == 6 and len(train) == 9 - 3  # one unused (tag 0) per class
    names = [sets[1].motion_classes[i] for i in sets[1].motion_labels]
    assert sorted(test.classes[i] for i in test.labels) == sorted(names)
    bad = hmdb / "splits" / "up_test_split1.txt"
    keep = bad.read_text()
    try:
        bad.write_text("clip.avi 3\n")
        with pytest.raises(DataError, match=r"up_test_split1.txt, line 1: expected '<file> <0\|1\|2>'"):
            hmdb51_split(hmdb, "train")
    finally:
        bad.write_text(keep)


def test_class_folders(ucf, tmp_path):
    train, test = class_folder_split(ucf, "train", 0.6), class_folder_split(ucf, "test", 0.6)
    assert train.classes == ["Grow", "Right", "Up"]
    assert len(train) + len(test) == 15 and not set(train.paths) & set(test.paths)
    assert class_folder_split(ucf, "train", 0.6).paths == train.paths  # seeded
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ucf, copy)
    (copy / "Up" / "notes.txt").write_text("not a video")
    (copy / "Up" / ".DS_Store").write_bytes(b"\0")
    assert len(class_folder_split(copy, "train", 0.6)) == len(train)  # ignored
    empty = tmp_path / "e"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="contains no videos"):
        class_folder_split(empty)
    with pytest.raises(DataError, match="unknown video layout"):
        video_split("kinetics", ucf, "train")
