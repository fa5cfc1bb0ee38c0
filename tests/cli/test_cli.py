"""The command line end to end on real data (tiny budgets), and its error handling."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from invlab.cli.main import main
from invlab.evaluation.knn import faiss_available

TINY = ["model.width=4", "data.batch_size=64", "data.train_subset=256", "data.test_subset=128",
        "trainer.max_epochs=1", "model.projector.hidden=[32]", "model.projector.out=16", "monitor.knn_k=20"]


@pytest.mark.slow
def test_pretrain_then_evaluate_on_real_cifar(cifar_tarball, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["pretrain", "--recipe", "simclr-cifar10", f"data.root={cifar_tarball}", *TINY,
               "--out", str(run), "--no-progress"])
    assert rc == 0
    for name in ("config.yaml", "run.json", "metrics.csv", "summary.json", "encoder.safetensors",
                 "encoder.json", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["global_step"] == 4
    assert 0.0 <= summary["metrics"]["test/knn_top1"] <= 1.0
    meta = json.loads((run / "run.json").read_text())
    assert meta["seed"] == 0 and "torch" in meta["versions"]

    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "knn", "--k", "20", "--json", "--no-progress"]) == 0
    knn = json.loads(capsys.readouterr().out)
    assert knn["train_size"] == 256 and knn["test_size"] == 128
    # offline kNN from the exported encoder == the online monitor at the end of training
    assert abs(knn["top1"] - summary["metrics"]["test/knn_top1"]) <= 1 / 128
    if faiss_available():  # the optional backend: the same neighbours, the same accuracy
        assert main(["evaluate", str(run), "--protocol", "knn", "--k", "20", "--knn-backend", "faiss", "--json",
                     "--no-progress"]) == 0
        with_faiss = json.loads(capsys.readouterr().out)
        assert with_faiss["knn_backend"] == "faiss" and with_faiss["top1"] == knn["top1"]
    assert main(["evaluate", str(run / "checkpoints" / "last.ckpt"), "--protocol", "linear", "--epochs", "5",
                 "--no-progress"]) == 0
    assert "linear top-1" in capsys.readouterr().out
    assert (run / "eval_knn.json").is_file() and (run / "eval_linear.json").is_file()


def test_recipes_lists_and_prints(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "simclr-cifar10" in out and "simsiam-digits" in out
    assert main(["recipes", "simclr-digits"]) == 0
    assert "method: simclr" in capsys.readouterr().out


def test_dry_run_resolves_trainer_flags(capsys):
    assert main(["pretrain", "--recipe", "simclr-digits", "--dry-run", "--max-epochs", "3", "--devices", "2",
                 "--strategy", "ddp", "--precision", "bf16-mixed", "--num-nodes", "2", "--accelerator", "cpu"]) == 0
    out = capsys.readouterr().out
    for text in ("max_epochs: 3", "devices: 2", "strategy: ddp", "precision: bf16-mixed", "num_nodes: 2"):
        assert text in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["pretrain", "--recipe", "simclr-digits", "optim.lrr=1"], "unknown recipe key 'optim.lrr'"),
        (["pretrain", "--recipe", "nope"], "unknown recipe 'nope'"),
        (["pretrain"], "needs --recipe"),
        (["pretrain", "--recipe", "simclr-cifar10", "trainer.max_epochs=1"], "data.root is not set"),
        (["evaluate", "/nonexistent/run"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, match, capsys, tmp_path):
    if argv[0] == "pretrain" and "--recipe" in argv:
        argv = argv + ["--out", str(tmp_path / "r"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("seed", [42, 2**62])
def test_pretrain_at_large_seeds_as_the_user_types_it(seed, tmp_path, capsys):
    """`invlab pretrain --recipe simclr-controlled seed=42` died at the first step."""
    run = tmp_path / "r"
    assert main(["pretrain", "--recipe", "simclr-controlled", f"seed={seed}", "data.controlled.train_samples=256",
                 "data.controlled.test_samples=64", "data.batch_size=64", "model.width=4", "trainer.max_epochs=1",
                 "--out", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["seed"] == seed


@pytest.mark.parametrize("seed", ["-1", "9223372036854775808"])
def test_seed_outside_63_bits_is_one_line(seed, tmp_path, capsys):
    assert main(["pretrain", "--recipe", "simclr-digits", f"seed={seed}", "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    assert "recipe key 'seed': expected an integer in [0, 2**63)" in capsys.readouterr().err


def test_existing_run_folder_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    assert main(["pretrain", "--recipe", "simclr-digits", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "r" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("module", ["invlab", "invlab.cli.main"])
def test_console_script_runs(module):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("invlab ")


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "random init" in out and "simclr" in out and "supervised" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [r["method"] for r in results["rows"]] == ["random init", "supervised", "simclr"]
    assert set(results["rows"][1]["invariance"]) == {"rotate", "scale", "translate", "hflip", "hue", "brightness",
                                                     "grayscale", "blur"}
    for name in ("report.md", "examples.png", "invariance.png"):
        assert (tmp_path / "demo" / name).is_file(), name
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "![invariance](invariance.png)" in report
    # the findings are the sentences computed from these numbers, written into the report
    assert results["findings"] and all(f"- {line}" in report for line in results["findings"])
    assert results["trained_with"] == {"supervised": ["rotate", "scale"],
                                       "simclr": ["scale", "translate", "hflip", "hue", "brightness", "grayscale"]}


@pytest.mark.slow
@pytest.mark.ddp
def test_two_process_ddp_pretrain_on_cpu(tmp_path):
    """`--devices 2 --strategy ddp` on CPU (gloo): rank 0 owns the run folder, the global
    batch is split, the kNN monitor gathers features from both ranks."""
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [sys.executable, "-m", "invlab.cli.main", "pretrain", "--recipe", "simclr-digits", "--out", str(out),
         "--devices", "2", "--accelerator", "cpu", "--strategy", "ddp", "trainer.max_epochs=1",
         "trainer.check_val_every_n_epoch=1", "model.width=4", "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 1347 // 128  # global batch 128 = 2 x 64
    assert 0.3 < summary["metrics"]["test/knn_top1"] <= 1.0
    assert (out / "encoder.safetensors").is_file() and (out / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
@pytest.mark.ddp
def test_readme_ddp_command_without_out_picks_one_run_folder(tmp_path):
    """The README's `--devices N --strategy ddp` without `--out`: the processes Lightning
    starts take the launcher's run folder instead of a timestamp of their own (they used
    to wait for a config.yaml in a folder nobody created, forever)."""
    proc = subprocess.run(
        [sys.executable, "-m", "invlab.cli.main", "pretrain", "--recipe", "simclr-digits", "--devices", "2",
         "--strategy", "ddp", "--accelerator", "cpu", "trainer.max_epochs=1", "model.width=4",
         "model.projector.hidden=[32]", "model.projector.out=16", "trainer.limit_train_batches=3", "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("simclr-digits-"), runs
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["global_step"] == 3
    assert re.search(rf"run folder +{re.escape(str(Path('runs') / runs[0].name))}\n", proc.stdout), proc.stdout
    assert (runs[0] / "encoder.safetensors").is_file()


def test_overrides_after_an_option_are_overrides(tmp_path, capsys):
    """`invlab pretrain --recipe R --out RUN key=value` (overrides typed after an option)
    used to stop at "unrecognized arguments"."""
    assert main(["pretrain", "--recipe", "simclr-digits", "optim.lr=0.2", "--out", str(tmp_path / "run"),
                 "trainer.max_epochs=3", "seed=42", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "max_epochs: 3" in out and "seed: 42" in out and "lr: 0.2" in out
    assert main(["study", "transfer-small", "--out", str(tmp_path / "s"), "seeds=[0, 1]", "--dry-run"]) == 0
    assert "x 2 seeds" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["pretrain", "--recipe", "simclr-digits", "--out", str(tmp_path / "run"), "--bogus", "--dry-run"])
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["simclr-digits", "timedrl-etth1"])
def test_sharded_strategies_are_refused_in_one_line(recipe, capsys):
    """FSDP would leave rank 0 with one shard to export: refused before anything runs
    (torch's FSDP needs an accelerator, so no CPU run can test a gathering path)."""
    assert main(["pretrain", "--recipe", recipe, "--strategy", "fsdp", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'trainer.strategy' (fsdp)" in err and "use ddp" in err, err


def _tiny_encoder_run(folder):
    """An exported encoder (no training needed to measure it)."""
    import torch

    from invlab.nn import Encoder, resnet18
    from invlab.runs.export import export_encoder

    torch.manual_seed(0)
    enc = Encoder(resnet18(width=4), [0.5] * 3, [0.25] * 3)
    export_encoder(enc, folder, method="simclr", input_size=[32, 32], channels=3)
    return folder / "encoder.safetensors"


def test_measure_writes_table_json_and_plot(tmp_path, capsys):
    model = _tiny_encoder_run(tmp_path / "enc")
    out = tmp_path / "m"
    rc = main(["measure", str(model), "--transforms", "rotate,hue", "--layers", "layer2,output",
               "--num-samples", "48", "--bootstrap", "50", "--equivariance", "--out", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| rotate | layer2 |" in text and "parameter recovery" in text
    result = json.loads((out / "measure.json").read_text())
    assert result["transforms"] == ["rotate", "hue"] and result["layers"] == ["layer2", "output"]
    assert len(result["invariance"]) == 2 * 2 * 2  # transforms x layers x metrics
    assert {r["transform"] for r in result["equivariance"]} == {"rotate", "hue"}
    for name in ("measure.md", "invariance.png", "equivariance.png"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--transforms", "rotat"], "unknown transform 'rotat' \\(did you mean 'rotate'\\?\\)"),
        (["--layers", "layer7"], "unknown layer 'layer7'"),
        (["--data", "run"], "not inside a run folder"),
    ],
)
def test_measure_user_errors(argv, match, tmp_path, capsys):
    model = _tiny_encoder_run(tmp_path / "enc")
    assert main(["measure", str(model), "--num-samples", "8", "--out", str(tmp_path / "m"), *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "Traceback" not in err


TINY_STUDY = """
description: A tiny study for the tests.
pretrain: supervised-controlled
overrides:
  trainer: {max_epochs: 1, check_val_every_n_epoch: 1}
  model: {width: 4}
  data: {batch_size: 32, controlled: {train_samples: 64, test_samples: 32, num_classes: 4, num_backgrounds: 16}}
seeds: [0]
seed_keys: [seed, data.controlled.content_seed]
sources:
  same: {data.controlled.transforms: [rotate]}
  disjoint: {data.controlled.transforms: [hue]}
targets:
  target:
    protocol: linear
    data: {controlled: {class_offset: 4, transforms: [rotate]}}
    options: {epochs: 3}
  invariance:
    protocol: invariance
    metric: invariance/rotate
    options: {transforms: [rotate], num_samples: 32}
contrasts:
  gap: {plus: same/target, minus: disjoint/target}
"""


@pytest.mark.slow
def test_study_runs_the_grid_then_resumes_without_recomputing(tmp_path, capsys):
    recipe = tmp_path / "study.yaml"
    recipe.write_text(TINY_STUDY)
    out = tmp_path / "out"
    assert main(["study", str(recipe), "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "study.json").read_text())
    assert result["complete"] and set(result["matrix"]) == {"same", "disjoint"}
    assert set(result["matrix"]["same"]) == {"target", "invariance"}
    assert 0 <= result["matrix"]["same"]["target"]["mean"] <= 1
    gap = result["contrasts"]["gap"]
    assert gap["mean"] == pytest.approx(result["matrix"]["same"]["target"]["mean"]
                                        - result["matrix"]["disjoint"]["target"]["mean"])
    for name in ("study.md", "study.png"):
        assert (out / name).is_file()
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 4
    stamps = {p.name: p.stat().st_mtime_ns for p in cells}
    capsys.readouterr()

    # an interruption that lost one evaluation: only that cell is computed again
    (out / "cells" / "disjoint__invariance__seed0.json").unlink()
    assert main(["study", str(recipe), "--out", str(out), "--no-progress"]) == 0
    log = capsys.readouterr().out
    assert log.count("pretrained already (skipped)") == 2 and "pretraining supervised" not in log
    assert "disjoint, seed 0 -> invariance" in log and "-> target" not in log
    for p in cells:
        if p.name != "disjoint__invariance__seed0.json":
            assert p.stat().st_mtime_ns == stamps[p.name], p.name
    again = json.loads((out / "study.json").read_text())
    assert again["matrix"] == result["matrix"]

    # the study's run folders are ordinary runs: measure one on its own data, evaluate another way
    run = out / "runs" / "same" / "seed0"
    assert main(["measure", str(run), "-t", "rotate", "--data", "run", "--num-samples", "16", "--bootstrap", "20",
                 "--metric", "l2", "--no-progress"]) == 0
    assert (run / "measure" / "measure.json").is_file()
    assert main(["evaluate", str(run), "--protocol", "invariance", "--no-progress"]) == 0
    assert "| rotate | output |" in capsys.readouterr().out

    # a changed recipe does not silently reuse runs made with another config
    recipe.write_text(TINY_STUDY.replace("max_epochs: 1,", "max_epochs: 2,"))
    assert main(["study", str(recipe), "--out", str(out), "--no-progress"]) == 2
    assert "different config" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, match",
    [
        (TINY_STUDY.replace("protocol: linear", "protocol: lineer"), "unknown protocol 'lineer'"),
        (TINY_STUDY.replace("data.controlled.transforms: [hue]", "data.controlled.transform: [hue]"),
         "study source 'disjoint'.*unknown recipe key 'data.controlled.transform'"),
        (TINY_STUDY.replace("plus: same/target", "plus: same/nowhere"), "not an evaluated source/target cell"),
        (TINY_STUDY.replace("pretrain: supervised-controlled\n", ""), "study key 'pretrain' is missing"),
    ],
)
def test_study_recipe_errors_before_anything_runs(text, match, tmp_path, capsys):
    recipe = tmp_path / "study.yaml"
    recipe.write_text(text)
    assert main(["study", str(recipe), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert not (tmp_path / "out").exists()


def test_study_lists_shipped_studies_and_dry_runs(capsys):
    assert main(["study"]) == 0
    assert "transfer-small" in capsys.readouterr().out
    assert main(["study", "transfer-small", "--dry-run"]) == 0
    assert "pretraining runs" in capsys.readouterr().out


def test_time_series_bad_input_is_one_line_before_training(tmp_path, capsys):
    (tmp_path / "s.csv").write_text("date,a\n" + "".join(f"2020-01-01 {h:02d}:00,{h % 7}\n" for h in range(5))
                                    + "2020-01-01 05:00,n/a\n")
    argv = ["pretrain", "--recipe", "timedrl-etth1", "data.name=csv", f"data.root={tmp_path / 's.csv'}", "data.seq_len=32"]
    assert main(argv + ["--out", str(tmp_path / "r1"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "s.csv, line 7, column 'a': 'n/a' is not a number; fix the cell" in err and "Traceback" not in err
    assert not (tmp_path / "r1").exists()  # nothing left behind: the same command works once the file is fixed
    assert main(argv + ["--out", str(tmp_path / "r1"), "--no-progress"]) == 2
    assert "already exists" not in capsys.readouterr().err
    rows = "".join(f"2020-01-{1 + h // 24:02d} {h % 24:02d}:00,{(h * 37) % 11}\n" for h in range(400))
    (tmp_path / "s.csv").write_text("date,a\n" + rows)
    assert main(argv + ["data.horizons=[24,720]", "monitor.val_loss=false", "--out", str(tmp_path / "r2"),
                        "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "horizon 720 (data.horizons) is longer than the val split (40 rows)" in err
    assert not (tmp_path / "r2").exists()  # refused before any training


def test_essl_study_dry_runs_with_any_base_method(capsys):
    assert main(["study", "essl-controlled", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "15 pretraining runs, 57 evaluations" in out
    assert "rot90-equivariance seed 0: e_simclr, 10 epochs" in out
    assert main(["study", "essl-controlled", "pretrain=e-barlow-controlled", "seeds=[0, 1]", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "30 pretraining runs" in out and "jigsaw-invariance seed 1: e_barlow_twins" in out
