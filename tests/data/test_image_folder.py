"""Image folders: decode once, cache, and fail clearly on bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from invlab.data import load_image_folder
from invlab.data.image_folder import scan_image_folder
from invlab.errors import DataError


def _save(path, mode="RGB", size=(8, 8), value=100, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        arr = np.full(size[::-1], value * 200, dtype=np.uint16)
        Image.fromarray(arr).save(path)  # uint16 -> mode I;16
        return
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    arr = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(arr, mode=mode).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    for c, cls in enumerate(["cat", "dog"]):
        for i in range(3):
            _save(root / cls / f"{i}.png", value=40 * c + i)
    (root / "dog" / "notes.txt").write_text("not an image")  # ignored
    return root


def test_loads_labels_classes_and_pixels(folder):
    arr = load_image_folder(folder, progress=False)
    assert arr.images.shape == (6, 3, 8, 8) and arr.images.dtype == np.uint8
    assert arr.classes == ["cat", "dog"] and arr.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert arr.images[4, 0, 0, 0] == 41


def test_second_load_comes_from_the_cache(folder, monkeypatch):
    load_image_folder(folder, progress=False)
    import invlab.data.image_folder as mod

    monkeypatch.setattr(mod, "decode_image", lambda *a, **k: pytest.fail("decoded again"))
    arr = load_image_folder(folder, progress=False)
    assert len(arr) == 6
    mm = load_image_folder(folder, progress=False, cache="mmap")
    assert isinstance(mm.images, np.memmap) and np.array_equal(np.asarray(mm.images), arr.images)


def test_changed_file_invalidates_the_cache(folder):
    load_image_folder(folder, progress=False)
    _save(folder / "cat" / "0.png", value=200)
    assert load_image_folder(folder, progress=False).images[0, 0, 0, 0] == 200


def test_corrupt_jpeg_names_the_file(folder):
    bad = folder / "cat" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg: cannot decode image"):
        load_image_folder(folder, progress=False)


def test_truncated_jpeg_names_the_file(folder, tmp_path):
    good = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(good, quality=95)
    data = good.read_bytes()
    (folder / "dog" / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg: cannot decode"):
        load_image_folder(folder, progress=False)


def test_empty_class_folder_is_named(folder):
    (folder / "bird").mkdir()
    with pytest.raises(DataError, match=r"class folder .*bird contains no images"):
        load_image_folder(folder, progress=False)


def test_no_class_folders_and_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    _save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        scan_image_folder(tmp_path / "flat")


@pytest.mark.parametrize("mode, label", [("L", "'L'"), ("RGBA", "'RGBA'"), ("I;16", "'I;16'")])
def test_unexpected_mode_in_an_rgb_set_names_the_file(folder, mode, label):
    _save(folder / "dog" / "odd.png", mode=mode)
    with pytest.raises(DataError, match=rf"odd\.png: image mode {label} but the data set is RGB"):
        load_image_folder(folder, progress=False)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_convert_mode_converts_instead(folder, mode):
    _save(folder / "dog" / "odd.png", mode=mode, value=120)
    arr = load_image_folder(folder, progress=False, convert_mode=True)
    assert arr.images.shape == (7, 3, 8, 8)
    odd = arr.images[arr.labels == 1][-1]
    assert (odd[0] == odd[1]).all()  # grey stays grey


def test_grey_data_set(tmp_path):
    for i in range(2):
        _save(tmp_path / "g" / "a" / f"{i}.png", mode="L")
    arr = load_image_folder(tmp_path / "g", channels=None, progress=False)
    assert arr.channels == 1


def test_mixed_sizes_name_the_file_unless_resizing(folder):
    _save(folder / "cat" / "big.png", size=(10, 12))
    with pytest.raises(DataError, match=r"big\.png: size 10x12 differs from 8x8"):
        load_image_folder(folder, progress=False)
    arr = load_image_folder(folder, size=8, progress=False)
    assert arr.images.shape == (7, 3, 8, 8)
