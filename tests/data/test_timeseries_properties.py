"""Property-based tests (hypothesis) of the time-series loaders: random small CSVs and UCR
text files are written to disk and read back through the real readers.

Forecasting CSVs: the 70/10/20 split by the documented rounding, the scaler fitted on the
training rows only, values that round-trip, windows that never cross a split end, and any
injected bad cell refused with a DataError naming the file, the line and the column.
UCR ``.tsv`` / ``.txt`` and ``.ts`` files: shapes, values and labels round-trip; unequal
lengths and missing values follow their explicit policies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from invlab.data.timeseries import (
    WindowDataset,
    load_classification_split,
    load_forecast_series,
    read_series_csv,
)
from invlab.errors import DataError

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
START = np.datetime64("2020-01-01T00:00")


def _csv_text(values: np.ndarray, names: list[str], cells: dict[tuple[int, int], str] | None = None) -> str:
    """``date,<names>`` with hourly dates; ``cells[(row, col)]`` replaces a value's text
    (col 0 is the date)."""
    cells = cells or {}
    lines = [",".join(["date", *names])]
    for r, row in enumerate(values):
        fields = [str(START + np.timedelta64(r, "h")).replace("T", " "), *map(repr, row.tolist())]
        for (cr, cc), text in cells.items():
            if cr == r:
                fields[cc] = text
        lines.append(",".join(_quote(f) for f in fields))
    return "\n".join(lines) + "\n"


def _quote(field: str) -> str:
    return '"' + field.replace('"', '""') + '"' if any(ch in field for ch in ',"') else field


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder per module: hypothesis runs many examples per test and overwrites the files."""
    return tmp_path_factory.mktemp("properties")


def _write(folder: Path, text: str, name: str = "series.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@st.composite
def frames(draw, min_rows: int = 40, max_rows: int = 160):
    """``(values (N, C) float64, column names)``, no column constant over the training rows."""
    rows = draw(st.integers(min_rows, max_rows))
    cols = draw(st.integers(1, 3))
    values = draw(arrays(np.float64, (rows, cols), elements=FINITE))
    n_train = int(rows * 0.7)
    spread = values[:n_train].std(axis=0)
    assume((spread > 1e-3 * (1 + np.abs(values[:n_train]).max(axis=0))).all())
    return values, [f"s{j}" for j in range(cols)]


# -- forecasting CSVs --------------------------------------------------------------------
@FAST
@given(frame=frames(), data=st.data())
def test_split_scaler_and_round_trip(folder, frame, data):
    values, names = frame
    n = len(values)
    seq_len = data.draw(st.integers(1, int(n * 0.7) - 1), label="seq_len")
    series = load_forecast_series(_write(folder, _csv_text(values, names)), seq_len, split="ratio")
    n_train, n_test = int(n * 0.7), int(n * 0.2)  # documented rounding: train and test down, val the rest
    assert series.borders == {"train": (0, n_train), "val": (n_train, n - n_test), "test": (n - n_test, n)}
    assert series.columns == names and series.values.shape == values.shape and series.values.dtype == np.float32
    # the scaler is the training rows' mean and population std
    np.testing.assert_allclose(series.mean, values[:n_train].mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(series.std, values[:n_train].std(0), rtol=1e-9)
    train = series.split_values("train").astype(np.float64)
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-4)
    # values round-trip through the text file and the scaling (float32 precision)
    restored = series.values.astype(np.float64) * series.std + series.mean
    scale = np.abs(values - series.mean).max(0) + series.std
    assert (np.abs(restored - values) <= 1e-6 * scale).all()


@FAST
@given(frame=frames(), data=st.data())
def test_scaler_ignores_rows_after_the_training_split(folder, frame, data):
    values, names = frame
    n_train = int(len(values) * 0.7)
    other = values.copy()
    other[n_train:] = data.draw(arrays(np.float64, other[n_train:].shape, elements=FINITE), label="tail")
    first = load_forecast_series(_write(folder, _csv_text(values, names)), 1, split="ratio")
    second = load_forecast_series(_write(folder, _csv_text(other, names)), 1, split="ratio")
    np.testing.assert_array_equal(first.mean, second.mean)
    np.testing.assert_array_equal(first.std, second.std)
    np.testing.assert_array_equal(first.values[:n_train], second.values[:n_train])


@FAST
@given(frame=frames(), data=st.data())
def test_windows_never_cross_a_split_end(folder, frame, data):
    values, names = frame
    series = load_forecast_series(_write(folder, _csv_text(values, names)), 1, split="ratio")
    b = series.borders
    rows = {k: e - s for k, (s, e) in b.items()}
    horizon = data.draw(st.integers(0, min(rows["val"], rows["test"], rows["train"] - 1)), label="horizon")
    seq_len = data.draw(st.integers(1, rows["train"] - max(horizon, 1)), label="seq_len")
    if horizon == 0:
        assume(rows["val"] >= seq_len and rows["test"] >= seq_len)
    for split in ("train", "val", "test"):
        windows = WindowDataset(series, split, seq_len, horizon)
        start, end = b[split]
        starts = windows.starts
        assert (np.diff(starts) == 1).all() and len(windows) > 0
        if horizon == 0 or split == "train":  # inputs (and targets) inside the split, the last one at its end
            assert starts[0] == start and starts[-1] + seq_len + horizon == end
        else:  # targets exactly cover the split; inputs reach back into the previous split
            assert starts[0] + seq_len == start and starts[-1] + seq_len + horizon == end
        batch = windows.__getitems__([0, len(windows) - 1])
        for k, s in enumerate((starts[0], starts[-1])):
            np.testing.assert_array_equal(batch["series"][k].numpy(), series.values[s : s + seq_len].T)
            if horizon:
                np.testing.assert_array_equal(batch["target"][k].numpy(),
                                              series.values[s + seq_len : s + seq_len + horizon].T)


NOT_A_NUMBER = st.text(alphabet="abcxyz!?/#-_:;,'\" ", min_size=1, max_size=6)
MISSING = st.sampled_from(["", " ", "NaN", "nan", "NA", "null", "None"])
INFINITE = st.sampled_from(["inf", "-inf", "Infinity", "1e400", "-1e999"])


def _is_finite_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


@FAST
@given(frame=frames(max_rows=60), data=st.data())
def test_any_bad_value_cell_is_refused_naming_line_and_column(folder, frame, data):
    values, names = frame
    row = data.draw(st.integers(0, len(values) - 1), label="row")
    col = data.draw(st.integers(1, len(names)), label="col")
    token = data.draw(st.one_of(NOT_A_NUMBER, MISSING, INFINITE), label="token")
    assume(not _is_finite_number(token))
    path = _write(folder, _csv_text(values, names, {(row, col): token}))
    with pytest.raises(DataError) as err:
        read_series_csv(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line {row + 2}, column '{names[col - 1]}': ")
    assert "not a number" in message or "missing value" in message or "infinite value" in message


@FAST
@given(frame=frames(max_rows=60), data=st.data())
def test_bad_cells_name_the_first_one_in_column_order(folder, frame, data):
    values, names = frame
    cells = data.draw(st.dictionaries(st.tuples(st.integers(0, len(values) - 1), st.integers(1, len(names))),
                                      st.sampled_from(["x", "", "inf", "1..2"]), min_size=2, max_size=5))
    path = _write(folder, _csv_text(values, names, cells))
    row, col = min(cells, key=lambda rc: (rc[1], rc[0]))
    with pytest.raises(DataError, match=rf", line {row + 2}, column '{names[col - 1]}': "):
        read_series_csv(path)


@FAST
@given(frame=frames(max_rows=60), data=st.data())
def test_bad_date_or_missing_field_is_refused_naming_the_line(folder, frame, data):
    values, names = frame
    row = data.draw(st.integers(0, len(values) - 1), label="row")
    kind = data.draw(st.sampled_from(["date", "short", "long"]), label="kind")
    text = _csv_text(values, names, {(row, 0): data.draw(st.sampled_from(["", "soon", "2020-13-45 00:00"]))}
                     if kind == "date" else None)
    if kind != "date":
        lines = text.split("\n")
        lines[row + 1] = lines[row + 1].rsplit(",", 1)[0] if kind == "short" else lines[row + 1] + ",1.0"
        text = "\n".join(lines)
    path = _write(folder, text)
    expected = (rf"line {row + 2}, column 'date': cannot parse" if kind == "date"
                else rf"line {row + 2}: {len(names) + (0 if kind == 'short' else 2)} fields, but the header has")
    with pytest.raises(DataError, match=expected):
        read_series_csv(path)


@FAST
@given(frame=frames(max_rows=60), data=st.data())
def test_forward_fill_policy_fills_from_the_previous_row(folder, frame, data):
    values, names = frame
    holes = data.draw(st.sets(st.tuples(st.integers(0, len(values) - 1), st.integers(1, len(names))), min_size=1,
                              max_size=6))
    assume(all(sum(1 for _, c in holes if c == j) < len(values) for j in range(1, len(names) + 1)))
    path = _write(folder, _csv_text(values, names, {cell: "" for cell in holes}))
    with pytest.raises(DataError, match="missing value .*data.missing=ffill"):
        read_series_csv(path)
    _, filled, _ = read_series_csv(path, missing="ffill")
    expected = values.copy()
    for r, c in sorted(holes):
        expected[r, c - 1] = np.nan
    for j in range(expected.shape[1]):
        col = expected[:, j]
        first = int(np.flatnonzero(~np.isnan(col))[0])
        col[:first] = col[first]
        for r in range(1, len(col)):
            if np.isnan(col[r]):
                col[r] = col[r - 1]
    np.testing.assert_array_equal(filled, expected)


# -- UCR / UEA files ---------------------------------------------------------------------
LABELS = st.sampled_from(["1", "2", "3", "-1", "10", "a", "b", "walk"])


@st.composite
def labelled_sets(draw, equal: bool = True):
    n = draw(st.integers(2, 10))
    length = draw(st.integers(1, 24))
    lengths = [length] * n if equal else draw(st.lists(st.integers(1, 24), min_size=n, max_size=n))
    series = [draw(arrays(np.float64, (t,), elements=FINITE)) for t in lengths]
    labels = draw(st.lists(LABELS, min_size=n, max_size=n))
    return series, labels


def _ucr_text(series, labels, sep: str) -> str:
    longest = max(len(s) for s in series)
    rows = []
    for s, lab in zip(series, labels):
        padded = [repr(v) for v in s.tolist()] + ["NaN"] * (longest - len(s))  # the UCR convention
        rows.append(sep.join([lab, *padded]))
    return "\n".join(rows) + "\n"


def _natural(label: str):
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


@FAST
@given(data=labelled_sets(), fmt=st.sampled_from([("tsv", "\t"), ("txt", "  "), ("txt", ","), ("ts", None)]))
def test_labelled_files_round_trip(folder, data, fmt):
    series, labels = data
    ext, sep = fmt
    if ext == "ts":
        text = "@problemName P\n@classLabel true\n@data\n" + "".join(
            ",".join(map(repr, s.tolist())) + f":{lab}\n" for s, lab in zip(series, labels))
    else:
        text = _ucr_text(series, labels, sep)
    loaded = load_classification_split(_write(folder, text, f"P_TRAIN.{ext}"))
    assert loaded.x.shape == (len(series), 1, len(series[0])) and loaded.x.dtype == np.float32
    np.testing.assert_array_equal(loaded.x[:, 0], np.stack(series).astype(np.float32))
    assert loaded.classes == sorted(set(labels), key=_natural)
    assert [loaded.classes[i] for i in loaded.y] == labels


@FAST
@given(data=labelled_sets(equal=False))
def test_unequal_lengths_follow_the_explicit_policy(folder, data):
    series, labels = data
    lengths = [len(s) for s in series]
    assume(len(set(lengths)) > 1)
    path = _write(folder, _ucr_text(series, labels, "\t"), "U_TRAIN.tsv")
    with pytest.raises(DataError, match=rf"{path.name}: series have unequal lengths .*data.unequal_length=pad"):
        load_classification_split(path)
    padded = load_classification_split(path, unequal_length="pad")
    assert padded.x.shape == (len(series), 1, max(lengths)) and padded.lengths.tolist() == lengths
    resampled = load_classification_split(path, unequal_length="resample")
    for i, s in enumerate(series):
        np.testing.assert_array_equal(padded.x[i, 0, : len(s)], s.astype(np.float32))
        assert (padded.x[i, 0, len(s):] == np.float32(s[-1])).all()
        # resampling keeps both ends of every series
        assert resampled.x[i, 0, 0] == np.float32(s[0])
        np.testing.assert_allclose(resampled.x[i, 0, -1], np.float32(s[-1]), rtol=1e-5, atol=1e-3)


@FAST
@given(data=labelled_sets(), data2=st.data())
def test_missing_values_in_labelled_files_follow_the_explicit_policy(folder, data, data2):
    series, labels = data
    assume(len(series[0]) >= 2)
    case = data2.draw(st.integers(0, len(series) - 1), label="case")
    pos = data2.draw(st.integers(0, len(series[0]) - 2), label="position")  # a trailing NaN would end the series
    series[case] = series[case].copy()
    series[case][pos] = np.nan
    text = _ucr_text(series, labels, "\t").replace("nan", data2.draw(st.sampled_from(["NaN", "?"])))
    path = _write(folder, text, "M_TRAIN.tsv")
    with pytest.raises(DataError, match=rf"case {case} \(0-based\), channel 0, position {pos} is missing"):
        load_classification_split(path)
    filled = load_classification_split(path, missing="ffill")
    expected = series[case][pos - 1] if pos > 0 else series[case][1]
    assert filled.x[case, 0, pos] == np.float32(expected)
