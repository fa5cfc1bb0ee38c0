"""Lightning loggers by recipe key, and the invariance monitor during pretraining."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from invlab.cli.main import main
from invlab.runs.config import load_recipe
from invlab.runs.pretrain_run import pretrain

TINY = ["model.width=4", "model.projector.hidden=[32]", "model.projector.out=16", "monitor.knn_k=20",
        "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1"]
MONITOR = "trainer.invariance_monitor={transforms: [rotate, hflip], every_n_epochs: 1, num_samples: 32}"


def test_tensorboard_csv_and_any_lightning_logger_with_the_invariance_curve(tmp_path):
    run = tmp_path / "run"
    cfg = load_recipe("simclr-digits", [*TINY, MONITOR, "trainer.loggers=[csv, tensorboard, {logger: CSVLogger, "
                                                         "name: other}]"])
    pretrain(cfg, run, progress=False)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run / "other").rglob("metrics.csv"))  # Lightning's own CSVLogger, by class name
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"invariance/rotate", "invariance/hflip"} <= set(header)
    curve = json.loads((run / "invariance_curve.json").read_text())
    assert [r["epoch"] for r in curve["rows"]] == [0, 1, 2] and [r["step"] for r in curve["rows"]] == [0, 3, 6]
    assert all(0 <= r["rotate"] < 5 and 0 <= r["hflip"] < 5 for r in curve["rows"])
    assert curve["rows"][0]["rotate"] != curve["rows"][-1]["rotate"]  # the encoder changed between them


def test_the_monitor_changes_nothing_in_training(tmp_path):
    with_monitor, without = tmp_path / "a", tmp_path / "b"
    pretrain(load_recipe("simclr-digits", [*TINY, MONITOR]), with_monitor, progress=False)
    pretrain(load_recipe("simclr-digits", TINY), without, progress=False)
    a, b = load_file(str(with_monitor / "encoder.safetensors")), load_file(str(without / "encoder.safetensors"))
    assert all(bool((a[k] == b[k]).all()) for k in a)


@pytest.mark.parametrize(
    "override, match",
    [
        ("trainer.loggers=[tensorbord]", "'trainer.loggers[0]': unknown logger 'tensorbord' (did you mean 'tensorboard'?)"),
        ("trainer.loggers=[{name: csv, flush: 1}]", "csv takes no options"),
        ("trainer.loggers=[{name: mlflow, colour: red}]", "MLFlowLogger has no option 'colour'"),
        ("trainer.invariance_monitor={transforms: [rotate], every: 2}", "unknown option 'every'"),
        ("trainer.invariance_monitor={transforms: [rotate], every_n_epochs: 0}",
         "'trainer.invariance_monitor.every_n_epochs': expected an integer >= 1, got 0"),
        ("trainer.invariance_monitor={transforms: []}", "name at least one transformation"),
    ],
)
def test_bad_logger_and_monitor_keys_are_one_line(override, match, tmp_path, capsys):
    assert main(["pretrain", "--recipe", "simclr-digits", override, "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_the_monitor_is_for_image_runs(capsys, tmp_path):
    assert main(["pretrain", "--recipe", "timedrl-ucr", "data.dataset=GunPoint",
                 "trainer.invariance_monitor={transforms: [ts_jitter]}", "--dry-run"]) == 2
    assert "measures image encoders" in capsys.readouterr().err
