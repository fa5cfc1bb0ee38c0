"""Runs survive SIGKILL and resume exactly, are deterministic, stop cleanly on NaN, and
refuse concurrent or incompatible use of their folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from invlab.cli.main import main
from invlab.errors import DivergenceError, RunError
from invlab.methods.registry import registered
from invlab.methods.simclr import SimCLR, SimCLRParams
from invlab.methods.spec import MethodSpec
from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.config import load_recipe
from invlab.runs.pretrain_run import pretrain, resume_position
from invlab.runs.run_dir import RunDir
from tests.run_helpers import sigkill_when_checkpointed

# 10 steps per epoch on the digits; small enough for seconds, big enough to kill mid-epoch
RECIPE = ["trainer.max_epochs=4", "model.width=8", "model.projector.hidden=[64]", "model.projector.out=32",
          "monitor.knn_k=20", "trainer.log_every_n_steps=2"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "invlab.cli.main", *args]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "encoder.safetensors"))


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


def _metrics_rows(run: Path) -> list[str]:
    return (run / "metrics.csv").read_text().splitlines()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    args = ["pretrain", "--recipe", "simclr-digits", *RECIPE, "trainer.checkpoint_every_n_steps=1", "--no-progress"]
    sigkill_when_checkpointed(_cli(*args, "--out", str(killed)), killed,
                              lambda step: step >= 13 and step % 10 != 0, timeout=240)  # inside the second epoch
    ckpt = killed / "checkpoints" / "last.ckpt"
    state = safe_torch_load(ckpt)
    _, epoch, done = resume_position(state)
    assert 0 < int(state["global_step"]) < 40 and done < 10, "killed outside the middle of an epoch"
    assert not (killed / "encoder.safetensors").exists()

    resumed = subprocess.run(_cli("pretrain", "--resume", str(killed), "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done_ref = subprocess.run(_cli(*args, "--out", str(reference)), capture_output=True, text=True)
    assert done_ref.returncode == 0, done_ref.stderr[-3000:]

    _same_weights(killed, reference)
    a, b = json.loads((killed / "summary.json").read_text()), json.loads((reference / "summary.json").read_text())
    assert a["global_step"] == b["global_step"] == 40 and a["resumed"] and not b["resumed"]
    assert a["metrics"] == b["metrics"]
    assert _metrics_rows(killed) == _metrics_rows(reference)
    assert not list((killed / "checkpoints").glob(".*tmp*"))


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_runs(tmp_path):
    cfg = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1", "trainer.enable_progress_bar=false"])
    s1 = pretrain(cfg, tmp_path / "a", progress=False)
    s2 = pretrain(cfg, tmp_path / "b", progress=False)
    _same_weights(tmp_path / "a", tmp_path / "b")
    assert s1["metrics"] == s2["metrics"]
    assert _metrics_rows(tmp_path / "a") == _metrics_rows(tmp_path / "b")
    other = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1", "seed=1"])
    pretrain(other, tmp_path / "c", progress=False)
    assert not torch.equal(_weights(tmp_path / "a")["backbone.stem.0.weight"], _weights(tmp_path / "c")["backbone.stem.0.weight"])
    meta = json.loads((tmp_path / "a" / "run.json").read_text())
    assert meta["seed"] == 0 and {"torch", "lightning", "python"} <= set(meta["versions"])
    assert "git_revision" in meta


class _NaNAfterFive(SimCLR):
    """Diverges on purpose at step 5."""

    def training_loss(self, views):
        out = super().training_loss(views)
        if self.global_step >= 5:
            out.loss = out.loss * float("nan")
            out.terms["nt_xent"] = out.loss
        return out


@pytest.fixture
def nan_method():
    with registered(MethodSpec("nan_after_5", "image", _NaNAfterFive, SimCLRParams, views=2)):
        yield "nan_after_5"


def test_nan_loss_stops_naming_step_and_term_and_keeps_the_last_good_checkpoint(tmp_path, nan_method):
    cfg = load_recipe("simclr-digits", [*RECIPE, f"method={nan_method}", "trainer.checkpoint_every_n_steps=2"])
    with pytest.raises(DivergenceError, match=r"step 5: term\(s\) nt_xent.*last good state is kept in .*last\.ckpt \(step 4\)"):
        pretrain(cfg, tmp_path / "run", progress=False)
    state = safe_torch_load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert state["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert not RunDir(tmp_path / "run").path.joinpath(".lock").read_text() == ""  # lock file left, lock released
    RunDir(tmp_path / "run").lock()  # released: a new process (or this one) may take it


def test_a_second_writer_is_refused(tmp_path, capsys):
    cfg = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1"])
    pretrain(cfg, tmp_path / "run", progress=False)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from invlab.runs.run_dir import RunDir; "
        f"RunDir({str(tmp_path / 'run')!r}).lock(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["pretrain", "--resume", str(tmp_path / "run"), "--no-progress"]) == 2
        assert "is in use by pid" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_incompatible_run_folder_is_refused(tmp_path, capsys):
    cfg = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1"])
    pretrain(cfg, tmp_path / "run", progress=False)
    meta_path = tmp_path / "run" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    assert main(["pretrain", "--resume", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "format 99" in capsys.readouterr().err
    with pytest.raises(RunError, match="not a run folder"):
        RunDir(tmp_path).check_compatible()


def test_paths_with_shell_metacharacters_are_used_literally(tmp_path, monkeypatch):
    """A run folder named with shell syntax is created under exactly that name."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    out = tmp_path / "run $(touch pwned); `touch pwned` & x"
    cfg = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1"])
    pretrain(cfg, out, progress=False)
    assert (out / "encoder.safetensors").is_file() and not marker.exists()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_resume_position_reads_both_kinds_of_checkpoint():
    def ckpt(epochs, batches, step):
        return {"global_step": step, "loops": {"fit_loop": {"epoch_progress": {"current": epochs},
                                                             "epoch_loop.batch_progress": {"current": batches}}}}

    mid = ckpt({"ready": 2, "started": 2, "processed": 1, "completed": 1}, {"ready": 8, "completed": 7}, 18)
    end = ckpt({"ready": 2, "started": 2, "processed": 2, "completed": 1}, {"ready": 10, "completed": 10}, 20)
    assert resume_position(mid) == (18, 1, 8)
    assert resume_position(end) == (20, 2, 0)
    assert resume_position({}) == (0, 0, 0)  # a checkpoint without loop state starts at the beginning


def test_stale_temporaries_of_an_interrupted_save_are_removed(tmp_path):
    cfg = load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1"])
    pretrain(cfg, tmp_path / "run", progress=False)
    stale = tmp_path / "run" / "checkpoints" / f".last.ckpt.tmp-{os.getpid() + 1}"
    stale.write_bytes(b"half a checkpoint")
    cfg_dict = (tmp_path / "run" / "config.yaml").read_text().replace("max_epochs: 1", "max_epochs: 2")
    (tmp_path / "run" / "config.yaml").write_text(cfg_dict)
    assert main(["pretrain", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert not stale.exists()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 2


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    pretrain(load_recipe("simclr-digits", [*RECIPE, "trainer.max_epochs=1"]), run, progress=False)
    return run


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("run.json", '{"format": "invlab-run", "format_ver', "run.json: cannot read the run's metadata (run.json)"),
        ("run.json", "[1, 2]", "the run's metadata (run.json) must be a JSON object, found list"),
        ("run.json", '{"format": "invlab-run", "format_version": "one"}', "run folder format one"),
        ("summary.json", '{"train_seconds": 1', "summary.json: cannot read the run's summary (summary.json)"),
        ("summary.json", '"done"', "the run's summary (summary.json) must be a JSON object, found str"),
        ("summary.json", '{"train_seconds": "fast"}', "'train_seconds' must be a number, found 'fast'"),
    ],
)
def test_truncated_or_hand_edited_run_files_are_one_clear_error(finished_run, name, text, match, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / name).write_text(text)
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("max_epochs: 1", "max_epochs: 2"))
    assert main(["pretrain", "--resume", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert (run / "encoder.safetensors").read_bytes() == (finished_run / "encoder.safetensors").read_bytes()
