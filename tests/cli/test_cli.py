"""The command line end to end on real data (tiny budgets), and its error handling."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from invlab.cli.main import main

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
    assert 0.0 <= summary["metrics"]["val/knn_top1"] <= 1.0
    meta = json.loads((run / "run.json").read_text())
    assert meta["seed"] == 0 and "torch" in meta["versions"]

    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "knn", "--k", "20", "--json", "--no-progress"]) == 0
    knn = json.loads(capsys.readouterr().out)
    assert knn["train_size"] == 256 and knn["test_size"] == 128
    # offline kNN from the exported encoder == the online monitor at the end of training
    assert abs(knn["top1"] - summary["metrics"]["val/knn_top1"]) <= 1 / 128
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


def test_existing_run_folder_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("mine")
    assert main(["pretrain", "--recipe", "simclr-digits", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "r" / "keep.txt").read_text() == "mine"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "invlab.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("invlab ")


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "random init" in out and "simclr" in out and "simsiam" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert len(results["rows"]) == 3
    assert (tmp_path / "demo" / "report.md").is_file()


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
    assert 0.3 < summary["metrics"]["val/knn_top1"] <= 1.0
    assert (out / "encoder.safetensors").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
