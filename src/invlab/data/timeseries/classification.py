"""Labelled series for classification: UCR/UEA sets by name (those shipped inside aeon
load offline) or from local files: ``.ts`` (sktime/aeon format, univariate or
multivariate), ``.arff`` (univariate numeric attributes + a class attribute), UCR
``.tsv`` / ``.txt`` (one series per line, class label first; tabs, commas or spaces).

Every reader returns a :class:`LabelledSeries` with ``x (N, C, T)`` float32; a malformed
file raises :class:`~invlab.errors.DataError` naming the file, the line and the channel
or column. Two explicit policies:

- ``missing``: ``"error"`` (default) refuses NaN / ``?`` values, naming the first one;
  ``"ffill"`` fills gaps inside each series from the previous value (the first observed
  value fills leading gaps).
- ``unequal_length``: ``"error"`` (default) refuses series of different lengths, naming
  the shortest and longest cases; ``"pad"`` repeats each series' last value up to the
  longest length; ``"resample"`` linearly interpolates every series to the longest length.
  The common length is that of the longest series in *either* split (a decision about
  shapes only; no labels are involved), so train and test shapes agree.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from invlab.errors import DataError

__all__ = [
    "LabelledSeries", "aeon_dataset_names", "read_ts_file", "read_ucr_text_file", "read_arff_file",
    "read_labelled_file", "load_classification_split", "load_classification_pair", "equalise_lengths",
]

_MISSING_TOKENS = {"?", "nan", "NaN", "NAN", ""}


@dataclass
class LabelledSeries:
    """``x (N, C, T)`` float32, ``y (N,)`` int64 indices into ``classes``."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    name: str = ""
    source: str = ""
    lengths: np.ndarray | None = field(default=None, repr=False)  # original lengths before padding

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def length(self) -> int:
        return int(self.x.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# -- raw readers: (list of (C, T_i) float64 arrays, list of label strings) ---------------
def _number(token: str, where: str) -> float:
    token = token.strip()
    if token in _MISSING_TOKENS:
        return float("nan")
    try:
        value = float(token)
    except ValueError:
        raise DataError(f"{where}: {token!r} is not a number; fix the value (write a missing value as ? or NaN, "
                        "see data.missing)") from None
    if np.isinf(value):
        raise DataError(f"{where}: infinite value {token!r}; replace it by a number")
    return value


def read_ts_file(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Parse a ``.ts`` file (header lines ``@...``, ``#`` / ``%`` comments, then one case per line:
    channels separated by ``:``, values by ``,``, the class label last)."""
    path = Path(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    has_labels = True
    dims: int | None = None  # channels of the first case
    header_dims: int | None = None
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith(("#", "%")):
                continue
            if not in_data:
                low = line.lower()
                if low.startswith("@data"):
                    in_data = True
                elif low.startswith("@timestamps") and low.split()[-1] == "true":
                    raise DataError(f"{path}, line {lineno}: time-stamped .ts files are not supported")
                elif low.startswith("@classlabel"):
                    has_labels = low.split()[1] == "true" if len(low.split()) > 1 else True
                elif low.startswith("@dimensions"):
                    try:
                        header_dims = int(low.split()[1])
                    except (IndexError, ValueError):
                        raise DataError(f"{path}, line {lineno}: malformed @dimensions header") from None
                elif not line.startswith("@"):
                    raise DataError(f"{path}, line {lineno}: expected a header line (@...) before @data")
                continue
            parts = line.split(":")
            if has_labels:
                if len(parts) < 2:
                    raise DataError(f"{path}, line {lineno}: no class label (expected values:...:label)")
                if not parts[-1].strip():
                    raise DataError(f"{path}, line {lineno}: empty class label after the last ':'")
                labels.append(parts[-1].strip())
                parts = parts[:-1]
            if header_dims is not None and len(parts) != header_dims:
                raise DataError(f"{path}, line {lineno}: {len(parts)} channels, but the header says @dimensions {header_dims}")
            if dims is None:
                dims = len(parts)
            if len(parts) != dims:
                raise DataError(f"{path}, line {lineno}: {len(parts)} channels, earlier cases have {dims}; every case needs the same channels")
            channels = []
            for c, part in enumerate(parts):
                tokens = part.split(",")
                channels.append(
                    [_number(tok, f"{path}, line {lineno}, channel {c}, position {t}") for t, tok in enumerate(tokens)]
                )
            lengths = {len(ch) for ch in channels}
            if len(lengths) != 1:
                raise DataError(
                    f"{path}, line {lineno}: channels of one case have different lengths ({sorted(lengths)}); "
                    "every channel of a case must have the same number of values"
                )
            series.append(np.asarray(channels, dtype=np.float64))
    if not in_data:
        raise DataError(f"{path}: no @data section; is this a .ts file?")
    if not series:
        raise DataError(f"{path}: the @data section is empty")
    if not has_labels:
        raise DataError(f"{path}: has no class labels (@classLabel false); classification needs labels")
    return series, labels


def read_ucr_text_file(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Parse a UCR ``.tsv`` / ``.txt`` file: one univariate series per line, label first;
    values separated by tabs, commas or whitespace; ``NaN`` marks missing values (UCR pads
    unequal-length series with NaN at the end: trailing NaNs shorten the series)."""
    path = Path(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            tokens = [t for t in re.split(r"[\t,]|\s+", line) if t != ""]
            if len(tokens) < 2:
                raise DataError(f"{path}, line {lineno}: needs a label and at least one value")
            label = tokens[0]
            try:  # UCR labels are numbers written as floats ("1.0000000e+00") in the .txt files
                as_float = float(label)
                label = str(int(as_float)) if as_float.is_integer() else label
            except ValueError:
                pass
            values = np.array(
                [_number(tok, f"{path}, line {lineno}, column {t + 2} (value {t + 1}; the label is column 1)") for t, tok in enumerate(tokens[1:])],
                dtype=np.float64,
            )
            valid = np.flatnonzero(~np.isnan(values))
            if len(valid) == 0:
                raise DataError(f"{path}, line {lineno}: the series has no values")
            values = values[: valid[-1] + 1]  # trailing NaN = end of a shorter series
            labels.append(label)
            series.append(values[None, :])
    if not series:
        raise DataError(f"{path}: no series found")
    return series, labels


def read_arff_file(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Parse a univariate ``.arff`` file: numeric attributes then the class attribute last.
    Multivariate (relational) ARFF files are read through aeon."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if re.search(r"@attribute\s+\S+\s+relational", text, flags=re.IGNORECASE):
        return _read_with_aeon(path)
    series: list[np.ndarray] = []
    labels: list[str] = []
    attributes = 0
    in_data = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        low = line.lower()
        if not in_data:
            if low.startswith("@attribute"):
                attributes += 1
            elif low.startswith("@data"):
                in_data = True
            continue
        tokens = [t.strip().strip("'\"") for t in line.split(",")]
        if len(tokens) != attributes:
            raise DataError(f"{path}, line {lineno}: {len(tokens)} values, but the header declares {attributes} attributes; "
                            "every row needs one value per attribute")
        if len(tokens) < 2:
            raise DataError(f"{path}, line {lineno}: needs at least one numeric attribute before the class attribute")
        labels.append(tokens[-1])
        series.append(
            np.array([_number(tok, f"{path}, line {lineno}, attribute {t}") for t, tok in enumerate(tokens[:-1])])[None, :]
        )
    if not series:
        raise DataError(f"{path}: no @data rows found")
    return series, labels


def _read_with_aeon(path: Path) -> tuple[list[np.ndarray], list[str]]:
    try:
        from aeon.datasets import load_from_arff_file
    except ImportError:  # pragma: no cover - aeon is in the timeseries extra
        raise DataError(f"{path}: multivariate ARFF files need aeon (pip install 'invlab[timeseries]')") from None
    try:
        x, y = load_from_arff_file(str(path))
    except Exception as err:  # aeon raises many kinds; name the file either way
        raise DataError(f"{path}: aeon could not read this ARFF file ({type(err).__name__}: {err})") from None
    arrays = [np.asarray(a, dtype=np.float64) for a in x]
    return arrays, [str(v) for v in y]


_READERS = {".ts": read_ts_file, ".tsv": read_ucr_text_file, ".txt": read_ucr_text_file, ".arff": read_arff_file}


def read_labelled_file(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Dispatch on the file suffix (``.ts``, ``.tsv``, ``.txt``, ``.arff``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"data file {path} is a folder; name the .ts/.arff/.tsv/.txt file itself")
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use .ts, .arff, .tsv or .txt")
    try:
        return reader(path)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (cannot decode it as UTF-8)") from None


# -- policies -----------------------------------------------------------------------------
def _check_missing(series: list[np.ndarray], missing: str, where: str) -> list[np.ndarray]:
    out = []
    for i, s in enumerate(series):
        nan = np.isnan(s)
        if nan.any():
            if missing == "error":
                c, t = (int(v[0]) for v in np.nonzero(nan))
                raise DataError(
                    f"{where}: case {i} (0-based), channel {c}, position {t} is missing ({int(nan.sum())} missing "
                    "values in this case); set data.missing=ffill to fill gaps from the previous value"
                )
            s = s.copy()
            for c in range(s.shape[0]):
                if np.isnan(s[c]).all():
                    raise DataError(f"{where}: case {i}, channel {c} has no values at all")
                valid = ~np.isnan(s[c])
                idx = np.where(valid, np.arange(s.shape[1]), 0)
                np.maximum.accumulate(idx, out=idx)
                filled = s[c][idx]
                first = int(np.flatnonzero(valid)[0])
                filled[:first] = s[c][first]
                s[c] = filled
        out.append(s)
    return out


def equalise_lengths(series: list[np.ndarray], policy: str, length: int | None = None, where: str = "") -> np.ndarray:
    """Stack ``(C, T_i)`` series into ``(N, C, T)``.

    ``policy``: ``"error"``, ``"pad"`` (repeat the last value) or ``"resample"`` (linear
    interpolation); ``length`` defaults to the longest series (a longer series is refused
    when padding).
    """
    lengths = np.array([s.shape[1] for s in series])
    target = int(length if length is not None else lengths.max())
    if (lengths == target).all():
        return np.stack(series).astype(np.float32)
    if policy == "error":
        short, long_ = int(lengths.argmin()), int(lengths.argmax())
        raise DataError(
            f"{where}: series have unequal lengths (case {short} has {lengths[short]} values, case {long_} has "
            f"{lengths[long_]}{'' if length is None else f', expected {target}'}); set data.unequal_length=pad or resample"
        )
    out = np.empty((len(series), series[0].shape[0], target), dtype=np.float32)
    for i, s in enumerate(series):
        n = s.shape[1]
        if policy == "pad":
            if n > target:
                raise DataError(f"{where}: case {i} has {n} values, more than the common length {target}; use resample")
            out[i, :, :n] = s
            out[i, :, n:] = s[:, -1:]
        elif policy == "resample":
            grid = np.linspace(0.0, n - 1.0, target) if n > 1 else np.zeros(target)
            for c in range(s.shape[0]):
                out[i, c] = np.interp(grid, np.arange(n), s[c])
        else:
            raise ValueError(f"unequal_length must be error, pad or resample, got {policy!r}")
    return out


def _natural_key(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _to_labelled(
    series: list[np.ndarray], labels: list[str], where: str, missing: str, unequal_length: str,
    length: int | None, classes: list[str] | None, name: str,
) -> LabelledSeries:
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise DataError(f"{where}: cases have different numbers of channels ({sorted(channels)}); "
                        "every case needs the same channels")
    empty = [i for i, s in enumerate(series) if s.shape[1] == 0]
    if empty:
        raise DataError(f"{where}: case {empty[0]} (0-based) has no values")
    series = _check_missing(series, missing, where)
    lengths = np.array([s.shape[1] for s in series])
    x = equalise_lengths(series, unequal_length, length, where)
    classes = classes if classes is not None else sorted(set(labels), key=_natural_key)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise DataError(f"{where}: class label(s) {unknown[:5]} do not occur in the training split; "
                        "every test class must have training series")
    y = np.array([index[lab] for lab in labels], dtype=np.int64)
    return LabelledSeries(x, y, list(classes), name, where, lengths)


# -- data sets by name or path ------------------------------------------------------------
def _aeon_data_dir() -> Path | None:
    try:
        import aeon.datasets
    except ImportError:
        return None
    return Path(aeon.datasets.__file__).parent / "data"


def aeon_dataset_names() -> list[str]:
    """Classification sets shipped inside the installed aeon (loadable offline)."""
    folder = _aeon_data_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        d.name for d in folder.iterdir()
        if (d / f"{d.name}_TEST.ts").is_file() and _has_class_labels(d / f"{d.name}_TRAIN.ts")
    )


def _has_class_labels(path: Path) -> bool:
    """True for a .ts file whose header declares class labels (not a regression set)."""
    if not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            low = line.strip().lower()
            if low.startswith("@classlabel"):
                return low.split()[1:2] == ["true"]
            if low.startswith("@data"):
                return False
    return False


def _split_file(root: Path | None, dataset: str, split: str) -> Path:
    """Find ``<dataset>_<SPLIT>.<ext>`` under ``root`` (or ``root/<dataset>``), or in aeon."""
    tag = split.upper()
    folders: list[Path] = []
    if root is not None:
        root = root.expanduser()
        if root.is_file():
            raise DataError(
                f"data.root {root} is a file; point it at the folder holding {dataset}_TRAIN/_TEST files, "
                "or set data.train_file / data.test_file"
            )
        if not root.exists():
            raise DataError(f"data path {root} does not exist")
        folders += [root, root / dataset]
    else:
        aeon_dir = _aeon_data_dir()
        if aeon_dir is None:
            raise DataError(f"loading {dataset!r} by name needs aeon (pip install 'invlab[timeseries]') or data.root")
        folders.append(aeon_dir / dataset)
    for folder in folders:
        for ext in (".ts", ".tsv", ".txt", ".arff"):
            candidate = folder / f"{dataset}_{tag}{ext}"
            if candidate.is_file():
                return candidate
    if root is None:
        shipped = aeon_dataset_names()
        close = [n for n in shipped if n.lower() == dataset.lower()] or difflib.get_close_matches(dataset, shipped, 1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"{dataset!r} is not shipped with aeon{hint}; offline sets: {', '.join(shipped)}; download it from "
            "timeseriesclassification.com and set data.root to its folder"
        )
    raise DataError(f"no {dataset}_{tag}.ts/.tsv/.txt/.arff under {root} or {root / dataset}; check data.dataset "
                    "against the file names, or set data.train_file and data.test_file")


def load_classification_split(
    path: str | Path, missing: str = "error", unequal_length: str = "error", length: int | None = None,
    classes: list[str] | None = None, name: str = "",
) -> LabelledSeries:
    """Read one labelled file and apply the policies (see the module docstring)."""
    series, labels = read_labelled_file(path)
    return _to_labelled(series, labels, str(path), missing, unequal_length, length, classes, name or Path(path).stem)


def load_classification_pair(
    dataset: str | None = None,
    root: str | Path | None = None,
    train_file: str | Path | None = None,
    test_file: str | Path | None = None,
    missing: str = "error",
    unequal_length: str = "error",
) -> tuple[LabelledSeries, LabelledSeries]:
    """``(train, test)`` of a UCR/UEA set: by name (aeon's shipped copy, or
    ``root/<dataset>_TRAIN.*``) or from two explicit files. Labels are indexed by the
    training split's classes; a test label unseen in training is an error."""
    if train_file is not None or test_file is not None:
        if train_file is None or test_file is None:
            raise DataError("set both data.train_file and data.test_file (or neither, and data.dataset)")
        train_path, test_path = Path(train_file).expanduser(), Path(test_file).expanduser()
        name = dataset or train_path.stem.replace("_TRAIN", "")
    else:
        if not dataset:
            raise DataError("data.dataset is not set: name a UCR/UEA set (e.g. data.dataset=GunPoint)")
        root_path = Path(root) if root else None
        train_path, test_path = _split_file(root_path, dataset, "train"), _split_file(root_path, dataset, "test")
        name = dataset
    train_series, train_labels = read_labelled_file(train_path)
    test_series, test_labels = read_labelled_file(test_path)
    if train_series[0].shape[0] != test_series[0].shape[0]:
        raise DataError(f"{test_path}: {test_series[0].shape[0]} channels, but the training file has {train_series[0].shape[0]}; "
                        "both files must hold the same channels")
    lengths = [s.shape[1] for s in train_series + test_series]
    length = max(lengths) if len(set(lengths)) > 1 else None
    train = _to_labelled(train_series, train_labels, str(train_path), missing, unequal_length, length, None, name)
    test = _to_labelled(test_series, test_labels, str(test_path), missing, unequal_length, length, train.classes, name)
    return train, test
