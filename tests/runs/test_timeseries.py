"""The time-series modality: recipes validate, bad keys are named, the set-up builds the
right data, encoders export and reload, snapshots are written per epoch."""

from __future__ import annotations

import json

import pytest
import torch

from invlab.errors import CheckpointError, ConfigError, DataError
from invlab.nn import PatchTransformer
from invlab.runs.config import load_recipe
from invlab.runs.timeseries import (
    EncoderSnapshots,
    export_series_encoder,
    load_series_encoder,
    setup,
)


def test_time_series_recipes_validate():
    etth1 = load_recipe("timedrl-etth1")
    assert etth1.modality.name == "timeseries" and etth1.data.seq_len == 512 and etth1.model.d_model == 128
    assert etth1.params.contrastive_weight == 0.5 and etth1.model.dropout == 0.2
    ucr = load_recipe("timedrl-ucr", ["data.dataset=ArrowHead"])
    assert ucr.data.dataset == "ArrowHead" and ucr.model.channel_independent is False
    assert load_recipe("supervised-ucr").method == "supervised_ts"


@pytest.mark.parametrize(
    "recipe, overrides, match",
    [
        ("timedrl-etth1", ["data.name=parquet"], r"'data.name' must be one of ett, csv, ucr"),
        ("timedrl-etth1", ["data.seq_len=null"], r"'data.seq_len' must be set for forecasting"),
        ("timedrl-etth1", ["model.n_heads=3"], r"'model.d_model' \(128\) must be divisible by 'model.n_heads' \(3\)"),
        ("timedrl-etth1", ["data.seq_len=8"], r"'data.seq_len' \(8\) is shorter than 'model.patch_len' \(16\)"),
        ("timedrl-etth1", ["params.randomness=augmentation"], r"'augment.pipeline' is empty"),
        ("timedrl-etth1", ["model.dropout=0.0"], r"makes the two passes identical"),
        ("timedrl-etth1", ["model.channel_independent=false"], r"forecasting uses channel-independent patches"),
        ("timedrl-etth1", ["params.instance=first"], r"'params.instance' must be one of cls, last, mean"),
        ("timedrl-etth1", ["params.lambda=1"], r"unknown recipe key 'params.lambda'"),
        ("timedrl-etth1", ["data.horizons=[0]"], r"'data.horizons' must list positive horizons"),
        ("timedrl-etth1", ["augment.pipeline=[{name: time_wrap}]"], r"unknown transform 'time_wrap' \(did you mean 'time_warp'\?\)"),
        ("timedrl-ucr", ["data.dataset=null"], r"'data.dataset' is not set"),
        ("timedrl-ucr", ["data.unequal_length=truncate"], r"'data.unequal_length' must be one of error, pad, resample"),
        ("supervised-ucr", ["data.name=ett", "data.seq_len=96"], r"supervised_ts classifies labelled series"),
        ("timedrl-ucr", ["data.batch_size=1"], r"'data.batch_size' must be >= 2"),
    ],
)
def test_bad_time_series_recipes_name_the_key(recipe, overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe(recipe, overrides)


def test_setup_builds_windows_from_the_training_split(etth1_csv):
    cfg = load_recipe("timedrl-etth1", [f"data.root={etth1_csv}", "data.seq_len=96", "data.window_stride=10"])
    parts = setup(cfg, world_size=1, progress=False)
    train = parts.datamodule.train
    assert len(train) == len(range(0, 8640 - 96 + 1, 10)) and train.starts[-1] + 96 <= 8640
    assert parts.info["borders"]["train"] == [0, 8640] and parts.datamodule.val is not None
    batch = next(iter(parts.datamodule.train_dataloader()))
    assert batch["series"].shape == (32, 7, 96)
    assert torch.isfinite(parts.method.pretext_losses(batch["series"])["loss"])


def test_missing_root_and_classification_setup():
    cfg = load_recipe("timedrl-etth1")
    with pytest.raises(DataError, match="data.root is not set: point it at an ETT CSV"):
        setup(cfg, 1, False)
    ucr = load_recipe("timedrl-ucr", ["data.dataset=BasicMotions"])
    parts = setup(ucr, 1, False)
    assert parts.info["classes"] == ["Badminton", "Running", "Standing", "Walking"]
    assert parts.method.encoder.in_channels == 6 and not parts.method.encoder.channel_independent
    with pytest.raises(ConfigError, match=r"'data.seq_len' \(99\) differs from the series length"):
        setup(load_recipe("timedrl-ucr", ["data.seq_len=99"]), 1, False)


def test_export_and_reload(tmp_path):
    enc = PatchTransformer(3, 40, patch_len=8, stride=8, d_model=16, n_heads=2).eval()
    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(16, 4))
    export_series_encoder(enc, tmp_path, head, task="classification", classes=["a", "b", "c", "d"])
    loaded, meta = load_series_encoder(tmp_path)
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(loaded(x), enc(x))
    assert meta["modality"] == "timeseries" and meta["classifier"] == "classifier.safetensors"
    assert (tmp_path / "classifier.safetensors").is_file()
    meta["backbone"]["d_model"] = 32
    (tmp_path / "encoder.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the recorded architecture|cannot rebuild"):
        load_series_encoder(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_series_encoder(tmp_path / "nope")
    (tmp_path / "encoder.json").write_text(json.dumps({"format": "invlab-encoder", "modality": "image"}))
    with pytest.raises(CheckpointError, match="not a time-series invlab encoder"):
        load_series_encoder(tmp_path)


class _Trainer:
    def __init__(self, root, step, epoch):
        self.default_root_dir, self.global_step, self.current_epoch, self.is_global_zero = str(root), step, epoch, True


class _Module:
    def __init__(self, encoder):
        self.encoder = encoder


def test_snapshots_before_training_and_after_each_epoch(tmp_path):
    enc = PatchTransformer(2, 24, patch_len=8, stride=8, d_model=8, n_heads=2)
    cb = EncoderSnapshots({"task": "forecasting"})
    cb.on_train_start(_Trainer(tmp_path, 0, 0), _Module(enc))
    with torch.no_grad():
        enc.cls_token.add_(1.0)
    cb.on_train_epoch_end(_Trainer(tmp_path, 10, 0), _Module(enc))
    snaps = tmp_path / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == ["encoder.json", "epoch000.safetensors", "epoch001.safetensors"]
    first, _ = load_series_encoder(snaps / "epoch000.safetensors")
    after, _ = load_series_encoder(snaps / "epoch001.safetensors")
    torch.testing.assert_close(after.cls_token, first.cls_token + 1)
    cb.on_train_start(_Trainer(tmp_path, 10, 1), _Module(enc))  # a resumed run keeps its epoch000
    torch.testing.assert_close(load_series_encoder(snaps / "epoch000.safetensors")[0].cls_token, first.cls_token)


def _small_csv(path, rows: int = 400):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=rows, freq="h"),
                          "a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame.to_csv(path, index=False)
    return path


SMALL = ["data.name=csv", "model.patch_len=8", "model.stride=8", "model.d_model=16"]


@pytest.mark.parametrize(
    "overrides, match",
    [  # 400 rows, 70/10/20: train 280, val 40, test 80
        (["data.seq_len=32", "data.horizons=[24,96]", "data.split_ratios=[0.6,0.3,0.1]"],
         r"s.csv: horizon 96 \(data.horizons\) is longer than the test split \(40 rows\); drop the horizon .*data.split_ratios"),
        (["data.seq_len=32", "data.horizons=[60]"], r"horizon 60 \(data.horizons\) is longer than the val split \(40 rows\)"),
        (["data.seq_len=260", "data.horizons=[24]", "monitor.val_loss=false"],
         r"the train split has 280 rows, fewer than data.seq_len \+ horizon = 260 \+ 24 .*lower data.seq_len"),
        (["data.seq_len=48", "data.horizons=[24]"],
         r"the val split has 40 rows, fewer than data.seq_len=48 .*or set monitor.val_loss=false"),
        (["data.seq_len=280", "data.horizons=[24]"],
         r"the training split has 280 rows, not more than the input length data.seq_len=280; lower data.seq_len"),
    ],
)
def test_impossible_windows_are_refused_before_training(tmp_path, overrides, match):
    cfg = load_recipe("timedrl-etth1", SMALL + [f"data.root={_small_csv(tmp_path / 's.csv')}"] + overrides)
    with pytest.raises((ConfigError, DataError), match=match):
        setup(cfg, 1, False)


def test_forecast_protocol_refuses_a_horizon_longer_than_a_split(tmp_path):
    from invlab.runs.timeseries import forecast_protocol

    cfg = load_recipe("timedrl-etth1", SMALL + [f"data.root={_small_csv(tmp_path / 's.csv')}", "data.seq_len=32",
                                                "data.horizons=[24]"])
    assert setup(cfg, 1, False).info["borders"]["test"] == [320, 400]  # the recipe itself fits
    # checked before any encoder is loaded or any window encoded (the run folder need not exist)
    with pytest.raises(ConfigError, match=r"horizon 720 \(--horizons\) is longer than the val split \(40 rows\)"):
        forecast_protocol(tmp_path / "no-run", cfg, horizons=[24, 720], progress=False)


def test_classification_needs_two_series_and_two_classes(tmp_path):
    (tmp_path / "one_TRAIN.tsv").write_text("1\t1\t2\t3\t4\t5\t6\t7\t8\n")
    (tmp_path / "one_TEST.tsv").write_text("1\t1\t2\t3\t4\t5\t6\t7\t8\n")
    small = ["model.patch_len=4", "model.stride=4", "model.d_model=16", f"data.root={tmp_path}"]
    with pytest.raises(DataError, match=r"one_TRAIN.tsv: the training split has 1 series in 1 class\(es\); "
                                        r"classification needs at least 2 series and 2 classes"):
        setup(load_recipe("timedrl-ucr", small + ["data.dataset=one"]), 1, False)
    (tmp_path / "same_TRAIN.tsv").write_text("1\t1\t2\t3\t4\t5\t6\t7\t8\n1\t2\t2\t3\t4\t5\t6\t7\t8\n")
    (tmp_path / "same_TEST.tsv").write_text("1\t1\t2\t3\t4\t5\t6\t7\t8\n")
    with pytest.raises(DataError, match=r"same_TRAIN.tsv: the training split has 2 series in 1 class"):
        setup(load_recipe("supervised-ucr", small + ["data.dataset=same"]), 1, False)


def test_standardize_uses_training_statistics_only():
    import numpy as np

    from invlab.runs.timeseries import load_labelled_data

    raw_train, raw_test = load_labelled_data(load_recipe("timedrl-ucr", ["data.dataset=BasicMotions"]))
    train, test = load_labelled_data(load_recipe("timedrl-ucr", ["data.dataset=BasicMotions", "data.standardize=true"]))
    mean, std = raw_train.x.mean(axis=(0, 2), keepdims=True), raw_train.x.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(train.x.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(train.x.std(axis=(0, 2)), 1, atol=1e-4)
    np.testing.assert_allclose(test.x, (raw_test.x - mean) / std, rtol=1e-5, atol=1e-5)
    assert (train.y == raw_train.y).all() and (test.y == raw_test.y).all()
    with pytest.raises(ConfigError, match="'data.standardize' is for ucr data"):
        load_recipe("timedrl-etth1", ["data.standardize=true"])


def test_classify_protocol_probe_options_and_the_untrained_reference(tmp_path):
    import shutil

    from invlab.runs.timeseries import build_encoder, classify_protocol

    cfg = load_recipe("timedrl-ucr", ["data.dataset=ItalyPowerDemand", "model.d_model=8", "model.n_heads=2",
                                      "model.n_layers=1"])
    torch.manual_seed(0)
    export_series_encoder(build_encoder(cfg, 1, 24), tmp_path)
    (tmp_path / "snapshots").mkdir()
    shutil.copy(tmp_path / "encoder.safetensors", tmp_path / "snapshots" / "epoch000.safetensors")
    shutil.copy(tmp_path / "encoder.json", tmp_path / "snapshots" / "encoder.json")
    base = classify_protocol(tmp_path, cfg, progress=False)
    assert base["probe"]["feature_dim"] == 8 and base["probe"]["features"] == "instance" and "untrained" not in base
    rich = classify_protocol(tmp_path, cfg, progress=False, features="all", level_scale=True, include_init=True)
    assert rich["probe"]["feature_dim"] == 3 * 8 + 2 and rich["probe"]["level_scale"]
    assert rich["untrained"] == rich["probe"]  # the snapshot holds the same weights here
    assert "instance + mean+max of the patch tokens + level/scale (26 features" in rich["table"]
    with pytest.raises(ConfigError, match="'features' must be one of instance, tokens, all"):
        classify_protocol(tmp_path, cfg, progress=False, features="cls")
    shutil.rmtree(tmp_path / "snapshots")
    with pytest.raises(ConfigError, match="include_init needs the run's snapshots"):
        classify_protocol(tmp_path, cfg, progress=False, include_init=True)
