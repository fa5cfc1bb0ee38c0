"""UCR/UEA readers: aeon's shipped sets by name, local .ts/.tsv/.txt/.arff files that
must agree, the missing-value and unequal-length policies, and malformed files."""

from __future__ import annotations

import numpy as np
import pytest

from invlab.data.timeseries import (
    LabelledDataset,
    aeon_dataset_names,
    equalise_lengths,
    load_classification_pair,
    load_classification_split,
    read_labelled_file,
)
from invlab.errors import DataError

SHIPPED = ["ACSF1", "ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf",
           "PickupGestureWiimoteZ"]


def _ts_text(cases, labels, dims=None):
    dims = dims or len(cases[0])
    head = ["# comment", "% another", "@problemName X", "@timeStamps false", f"@dimensions {dims}",
            f"@classLabel true {' '.join(sorted(set(labels)))}", "@data"]
    rows = [":".join(",".join(str(v) for v in ch) for ch in case) + f":{lab}" for case, lab in zip(cases, labels)]
    return "\n".join(head + rows) + "\n"


def test_every_issue_set_is_shipped_and_loads_offline():
    names = aeon_dataset_names()
    assert set(SHIPPED) <= set(names)
    train, test = load_classification_pair("GunPoint")
    assert train.x.shape == (50, 1, 150) and test.x.shape == (150, 1, 150)
    assert train.classes == ["1", "2"] and train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert set(np.unique(test.y)) == {0, 1}
    basic, _ = load_classification_pair("BasicMotions")
    assert basic.x.shape == (40, 6, 100) and basic.classes == ["Badminton", "Running", "Standing", "Walking"]


def test_unequal_lengths_need_a_policy():
    with pytest.raises(DataError, match=r"unequal lengths .*set data.unequal_length=pad or resample"):
        load_classification_pair("JapaneseVowels")
    train, test = load_classification_pair("JapaneseVowels", unequal_length="pad")
    assert train.x.shape == (270, 12, 29) and test.x.shape == (370, 12, 29)  # longest over both splits
    i = int(np.argmin(train.lengths))
    n = int(train.lengths[i])
    np.testing.assert_array_equal(train.x[i, :, n:], np.repeat(train.x[i, :, n - 1 : n], 29 - n, axis=1))
    resampled, _ = load_classification_pair("JapaneseVowels", unequal_length="resample")
    np.testing.assert_allclose(resampled.x[i, :, 0], train.x[i, :, 0])  # ends are kept
    np.testing.assert_allclose(resampled.x[i, :, -1], train.x[i, :, n - 1], rtol=1e-6)


def test_equalise_lengths_policies():
    series = [np.array([[0.0, 1.0, 2.0]]), np.array([[5.0, 7.0]])]
    np.testing.assert_array_equal(equalise_lengths(series, "pad")[1], [[5.0, 7.0, 7.0]])
    np.testing.assert_allclose(equalise_lengths(series, "resample")[1], [[5.0, 6.0, 7.0]])
    with pytest.raises(DataError, match="case 1 has 2 values, case 0 has 3"):
        equalise_lengths(series, "error", where="f.ts")


def test_local_formats_agree(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 12)).round(5)
    labels = ["a", "b", "a", "b", "c", "c"]
    (tmp_path / "D_TRAIN.ts").write_text(_ts_text([[list(c[0])] for c in x], labels))
    (tmp_path / "D_TRAIN.tsv").write_text("\n".join("\t".join([lab, *map(str, c[0])]) for c, lab in zip(x, labels)))
    (tmp_path / "D_TRAIN.txt").write_text("\n".join("  ".join([lab, *map(str, c[0])]) for c, lab in zip(x, labels)))
    arff = ["@relation D"] + [f"@attribute t{i} numeric" for i in range(12)] + ["@attribute target {a,b,c}", "@data"]
    arff += [",".join([*map(str, c[0]), lab]) for c, lab in zip(x, labels)]
    (tmp_path / "D_TRAIN.arff").write_text("\n".join(arff) + "\n")
    loaded = [load_classification_split(tmp_path / f"D_TRAIN.{ext}") for ext in ("ts", "tsv", "txt", "arff")]
    for data in loaded:
        np.testing.assert_allclose(data.x, x.astype(np.float32))
        assert data.classes == ["a", "b", "c"] and data.y.tolist() == [0, 1, 0, 1, 2, 2]


def test_multivariate_ts_and_folder_lookup(tmp_path):
    cases = [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [1, 1, 1]]]
    (tmp_path / "M_TRAIN.ts").write_text(_ts_text(cases, ["x", "y"]))
    (tmp_path / "M_TEST.ts").write_text(_ts_text(cases[::-1], ["y", "x"]))
    train, test = load_classification_pair("M", root=tmp_path)
    assert train.x.shape == (2, 2, 3) and test.y.tolist() == [1, 0]
    np.testing.assert_array_equal(train.x[0], [[1, 2, 3], [4, 5, 6]])
    batch = LabelledDataset(train).__getitems__([1, 0])
    assert batch["series"].shape == (2, 2, 3) and batch["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("@data\n1.0,abc,3.0:1\n", r"line 2, channel 0, position 1: 'abc' is not a number"),
        ("@classLabel true 1\n@data\n1.0,2.0:1\n1.0,2.0:1:2.0,3.0\n", r"line 4: 2 channels, earlier cases have 1"),
        ("@dimensions 2\n@classLabel true 1\n@data\n1.0,2.0:1\n", r"line 4: 1 channels, but the header says @dimensions 2"),
        ("@classLabel true 1\n@data\n1,2,3:4,5:1\n", r"line 3: channels of one case have different lengths"),
        ("@data\n1.0,2.0\n", r"line 2: no class label"),
        ("@problemName X\n1.0,2.0:1\n", r"line 2: expected a header line"),
        ("@problemName X\n", r"no @data section"),
        ("@classLabel false\n@data\n1.0,2.0\n", r"has no class labels"),
        ("@timeStamps true\n@data\n(0,1.0):1\n", r"time-stamped .ts files are not supported"),
    ],
)
def test_malformed_ts_names_line(tmp_path, text, match):
    (tmp_path / "bad.ts").write_text(text)
    with pytest.raises(DataError, match=match):
        load_classification_split(tmp_path / "bad.ts")


def test_missing_values_policy(tmp_path):
    (tmp_path / "gaps.ts").write_text(_ts_text([[[1.0, "?", 3.0]], [["NaN", 2.0, 2.5]]], ["1", "2"]))
    with pytest.raises(DataError, match=r"case 0 \(0-based\), channel 0, position 1 is missing"):
        load_classification_split(tmp_path / "gaps.ts")
    filled = load_classification_split(tmp_path / "gaps.ts", missing="ffill")
    np.testing.assert_array_equal(filled.x[:, 0], [[1.0, 1.0, 3.0], [2.0, 2.0, 2.5]])


def test_other_malformed_files(tmp_path):
    (tmp_path / "bad.tsv").write_text("1\t1.0\t2.0\n2\t1.0\tx\n")
    with pytest.raises(DataError, match=r"bad.tsv, line 2, column 3 \(value 2; the label is column 1\): 'x' is not a number"):
        read_labelled_file(tmp_path / "bad.tsv")
    (tmp_path / "bad.arff").write_text("@attribute a numeric\n@attribute c {1,2}\n@data\n1.0,2,3\n")
    with pytest.raises(DataError, match=r"line 4: 3 values, but the header declares 2 attributes"):
        read_labelled_file(tmp_path / "bad.arff")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="unknown file type '.csv'"):
        read_labelled_file(tmp_path / "x.csv")
    (tmp_path / "bin.ts").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not a text file"):
        read_labelled_file(tmp_path / "bin.ts")
    with pytest.raises(DataError, match="does not exist"):
        read_labelled_file(tmp_path / "nope.ts")


def test_test_labels_must_occur_in_training(tmp_path):
    (tmp_path / "S_TRAIN.ts").write_text(_ts_text([[[1, 2]], [[3, 4]]], ["a", "b"]))
    (tmp_path / "S_TEST.ts").write_text(_ts_text([[[1, 2]], [[3, 4]]], ["a", "z"]))
    with pytest.raises(DataError, match=r"class label\(s\) \['z'\] do not occur in the training split"):
        load_classification_pair("S", root=tmp_path)


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(DataError, match="'Nope' is not shipped with aeon.*GunPoint"):
        load_classification_pair("Nope")
    with pytest.raises(DataError, match="no Nope_TRAIN"):
        load_classification_pair("Nope", root=tmp_path)
    with pytest.raises(DataError, match="data.dataset is not set"):
        load_classification_pair(None)
    with pytest.raises(DataError, match="set both data.train_file and data.test_file"):
        load_classification_pair(train_file=tmp_path / "a.ts")


def test_unequal_lengths_in_local_files(tmp_path):
    # UCR .tsv pads shorter series with trailing NaN; a .ts case may simply be shorter
    (tmp_path / "U_TRAIN.tsv").write_text("1\t1.0\t2.0\t3.0\n2\t4.0\t5.0\tNaN\n")
    (tmp_path / "U_TEST.ts").write_text(_ts_text([[[1.0, 2.0]], [[3.0, 4.0, 5.0, 6.0]]], ["1", "2"]))
    with pytest.raises(DataError, match=r"U_TRAIN.tsv: series have unequal lengths \(case 1 has 2 values, case 0 has 3, "
                                        r"expected 4\); set data.unequal_length=pad or resample"):
        load_classification_pair(train_file=tmp_path / "U_TRAIN.tsv", test_file=tmp_path / "U_TEST.ts")
    train, test = load_classification_pair(train_file=tmp_path / "U_TRAIN.tsv", test_file=tmp_path / "U_TEST.ts",
                                           unequal_length="pad")
    assert train.x.shape == test.x.shape[:1] + (1, 4) == (2, 1, 4)
    np.testing.assert_array_equal(train.x[1, 0], [4.0, 5.0, 5.0, 5.0])
    assert train.lengths.tolist() == [3, 2] and test.lengths.tolist() == [2, 4]


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("empty_label.ts", "@classLabel true 1\n@data\n1,2,3:\n", r"line 3: empty class label"),
        ("bad_value.ts", "@classLabel true 1\n@data\n1,2,3:1\n1,inf,3:1\n",
         r"line 4, channel 0, position 1: infinite value 'inf'; replace it by a number"),
        ("channels.ts", "@classLabel true 1\n@data\n1,2:3,4:1\n1,2:1\n", r"line 4: 1 channels, earlier cases have 2; every case"),
        ("only_class.arff", "@attribute c {1,2}\n@data\n1\n2\n", r"line 3: needs at least one numeric attribute"),
        ("short_row.arff", "@attribute a numeric\n@attribute b numeric\n@attribute c {1,2}\n@data\n1.0,2.0,1\n1.0,2\n",
         r"line 6: 2 values, but the header declares 3 attributes; every row needs one value per attribute"),
        ("no_data.arff", "@attribute a numeric\n@attribute c {1,2}\n", r"no @data rows found"),
        ("label_only.tsv", "1\t1.0\n2\n", r"line 2: needs a label and at least one value"),
        ("all_nan.tsv", "1\t1.0\n2\tNaN\tNaN\n", r"line 2: the series has no values"),
        ("word.txt", "1 1.0 2.0\n2 1.0 two\n", r"line 2, column 3 \(value 2; the label is column 1\): 'two' is not a number; fix the value"),
        ("empty.tsv", "\n\n", r"no series found"),
    ],
)
def test_malformed_labelled_files_name_file_and_line(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=match) as err:
        load_classification_split(tmp_path / name)
    assert str(err.value).startswith(str(tmp_path / name))


def test_unknown_set_suggests_the_shipped_name_and_folders_are_named(tmp_path):
    with pytest.raises(DataError, match=r"'gunpoint' is not shipped with aeon \(did you mean 'GunPoint'\?\)"):
        load_classification_pair("gunpoint")
    with pytest.raises(DataError, match=r"is a folder; name the .ts/.arff/.tsv/.txt file itself"):
        load_classification_pair(train_file=tmp_path, test_file=tmp_path)
    with pytest.raises(DataError, match=r"data path .*missing does not exist"):
        load_classification_pair("GunPoint", root=tmp_path / "missing")
    (tmp_path / "C_TRAIN.ts").write_text(_ts_text([[[1, 2], [3, 4]], [[1, 2], [3, 4]]], ["a", "b"]))
    (tmp_path / "C_TEST.ts").write_text(_ts_text([[[1, 2]]], ["a"]))
    with pytest.raises(DataError, match=r"C_TEST.ts: 1 channels, but the training file has 2; both files"):
        load_classification_pair("C", root=tmp_path)
