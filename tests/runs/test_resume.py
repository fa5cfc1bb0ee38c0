"""Kill-and-resume is exact for every modality: a run killed with SIGKILL the moment a
checkpoint reaches the disk (the worst moment: whatever is logged after that save is lost
with the process) and resumed with ``invlab pretrain --resume`` ends bitwise equal to a run
never interrupted: exported weights (and classifier), per-epoch snapshots, every row of
``metrics.csv`` and the summary's metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.pretrain_run import resume_position

pytestmark = pytest.mark.slow

# the run as `invlab pretrain` makes it, except that the process kills itself right after
# the checkpoint of step argv[3] has been written
_DIE_AFTER_SAVE = """
import os, signal, sys
from invlab.runs import checkpoint
from invlab.runs.config import load_recipe
from invlab.runs.pretrain_run import pretrain

save = checkpoint.AtomicCheckpointIO.save_checkpoint

def save_then_die(self, state, path, storage_options=None):
    save(self, state, path, storage_options)
    if state["global_step"] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint.AtomicCheckpointIO.save_checkpoint = save_then_die
pretrain(load_recipe(sys.argv[1], sys.argv[4:]), sys.argv[2], progress=False)
"""

SERIES = ["trainer.max_epochs=3", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
          "model.d_model=16", "model.n_heads=2", "model.n_layers=1"]
UCR = [*SERIES, "data.batch_size=8"]  # GunPoint: 50 training series, 6 batches per epoch
IMAGES = ["trainer.max_epochs=3", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
          "trainer.check_val_every_n_epoch=1", "model.width=4", "model.projector.hidden=[32]",
          "model.projector.out=16", "monitor.knn_k=20", "data.batch_size=256"]  # 1347 digits: 5 batches


def _ett(csv) -> list[str]:  # 90 windows of ETTh1's training months, 5 batches; validation loss each epoch
    return [*SERIES, f"data.root={csv}", "data.seq_len=48", "data.horizons=[24]", "data.window_stride=96",
            "data.batch_size=16", "data.eval_batch_size=64", "model.patch_len=8", "model.stride=8"]


def _python(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


def _same_files(a, b, pattern: str) -> None:
    names = sorted(p.relative_to(a) for p in a.glob(pattern))
    assert names and names == sorted(p.relative_to(b) for p in b.glob(pattern)), pattern
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


@pytest.mark.parametrize("recipe, steps_per_epoch", [
    ("simclr-digits", 5),
    ("supervised-ucr", 6),
    ("timedrl-etth1", 5),
])
def test_sigkill_right_after_a_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path, recipe, steps_per_epoch,
                                                                                 request):
    overrides = {"simclr-digits": IMAGES, "supervised-ucr": UCR}.get(recipe)
    overrides = overrides or _ett(request.getfixturevalue("etth1_csv"))
    reference = tmp_path / "reference"
    done = _python("-m", "invlab.cli.main", "pretrain", "--recipe", recipe, *overrides, "--out", str(reference),
                   "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = json.loads((reference / "summary.json").read_text())
    assert ref["global_step"] == 3 * steps_per_epoch and not ref["resumed"]
    header = (reference / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train/loss_step" in header and "train/loss" in header and "train/loss_epoch" not in header

    # killed inside the second epoch (a checkpoint every step; an even step, whose metrics row
    # is due with log_every_n_steps=2), and at the end of the first epoch (its checkpoint)
    mid = steps_per_epoch + 2 + steps_per_epoch % 2
    for kill_step, extra, position in [(mid, ["trainer.checkpoint_every_n_steps=1"], (1, mid - steps_per_epoch)),
                                       (steps_per_epoch, [], (1, 0))]:
        killed = tmp_path / f"killed-{kill_step}"
        died = _python("-c", _DIE_AFTER_SAVE, recipe, str(killed), str(kill_step), *overrides, *extra, cwd=tmp_path)
        assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
        assert resume_position(safe_torch_load(killed / "checkpoints" / "last.ckpt")) == (kill_step, *position)
        assert not (killed / "encoder.safetensors").exists()

        resumed = _python("-m", "invlab.cli.main", "pretrain", "--resume", str(killed), "--no-progress", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        _same_files(killed, reference, "*.safetensors")
        if recipe.startswith("timedrl"):
            _same_files(killed, reference, "snapshots/*.safetensors")
        assert (killed / "metrics.csv").read_text() == (reference / "metrics.csv").read_text(), kill_step
        summary = json.loads((killed / "summary.json").read_text())
        assert summary["resumed"] and summary["global_step"] == ref["global_step"]
        assert summary["metrics"] == ref["metrics"]
