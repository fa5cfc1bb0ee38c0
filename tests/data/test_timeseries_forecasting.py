"""Forecasting CSVs: ETT and ratio splits, the train-only scaler, window indexing at the
split boundaries, univariate mode, and malformed files (real ETTh1 + small synthetic CSVs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from invlab.data.timeseries import (
    WindowDataset,
    ett_borders,
    load_forecast_series,
    ratio_borders,
    read_series_csv,
    window_count,
    window_starts,
)
from invlab.errors import DataError

L = 96


def _write_csv(path, rows: int, freq: str = "h", columns=("a", "b"), seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=rows, freq=freq)})
    for j, c in enumerate(columns):
        frame[c] = rng.normal(j, 1 + j, rows).round(4)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def etth1(etth1_csv):
    return load_forecast_series(etth1_csv, L)


def test_ett_split_is_12_4_4_months(etth1):
    assert etth1.borders == {"train": (0, 8640), "val": (8640, 11520), "test": (11520, 14400)}
    assert etth1.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert etth1.values.shape == (17420, 7) and etth1.values.dtype == np.float32


def test_scaler_uses_training_rows_only(etth1, etth1_csv, tmp_path):
    raw = pd.read_csv(etth1_csv, float_precision="round_trip")  # exact, as invlab parses
    train = raw.iloc[:8640, 1:].to_numpy()
    np.testing.assert_allclose(etth1.mean, train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(etth1.std, train.std(0), rtol=1e-12)  # ddof=0, as StandardScaler
    np.testing.assert_allclose(etth1.values[:8640].mean(0), 0, atol=1e-4)
    # wreck every row after the training split: the scaler and the training values must not move
    raw.iloc[8640:, 1:] = raw.iloc[8640:, 1:] * 1000 + 5000
    raw.to_csv(tmp_path / "wrecked.csv", index=False)
    wrecked = load_forecast_series(tmp_path / "wrecked.csv", L)
    np.testing.assert_array_equal(wrecked.mean, etth1.mean)
    np.testing.assert_array_equal(wrecked.std, etth1.std)
    np.testing.assert_array_equal(wrecked.values[:8640], etth1.values[:8640])


@pytest.mark.parametrize("horizon", [24, 720])
def test_windows_at_split_boundaries(etth1, horizon):
    raw = etth1.values
    train = WindowDataset(etth1, "train", L, horizon)
    val = WindowDataset(etth1, "val", L, horizon)
    test = WindowDataset(etth1, "test", L, horizon)
    # counts: train inputs start at 0; val/test inputs reach L rows back (Informer convention)
    assert len(train) == 8640 - L - horizon + 1
    assert len(val) == 2880 - horizon + 1 and len(test) == 2880 - horizon + 1
    assert len(val) == window_count(etth1.borders, "val", L, horizon)
    # the last training target ends exactly at the end of the training split
    last = train.__getitems__([len(train) - 1])
    np.testing.assert_array_equal(last["target"][0].numpy(), raw[8640 - horizon : 8640].T)
    # the first validation target is the first validation row; its input is the last L training rows
    first = val.__getitems__([0])
    np.testing.assert_array_equal(first["target"][0].numpy(), raw[8640 : 8640 + horizon].T)
    np.testing.assert_array_equal(first["series"][0].numpy(), raw[8640 - L : 8640].T)
    # the last test target ends at row 14400, never beyond
    end = test.__getitems__([len(test) - 1])
    np.testing.assert_array_equal(end["target"][0].numpy(), raw[14400 - horizon : 14400].T)
    assert window_starts(etth1.borders, "test", L, horizon) == (11520 - L, 14400 - L - horizon + 1)


def test_windows_without_targets_stay_inside_their_split(etth1):
    val = WindowDataset(etth1, "val", L, 0)
    assert val.starts[0] == 8640 and val.starts[-1] + L == 11520


def test_pretraining_windows_and_stride(etth1):
    windows = WindowDataset(etth1, "train", L, 0, stride=5)
    assert windows.starts[0] == 0 and windows.starts[1] == 5 and windows.starts[-1] <= 8640 - L
    batch = windows.__getitems__([0, 3])
    assert set(batch) == {"series", "index"} and batch["series"].shape == (2, 7, L)
    np.testing.assert_array_equal(batch["series"][1].numpy(), etth1.values[15 : 15 + L].T)


def test_univariate_keeps_the_target_column(etth1_csv):
    uni = load_forecast_series(etth1_csv, L, features="univariate", target="OT")
    assert uni.columns == ["OT"] and uni.values.shape == (17420, 1)
    with pytest.raises(DataError, match="target column 'Temp' not found"):
        load_forecast_series(etth1_csv, L, features="univariate", target="Temp")


def test_minute_files_use_four_times_the_rows(tmp_path):
    _write_csv(tmp_path / "m.csv", 20 * 30 * 24 * 4, freq="15min")
    series = load_forecast_series(tmp_path / "m.csv", L)
    assert series.borders == {"train": (0, 34560), "val": (34560, 46080), "test": (46080, 57600)}
    _write_csv(tmp_path / "daily.csv", 20 * 30 * 24, freq="D")
    with pytest.raises(DataError, match="hourly or 15-minute rows.*1440 minutes apart"):
        load_forecast_series(tmp_path / "daily.csv", L)


def test_ratio_split_70_10_20(tmp_path):
    _write_csv(tmp_path / "c.csv", 1001)
    series = load_forecast_series(tmp_path / "c.csv", L, split="ratio")
    assert series.borders == {"train": (0, 700), "val": (700, 801), "test": (801, 1001)}
    assert ratio_borders(1001, L) == series.borders
    with pytest.raises(ValueError, match="summing to 1"):
        ratio_borders(100, 10, (0.5, 0.1, 0.1))


def test_too_short_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="needs 14400 rows"):
        ett_borders(1000, L, path="x.csv")
    _write_csv(tmp_path / "tiny.csv", 120)
    with pytest.raises(DataError, match="training split has 84 rows, not more than the input length"):
        load_forecast_series(tmp_path / "tiny.csv", L, split="ratio")


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f: f.rename(columns={"date": "time"}), r"no 'date' column \(columns: time, a, b\); invlab reads .* date,<series 1>"),
        (lambda f: f.assign(a=f["a"].astype(object).where(f.index != 5, "abc")),
         r"line 7, column 'a': 'abc' is not a number; fix the cell"),
        (lambda f: f.assign(b=f["b"].where(f.index != 9, np.nan)),
         r"line 11, column 'b': missing value \(1 in this column\); fix the file or set data.missing=ffill"),
        (lambda f: f.assign(date=f["date"].astype(str).where(f.index != 3, "not a date")),
         r"line 5, column 'date': cannot parse 'not a date' as a date; write every date in one format"),
        (lambda f: f.assign(date=f["date"].where(f.index != 4, f["date"][2])),
         r"line 6: dates must increase strictly .*; sort the file by date"),
        (lambda f: f.assign(a=1.0), r"column\(s\) a are constant over the training split .*; drop them"),
        (lambda f: f.assign(a=f["a"].astype(object).where(f.index != 2, "inf")),
         r"line 4, column 'a': infinite value 'inf'; replace it"),
        (lambda f: f.assign(a=f["a"].where(f.index % 2 == 0, 1e308).where(f.index % 2 == 1, -1e308)),
         r"column\(s\) a have values too large to standardise .*; rescale them"),
    ],
)
def test_malformed_csv_names_line_and_column(tmp_path, mutate, match):
    frame = _write_csv(tmp_path / "ok.csv", 500)
    mutate(frame).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=match) as err:
        load_forecast_series(tmp_path / "bad.csv", L, split="ratio")
    assert str(err.value).startswith(str(tmp_path / "bad.csv"))


GOOD = "date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,2,3\n2020-01-01 02:00,3,5\n"


@pytest.mark.parametrize(
    "text, match",
    [
        (GOOD.replace("01:00,2,3", "01:00,2"), r"line 3: 2 fields, but the header has 3; every row needs a value"),
        (GOOD.replace("01:00,2,3", "01:00,2,3,4"), r"line 3: 4 fields, but the header has 3"),
        (GOOD.replace("date,a,b", "date,a,a"), r"line 1: column name\(s\) 'a' appear more than once .*own name"),
        (GOOD.replace("date,a,b", "date,a,"), r"line 1: column 3 of the header has no name; name every column"),
        # blank lines do not shift the line numbers in messages
        ("\n" + GOOD.replace("\n2020-01-01 01:00,2,3", "\n\n   \n2020-01-01 01:00,x,3"), r"line 6, column 'a': 'x' is not a number"),
        # a row of empty cells is missing data, not a blank line to skip
        (GOOD.replace("2020-01-01 01:00,2,3", ",,"), r"line 3, column 'date': cannot parse ''"),
        (GOOD.replace("01:00,2,3", "01:00,,3"), r"line 3, column 'a': missing value .*data.missing=ffill"),
        ("date;a;b\n2020-01-01;1;2\n", r"no 'date' column \(columns: date;a;b\)"),
        ("", r"the file is empty \(expected a header date,<series 1>"),
        ("date,a\n", r"has a header but no data rows"),
        ("date\n2020-01-01\n", r"has a date column but no series columns; add at least one"),
        # the same instant written with two offsets: converted to UTC, the rows repeat
        ("date,a\n2020-01-01T00:00+01:00,1\n2020-01-01T01:00+02:00,2\n", r"line 3: dates must increase strictly"),
    ],
)
def test_malformed_csv_text_names_the_line(tmp_path, text, match):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=match) as err:
        read_series_csv(tmp_path / "bad.csv")
    assert str(err.value).startswith(str(tmp_path / "bad.csv"))


def test_time_zone_offsets_are_read_as_instants(tmp_path):
    (tmp_path / "tz.csv").write_text("date,a\n2020-01-01T00:30+01:00,1\n2020-01-01T00:00+00:00,2\n2020-01-01T02:00+01:00,3\n")
    dates, values, _ = read_series_csv(tmp_path / "tz.csv")
    assert dates.astype("datetime64[m]").astype(str).tolist() == ["2019-12-31T23:30", "2020-01-01T00:00", "2020-01-01T01:00"]
    assert values[:, 0].tolist() == [1.0, 2.0, 3.0]


def test_missing_values_forward_filled_on_request(tmp_path):
    frame = _write_csv(tmp_path / "ok.csv", 500)
    frame.loc[[0, 1], "a"] = np.nan
    frame.loc[[10, 11, 12], "b"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    _, values, _ = read_series_csv(tmp_path / "gaps.csv", missing="ffill")
    assert not np.isnan(values).any()
    assert values[0, 0] == values[1, 0] == frame.loc[2, "a"]  # leading gap takes the first value
    assert (values[10:13, 1] == frame.loc[9, "b"]).all()


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_series_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder; point data.root at the CSV file itself"):
        read_series_csv(tmp_path)
    (tmp_path / "latin1.csv").write_bytes("date,temp\xb0C\n2020-01-01,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv: not a text CSV file \(cannot decode it as UTF-8"):
        read_series_csv(tmp_path / "latin1.csv")
    (tmp_path / "empty_column.csv").write_text("date,a,b\n2020-01-01,,1\n2020-01-02,,2\n")
    with pytest.raises(DataError, match=r"empty_column.csv, column 'a': every value is missing; drop the column"):
        read_series_csv(tmp_path / "empty_column.csv", missing="ffill")
    (tmp_path / "header.csv").write_text("date,a\n")
    with pytest.raises(DataError, match="no data rows"):
        read_series_csv(tmp_path / "header.csv")
    (tmp_path / "only_date.csv").write_text("date\n2020-01-01\n")
    with pytest.raises(DataError, match="no series columns"):
        read_series_csv(tmp_path / "only_date.csv")
