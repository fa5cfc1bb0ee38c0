"""Video data set layouts: UCF101, HMDB51 and plain class folders, with their official
split files. Each parser returns a :class:`VideoList` per split (paths, labels, class
names); decoding happens later (:mod:`invlab.data.video.decoded`).

- **UCF101**: ``root/<Class>/v_<Class>_gGG_cCC.avi``; split files ``classInd.txt``
  (``"1 ApplyEyeMakeup"``), ``trainlist0N.txt`` (``"<Class>/<file> <label>"``, 1-based
  label) and ``testlist0N.txt`` (``"<Class>/<file>"``), in ``root``, ``root/ucfTrainTestlist``
  or a folder given as ``splits``.
- **HMDB51**: ``root/<class>/<file>.avi`` (or ``root/videos/<class>/``); per-class split
  files ``<class>_test_splitN.txt`` with lines ``"<file> <tag>"`` (1 = training,
  2 = testing, 0 = not used in this split), in ``root/splits``,
  ``root/testTrainMulti_7030_splits`` or ``splits``.
- **class folders**: ``root/<class>/<video>`` (every class folder one class, names
  sorted), either one folder split by ``train_fraction`` with a seed, or
  ``root/train/<class>`` and ``root/test/<class>``.

Every malformed split file raises a :class:`~invlab.errors.DataError` naming the file
and line; a listed video that does not exist is named too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from invlab.data.video.io import VIDEO_EXTENSIONS
from invlab.errors import DataError

__all__ = ["VideoList", "ucf101_split", "hmdb51_split", "class_folder_split", "VIDEO_LAYOUTS", "video_split"]


@dataclass
class VideoList:
    """Video files of one split: ``paths``, int64 ``labels`` (index into ``classes``)."""

    paths: list[Path]
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise DataError(f"{self.source}: {len(self.paths)} videos but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.paths)


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DataError(f"split file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text file ({err})") from None
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]


def _find_splits(root: Path, splits: str | Path | None, candidates: tuple[str, ...], probe: str) -> Path:
    if splits is not None:
        folder = Path(splits).expanduser()
        if not folder.is_dir():
            raise DataError(f"split folder {folder} does not exist")
        return folder
    for c in candidates:
        folder = root / c if c else root
        if folder.is_dir() and any(folder.glob(probe)):
            return folder
    where = ", ".join(str(root / c) if c else str(root) for c in candidates)
    raise DataError(f"no split files ({probe}) found in {where}; set data.splits to the folder that holds them")


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of videos")
    return root


def _existing(paths: list[Path], listed_in: Path, lines: list[int]) -> None:
    for p, n in zip(paths, lines):
        if not p.is_file():
            raise DataError(f"{listed_in}, line {n}: video {p} does not exist; fix the split file or data.root")


def ucf101_split(root: str | Path, split: str = "train", fold: int = 1, splits: str | Path | None = None) -> VideoList:
    """The ``split`` (``train`` or ``test``) of UCF101 fold ``fold`` (1-3)."""
    root = _check_root(root)
    if split not in ("train", "test"):
        raise DataError(f"UCF101 split must be 'train' or 'test', got {split!r}")
    folder = _find_splits(root, splits, ("", "ucfTrainTestlist", "splits"), "classInd.txt")
    ind = folder / "classInd.txt"
    classes: list[str] = []
    for n, line in _lines(ind):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{ind}, line {n}: expected '<index> <ClassName>', got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise DataError(f"{ind}, line {n}: class index {parts[0]} out of order (expected {len(classes) + 1})")
        classes.append(parts[1])
    if len(classes) < 2:
        raise DataError(f"{ind}: needs at least 2 classes, found {len(classes)}")
    lookup = {c: i for i, c in enumerate(classes)}
    lst = folder / f"{split}list{fold:02d}.txt"
    paths, labels, numbers = [], [], []
    for n, line in _lines(lst):
        parts = line.split()
        rel = parts[0]
        cls = rel.replace("\\", "/").split("/")[0]
        if "/" not in rel.replace("\\", "/") or cls not in lookup:
            raise DataError(f"{lst}, line {n}: {rel!r} is not '<Class>/<file>' with a class from {ind.name}")
        label = lookup[cls]
        if len(parts) > 2 or (split == "test" and len(parts) != 1 and len(parts) != 2):
            raise DataError(f"{lst}, line {n}: expected '<Class>/<file>[ <label>]', got {line!r}")
        if len(parts) == 2:
            if not parts[1].isdigit() or not 1 <= int(parts[1]) <= len(classes):
                raise DataError(f"{lst}, line {n}: label {parts[1]!r} is not a class index 1..{len(classes)}")
            if int(parts[1]) - 1 != label:
                raise DataError(f"{lst}, line {n}: label {parts[1]} is {classes[int(parts[1]) - 1]!r} in "
                                f"{ind.name} but the file is in folder {cls!r}")
        paths.append(root / rel.replace("\\", "/"))
        labels.append(label)
        numbers.append(n)
    if not paths:
        raise DataError(f"{lst}: lists no videos")
    _existing(paths, lst, numbers)
    return VideoList(paths, np.asarray(labels), classes, f"ucf101[{split}, fold {fold}] {root}")


def hmdb51_split(root: str | Path, split: str = "train", fold: int = 1, splits: str | Path | None = None) -> VideoList:
    """The ``split`` (``train`` or ``test``) of HMDB51 fold ``fold`` (1-3); tag-0 videos
    are in neither."""
    root = _check_root(root)
    if split not in ("train", "test"):
        raise DataError(f"HMDB51 split must be 'train' or 'test', got {split!r}")
    folder = _find_splits(root, splits, ("splits", "testTrainMulti_7030_splits", ""), f"*_test_split{fold}.txt")
    files = sorted(folder.glob(f"*_test_split{fold}.txt"))
    classes = [f.name[: -len(f"_test_split{fold}.txt")] for f in files]
    if len(classes) < 2:
        raise DataError(f"{folder}: needs split files of at least 2 classes for fold {fold}, found {len(classes)}")
    videos = root / "videos" if (root / "videos").is_dir() and not (root / classes[0]).is_dir() else root
    want = "1" if split == "train" else "2"
    paths, labels, numbers, listed = [], [], [], []
    for label, (cls, f) in enumerate(zip(classes, files)):
        for n, line in _lines(f):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{f}, line {n}: expected '<file> <0|1|2>', got {line!r}")
            if parts[1] == want:
                paths.append(videos / cls / parts[0])
                labels.append(label)
                numbers.append(n)
                listed.append(f)
    if not paths:
        raise DataError(f"{folder}: fold {fold} lists no {split} videos (tag {want})")
    for p, n, f in zip(paths, numbers, listed):
        if not p.is_file():
            raise DataError(f"{f}, line {n}: video {p} does not exist; fix the split file or data.root")
    return VideoList(paths, np.asarray(labels), classes, f"hmdb51[{split}, fold {fold}] {root}")


def _scan(folder: Path) -> tuple[list[Path], list[int], list[str]]:
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no class sub-folders; expected {folder}/<class>/<video>")
    paths, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).rglob("*")
                       if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))
        if not found:
            raise DataError(f"class folder {folder / name} contains no videos ({', '.join(VIDEO_EXTENSIONS)})")
        paths += found
        labels += [label] * len(found)
    return paths, labels, classes


def class_folder_split(root: str | Path, split: str = "train", train_fraction: float = 0.7, seed: int = 0) -> VideoList:
    """``root/train/<class>`` and ``root/test/<class>`` if present; otherwise every
    video of ``root/<class>`` split per class by ``train_fraction`` (seeded)."""
    root = _check_root(root)
    if split not in ("train", "test"):
        raise DataError(f"class-folder split must be 'train' or 'test', got {split!r}")
    if (root / "train").is_dir() and (root / "test").is_dir():
        paths, labels, classes = _scan(root / split)
        other = _scan(root / ("test" if split == "train" else "train"))[2]
        if other != classes:
            raise DataError(f"{root}: train and test hold different class folders ({classes} vs {other})")
        return VideoList(paths, np.asarray(labels), classes, f"video folders[{split}] {root}")
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    paths, labels, classes = _scan(root)
    labels_arr = np.asarray(labels)
    keep = []
    rng = np.random.default_rng(seed)
    for c in range(len(classes)):
        idx = np.flatnonzero(labels_arr == c)
        order = rng.permutation(idx)
        k = int(round(train_fraction * len(idx)))
        keep += sorted(order[:k] if split == "train" else order[k:])
    keep_arr = np.asarray(sorted(keep), dtype=np.int64)
    return VideoList([paths[i] for i in keep_arr], labels_arr[keep_arr], classes, f"video folders[{split}] {root}")


VIDEO_LAYOUTS = ("ucf101", "hmdb51", "folders")


def video_split(layout: str, root: str | Path, split: str, fold: int = 1, splits: str | Path | None = None,
                train_fraction: float = 0.7, seed: int = 0) -> VideoList:
    """One split of a video data set in ``layout`` (``ucf101``, ``hmdb51``, ``folders``)."""
    if layout == "ucf101":
        return ucf101_split(root, split, fold, splits)
    if layout == "hmdb51":
        return hmdb51_split(root, split, fold, splits)
    if layout == "folders":
        return class_folder_split(root, split, train_fraction, seed)
    raise DataError(f"unknown video layout {layout!r}; use one of {', '.join(VIDEO_LAYOUTS)}")
