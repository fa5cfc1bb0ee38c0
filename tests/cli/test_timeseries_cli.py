"""The time-series command line end to end on real data with tiny budgets: pretrain
TimeDRL on ETTh1 and evaluate forecasting; pretrain TimeDRL and the supervised baseline on
GunPoint and evaluate classification."""

from __future__ import annotations

import json

import pytest

from invlab.cli.main import main

TINY_MODEL = ["model.d_model=16", "model.n_heads=2", "trainer.max_epochs=1"]


@pytest.mark.slow
def test_pretrain_and_forecast_on_etth1(etth1_csv, tmp_path, capsys):
    run = tmp_path / "etth1"
    rc = main(["pretrain", "--recipe", "timedrl-etth1", f"data.root={etth1_csv}", "data.seq_len=96",
               "data.window_stride=256", "data.batch_size=16", *TINY_MODEL, "--out", str(run), "--no-progress"])
    assert rc == 0
    for name in ("config.yaml", "encoder.safetensors", "encoder.json", "checkpoints/last.ckpt", "summary.json",
                 "snapshots/epoch000.safetensors", "snapshots/epoch001.safetensors"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "timedrl" and summary["task"] == "forecasting"
    assert "val/predictive" in summary["metrics"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "forecast", "--horizons", "24", "48", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "selected on validation" in out and "epoch 1" in out
    result = json.loads((run / "eval_forecast.json").read_text())
    assert result["selection"] == "validation" and set(result["horizons"]) == {"24", "48"}
    h24 = result["horizons"]["24"]
    assert h24["train_windows"] == 8640 - 96 - 24 + 1 and h24["test_windows"] == 2880 - 24 + 1
    assert 0 < h24["test_mse"] < 2 and "untrained_encoder" in result
    assert main(["evaluate", str(run), "--protocol", "classify", "--no-progress"]) == 2
    assert "needs labelled data" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_and_classify_gunpoint_with_supervised_baseline(tmp_path, capsys):
    for recipe in ("timedrl-ucr", "supervised-ucr"):
        run = tmp_path / recipe
        assert main(["pretrain", "--recipe", recipe, "data.dataset=GunPoint", *TINY_MODEL, "trainer.max_epochs=3",
                     "--out", str(run), "--no-progress"]) == 0
        capsys.readouterr()
        assert main(["evaluate", str(run), "--protocol", "classify", "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert "classify GunPoint (50 train / 150 test series, 2 classes)" in out
        result = json.loads((run / "eval_classify.json").read_text())
        assert 0.0 <= result["accuracy"] <= 1.0 and result["probe"]["cv_folds"] == 5
        assert ("trained_head" in result) == (recipe == "supervised-ucr")
    run = tmp_path / "timedrl-ucr"
    assert main(["evaluate", str(run), "--protocol", "classify", "--features", "all", "--level-scale",
                 "--no-progress"]) == 0
    assert "instance + mean+max of the patch tokens + level/scale" in capsys.readouterr().out
    rich = json.loads((run / "eval_classify.json").read_text())["probe"]
    d_model = json.loads((run / "encoder.json").read_text())["feature_dim"]
    assert rich["features"] == "all" and rich["level_scale"] and rich["feature_dim"] == 3 * d_model + 2
    assert main(["evaluate", str(tmp_path / "timedrl-ucr"), "--protocol", "forecast", "--no-progress"]) == 2
    assert "needs forecasting data" in capsys.readouterr().err


@pytest.mark.slow
def test_time_series_pretrain_and_classify_at_a_large_seed(tmp_path, capsys):
    """Seeds above 2**32 reach scikit-learn's probe (random_state takes 32 bits)."""
    run = tmp_path / "r"
    assert main(["pretrain", "--recipe", "timedrl-ucr", "data.dataset=GunPoint", f"seed={2**62}", *TINY_MODEL,
                 "--out", str(run), "--no-progress"]) == 0
    assert main(["evaluate", str(run), "--protocol", "classify", "--no-progress"]) == 0


def test_dataset_override_and_errors(tmp_path, capsys):
    assert main(["pretrain", "--recipe", "timedrl-ucr", "data.dataset=ItalyPowerDemand", "--dry-run"]) == 0
    assert "dataset: ItalyPowerDemand" in capsys.readouterr().out
    assert main(["pretrain", "--recipe", "timedrl-ucr", "data.dataset=NotAUCRSet", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    assert "is not shipped with aeon" in capsys.readouterr().err
    assert main(["pretrain", "--recipe", "timedrl-etth1", "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    assert "data.root is not set" in capsys.readouterr().err


TINY_TS2VEC = ["model.hidden_dim=8", "model.output_dim=16", "model.depth=2", "trainer.max_epochs=2"]


@pytest.mark.slow
def test_pretrain_and_classify_gunpoint_with_ts2vec(tmp_path, capsys):
    run = tmp_path / "ts2vec"
    assert main(["pretrain", "--recipe", "ts2vec-ucr", "data.dataset=GunPoint", *TINY_TS2VEC, "--out", str(run),
                 "--no-progress"]) == 0
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["backbone"]["arch"] == "ts2vec_encoder" and meta["feature_dim"] == 16 and "num_patches" not in meta
    assert (run / "snapshots" / "epoch000.safetensors").is_file()
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "classify", "--no-progress"]) == 0
    assert "classify GunPoint (50 train / 150 test series, 2 classes)" in capsys.readouterr().out
    result = json.loads((run / "eval_classify.json").read_text())
    assert result["probe"]["feature_dim"] == 16 and 0.5 <= result["accuracy"] <= 1.0  # max over time, 2 classes
    from invlab.runs.evaluate_run import evaluate
    rich = evaluate(run, "classify", progress=False, include_init=True, features="tokens")
    assert rich["probe"]["feature_dim"] == 32 and "untrained" in rich
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "classify", "--classifier", "svm", "--no-progress"]) == 0
    assert "RBF-SVM probe on the instance embedding (16 features" in capsys.readouterr().out
    assert json.loads((run / "eval_classify.json").read_text())["probe"]["classifier"] == "svm"
    assert main(["evaluate", str(run), "--protocol", "classify", "--features", "all", "--no-progress"]) != 0
    assert "has no instance token; use instance or tokens" in capsys.readouterr().err


def test_ts2vec_recipe_errors(tmp_path, capsys):
    assert main(["pretrain", "--recipe", "ts2vec-ucr", "model.backbone=patch_transformer", "--dry-run"]) == 2
    assert "set model.backbone=dilated_conv" in capsys.readouterr().err
    assert main(["pretrain", "--recipe", "timedrl-ucr", "model.backbone=dilated_conv", "--dry-run"]) == 2
    assert "set model.backbone=patch_transformer" in capsys.readouterr().err
    assert main(["pretrain", "--recipe", "ts2vec-ucr", "params.max_train_length=1", "--dry-run"]) == 2
    assert "'params.max_train_length' must be >= 2" in capsys.readouterr().err
    assert main(["pretrain", "--recipe", "ts2vec-ucr", "model.depth=-1", "--dry-run"]) == 2
    assert "'model.depth' must be >= 0" in capsys.readouterr().err


def test_ts2vec_refuses_series_shorter_than_its_crops(tmp_path, capsys):
    train, test = tmp_path / "Tiny_TRAIN.tsv", tmp_path / "Tiny_TEST.tsv"
    train.write_text("".join(f"{i % 2}\t{i * 0.1}\n" for i in range(8)))  # series of one step
    test.write_text("0\t0.5\n1\t0.7\n")
    rc = main(["pretrain", "--recipe", "ts2vec-ucr", f"data.train_file={train}", f"data.test_file={test}",
               *TINY_TS2VEC, "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc != 0
    assert "the training series have 1 step(s), fewer than the shortest crop TS2Vec draws" in capsys.readouterr().err
