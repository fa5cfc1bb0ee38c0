"""Forecasting data: ``date,<series>...`` CSV files, chronological splits, a scaler fitted
on the training split only, and sliding windows ``(input L, horizon H)``.

Splits (row ranges ``[start, end)`` of the file, after the header):

- ``"ett"`` (the ETT benchmark convention of Informer, Zhou et al. 2021): 12 / 4 / 4
  months of 30 days, i.e. ``train = [0, 8640)``, ``val = [8640, 11520)``,
  ``test = [11520, 14400)`` for hourly files and four times as many rows for the
  15-minute files (detected from the ``date`` column). Rows after month 20 are unused.
- ``"ratio"``: any ``date,...`` CSV, ``int(0.7 N)`` training rows, ``int(0.2 N)`` test rows
  at the end and the rest in between for validation (ratios configurable).

Windows: a window starting at row ``i`` has input rows ``[i, i + L)`` and targets
``[i + L, i + L + H)``. Training windows lie entirely inside the training split.
Validation and test windows follow the Informer convention: their *targets* lie inside
the split and their inputs may reach up to ``L`` rows back into the previous split, so the
first validation target is the first validation row. No target ever crosses a split end.
Windows without targets (``H = 0``: pretext losses on validation) lie inside their split.

Values are standardised per column with the mean and standard deviation of the training
rows (``ddof=0``, as scikit-learn's ``StandardScaler``); MSE/MAE are reported on that scale.

Malformed files raise :class:`~invlab.errors.DataError` naming the file, the line and
the column: a missing ``date`` column, an unparseable date, a row with too few or too many
fields, a non-numeric cell, an empty cell or NaN (unless ``missing="ffill"``: forward fill,
then backward fill at the start, an explicit policy), a constant training column (its
scale would be zero). Dates with time-zone offsets are converted to UTC instants. Numbers
are parsed with Python's correctly rounded ``float``.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from invlab.errors import DataError

__all__ = [
    "ForecastSeries", "SPLITS", "ett_borders", "ratio_borders", "read_series_csv", "load_forecast_series",
    "window_starts", "window_count",
]

SPLITS = ("train", "val", "test")
_MISSING_CELLS = ("", "nan", "NaN", "NA", "null", "None")
_ETT_MONTH_HOURS = 30 * 24


@dataclass
class ForecastSeries:
    """A standardised multivariate series with its chronological splits.

    ``values``: ``(T, C)`` float32, standardised with the training split's ``mean`` and
    ``std`` (both ``(C,)``, in the file's units). ``borders[split] = (start, end)`` are the
    rows whose *targets* belong to ``split``.
    """

    values: np.ndarray
    columns: list[str]
    borders: dict[str, tuple[int, int]]
    mean: np.ndarray
    std: np.ndarray
    path: str = ""
    split_rule: str = ""
    dates: np.ndarray | None = field(default=None, repr=False)

    @property
    def channels(self) -> int:
        return int(self.values.shape[1])

    def split_values(self, split: str) -> np.ndarray:
        start, end = self._border(split)
        return self.values[start:end]

    def _border(self, split: str) -> tuple[int, int]:
        if split not in self.borders:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
        return self.borders[split]


# -- reading ------------------------------------------------------------------------------
def read_series_csv(path: str | Path, missing: str = "error") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a ``date,<series>...`` CSV: ``(dates (T,) datetime64, values (T, C) float64,
    column names)``. Errors name the file, the 1-based line and the column."""
    import pandas as pd

    path = Path(path).expanduser()
    if missing not in ("error", "ffill"):
        raise ValueError(f"missing must be 'error' or 'ffill', got {missing!r}")
    if path.is_dir():
        raise DataError(f"data file {path} is a folder; point data.root at the CSV file itself")
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    header, header_line, rows, lines = _read_records(path)
    columns = [c.strip() for c in header]
    date_col = next((c for c in columns if c.lower() == "date"), None)
    if date_col is None:
        raise DataError(
            f"{path}: no 'date' column (columns: {', '.join(columns[:10])}); "
            "invlab reads forecasting CSVs laid out as date,<series 1>,<series 2>,..."
        )
    names = [c for c in columns if c != date_col]
    if not names:
        raise DataError(f"{path}: has a date column but no series columns; add at least one numeric column")
    unnamed = [i + 1 for i, c in enumerate(columns) if not c]
    if unnamed:
        raise DataError(f"{path}, line {header_line}: column {unnamed[0]} of the header has no name; name every column")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataError(f"{path}, line {header_line}: column name(s) {', '.join(map(repr, repeated))} appear more than once "
                        "in the header; give every column its own name")
    if not rows:
        raise DataError(f"{path}: has a header but no data rows")
    for row, line in zip(rows, lines):
        if len(row) != len(columns):
            raise DataError(
                f"{path}, line {line}: {len(row)} fields, but the header has {len(columns)}; "
                "every row needs a value (or an empty cell) for every column"
            )
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    dates = _parse_dates(frame[date_col])
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataError(f"{path}, line {lines[row]}, column '{date_col}': cannot parse {frame[date_col].iloc[row]!r} as a date; "
                        "write every date in one format, e.g. 2016-07-01 00:00:00")
    values = np.empty((len(frame), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        raw = frame[name].str.strip()
        blank = raw.isin(_MISSING_CELLS).to_numpy()
        numbers, not_number = _parse_numbers(raw.where(~blank, "nan").tolist())
        infinite = np.isinf(numbers)
        problems = not_number | infinite | (blank if missing == "error" else False)
        if problems.any():
            row = int(np.flatnonzero(problems)[0])  # the first problem cell of the column, whatever its kind
            where = f"{path}, line {lines[row]}, column '{name}'"
            if not_number[row]:
                raise DataError(f"{where}: {raw.iloc[row]!r} is not a number; fix the cell "
                                "(an empty cell marks a missing value, see data.missing)")
            if infinite[row]:
                raise DataError(f"{where}: infinite value {raw.iloc[row]!r}; replace it by a number or an empty cell")
            raise DataError(f"{where}: missing value ({int(blank.sum())} in this column); "
                            "fix the file or set data.missing=ffill to forward-fill gaps")
        if blank.any():
            if blank.all():
                raise DataError(f"{path}, column '{name}': every value is missing; drop the column")
            numbers = _fill_forward(numbers)
        values[:, j] = numbers
    order = dates.to_numpy()
    if len(order) > 1 and not (np.diff(order) > np.timedelta64(0, "ns")).all():
        row = int(np.flatnonzero(np.diff(order) <= np.timedelta64(0, "ns"))[0]) + 1
        raise DataError(f"{path}, line {lines[row]}: dates must increase strictly (row repeats or goes back in time); "
                        "sort the file by date and remove repeated rows")
    return order, values, names


def _read_records(path: Path) -> tuple[list[str], int, list[list[str]], list[int]]:
    """``(header, its line, data rows, 1-based file line of each row)``; blank lines are skipped."""
    header: list[str] | None = None
    header_line = 1
    rows, lines = [], []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # a blank line
                if header is None:
                    header, header_line = record, reader.line_num
                else:
                    rows.append(record)
                    lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text CSV file (cannot decode it as UTF-8: {err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    if header is None:
        raise DataError(f"{path}: the file is empty (expected a header date,<series 1>,...)")
    return header, header_line, rows, lines


def _parse_numbers(cells: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(float64 values, mask of cells that are not numbers)``; parsing is Python's
    correctly rounded ``float`` (a value written with ``repr`` reads back exactly)."""
    try:
        return np.array(cells, dtype=np.float64), np.zeros(len(cells), dtype=bool)
    except ValueError:  # find the offending cells one by one (the error path only)
        values = np.full(len(cells), np.nan)
        bad = np.zeros(len(cells), dtype=bool)
        for i, cell in enumerate(cells):
            try:
                values[i] = float(cell)
            except ValueError:
                bad[i] = True
        return values, bad


def _parse_dates(column):
    """Dates as naive datetime64; time-zone offsets (mixed or not) are converted to UTC so
    that order and spacing are those of the real instants. Unparseable cells become NaT."""
    import pandas as pd

    with warnings.catch_warnings():  # "could not infer format": unparseable cells are reported as errors
        warnings.simplefilter("ignore", UserWarning)
        try:
            dates = pd.to_datetime(column, errors="coerce")
        except ValueError:  # mixed time-zone offsets
            dates = pd.to_datetime(column, errors="coerce", utc=True)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates


def _fill_forward(x: np.ndarray) -> np.ndarray:
    """Forward fill NaNs; leading NaNs take the first observed value."""
    valid = ~np.isnan(x)
    if not valid.any():
        raise DataError("a column has no values at all")
    idx = np.where(valid, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    first = int(np.flatnonzero(valid)[0])
    out[:first] = x[first]
    return out


# -- splits -------------------------------------------------------------------------------
def rows_per_hour(dates: np.ndarray, path: str | Path = "") -> int:
    """1 for hourly data, 4 for 15-minute data (from the first two dates)."""
    if len(dates) < 2:
        raise DataError(f"{path}: too few rows to infer the sampling interval")
    step = (dates[1] - dates[0]) / np.timedelta64(1, "m")
    if step == 60:
        return 1
    if step == 15:
        return 4
    raise DataError(
        f"{path}: the ETT split needs hourly or 15-minute rows, but the first two dates are {step:g} minutes apart; "
        "use data.name=csv for a 70/10/20 split"
    )


def ett_borders(num_rows: int, seq_len: int, per_hour: int = 1, path: str | Path = "") -> dict[str, tuple[int, int]]:
    """Target-row ranges of the 12/4/4-month ETT split (``per_hour`` = 4 for ETTm)."""
    month = _ETT_MONTH_HOURS * per_hour
    needed = 20 * month
    if num_rows < needed:
        raise DataError(f"{path}: the ETT split needs {needed} rows (20 months of 30 days), the file has {num_rows}; use data.name=csv for a 70/10/20 split")
    borders = {"train": (0, 12 * month), "val": (12 * month, 16 * month), "test": (16 * month, 20 * month)}
    _check_room(borders, seq_len, path)
    return borders


def ratio_borders(num_rows: int, seq_len: int, ratios: Sequence[float] = (0.7, 0.1, 0.2), path: str | Path = "") -> dict[str, tuple[int, int]]:
    """Target-row ranges of a train/val/test split by ``ratios`` (train and test rounded
    down, validation takes the rest), as in the Autoformer/TimeDRL custom loader."""
    if len(ratios) != 3 or min(ratios) <= 0 or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must be three positive numbers summing to 1, got {list(ratios)}")
    n_train, n_test = int(num_rows * ratios[0]), int(num_rows * ratios[2])
    borders = {"train": (0, n_train), "val": (n_train, num_rows - n_test), "test": (num_rows - n_test, num_rows)}
    _check_room(borders, seq_len, path)
    return borders


def _check_room(borders: dict[str, tuple[int, int]], seq_len: int, path) -> None:
    start, end = borders["train"]
    if end - start <= seq_len:
        raise DataError(
            f"{path}: the training split has {end - start} rows, not more than the input length data.seq_len={seq_len}; "
            "lower data.seq_len or use a longer file"
        )


def window_starts(borders: dict[str, tuple[int, int]], split: str, seq_len: int, horizon: int) -> tuple[int, int]:
    """``[first, last)`` start rows of the windows of ``split``.

    Training inputs stay inside the training split; validation and test inputs may start
    ``seq_len`` rows before their split (their first target is the split's first row).
    Without targets (``horizon = 0``, pretext losses) every window lies inside its split.
    """
    start, end = borders[split]
    first = start if split == "train" or horizon == 0 else start - seq_len
    last = end - seq_len - horizon + 1
    if last <= first:
        raise DataError(
            f"the {split} split ({end - start} rows) is too short for windows of input {seq_len} and horizon {horizon}; "
            "lower data.seq_len or the horizon"
        )
    return max(first, 0), last


def window_count(borders, split: str, seq_len: int, horizon: int) -> int:
    first, last = window_starts(borders, split, seq_len, horizon)
    return last - first


# -- loading ------------------------------------------------------------------------------
def load_forecast_series(
    path: str | Path,
    seq_len: int,
    split: str = "ett",
    features: str = "multivariate",
    target: str = "OT",
    ratios: Sequence[float] = (0.7, 0.1, 0.2),
    missing: str = "error",
) -> ForecastSeries:
    """Read, split and standardise a forecasting CSV (see the module docstring).

    ``features="univariate"`` keeps only the ``target`` column.
    """
    dates, values, names = read_series_csv(path, missing)
    if features == "univariate":
        if target not in names:
            raise DataError(f"{path}: target column {target!r} not found (series columns: {', '.join(names)}); set data.target to one of them")
        j = names.index(target)
        values, names = values[:, j : j + 1], [target]
    elif features != "multivariate":
        raise ValueError(f"features must be 'multivariate' or 'univariate', got {features!r}")
    if split == "ett":
        borders = ett_borders(len(values), seq_len, rows_per_hour(dates, path), path)
    elif split == "ratio":
        borders = ratio_borders(len(values), seq_len, ratios, path)
    else:
        raise ValueError(f"split must be 'ett' or 'ratio', got {split!r}")
    train = values[borders["train"][0] : borders["train"][1]]
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = train.mean(axis=0), train.std(axis=0)
        scaled = ((values - mean) / std).astype(np.float32)
    overflow = [names[j] for j in range(len(names)) if not (np.isfinite(mean[j]) and np.isfinite(std[j]))]
    if overflow:
        raise DataError(
            f"{path}: column(s) {', '.join(overflow)} have values too large to standardise in float64 "
            f"(largest magnitude {np.abs(values).max():.3g}); rescale them in the file"
        )
    constant = [names[j] for j in np.flatnonzero(std < 1e-12)]
    if constant:
        raise DataError(f"{path}: column(s) {', '.join(constant)} are constant over the training split and cannot be standardised; "
                        "drop them, or use data.features=univariate with another data.target")
    if not np.isfinite(scaled).all():
        j = int(np.flatnonzero(~np.isfinite(scaled).all(axis=0))[0])
        raise DataError(f"{path}: column '{names[j]}' does not fit float32 after standardising; rescale it in the file")
    return ForecastSeries(scaled, names, borders, mean, std, str(path), split, dates)
