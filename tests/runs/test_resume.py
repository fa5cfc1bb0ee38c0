"""Kill-and-resume is exact for every modality: a run killed with SIGKILL the moment a
checkpoint reaches the disk (the worst moment: whatever is logged after that save is lost
with the process) and resumed with ``invlab pretrain --resume`` ends bitwise equal to a run
never interrupted: exported weights (and classifier), per-epoch snapshots, every row of
``metrics.csv`` and the summary's metrics."""

from __future__ import annotations

import json

import pytest

from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.pretrain_run import resume_position
from tests.run_helpers import cli, run_recorded, same_files

pytestmark = pytest.mark.slow

SERIES = ["trainer.max_epochs=3", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
          "model.d_model=16", "model.n_heads=2", "model.n_layers=1"]
UCR = [*SERIES, "data.batch_size=8"]  # GunPoint: 50 training series, 6 batches per epoch
TS2VEC = ["trainer.max_epochs=3", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
          "model.hidden_dim=8", "model.output_dim=16", "model.depth=2", "data.batch_size=8"]  # GunPoint: 6 batches
IMAGES = ["trainer.max_epochs=3", "trainer.log_every_n_steps=2", "trainer.enable_progress_bar=false",
          "trainer.check_val_every_n_epoch=1", "model.width=4", "model.projector.hidden=[32]",
          "model.projector.out=16", "monitor.knn_k=20", "data.batch_size=256"]  # 1347 digits: 5 batches


def _ett(csv) -> list[str]:  # 90 windows of ETTh1's training months, 5 batches; validation loss each epoch
    return [*SERIES, f"data.root={csv}", "data.seq_len=48", "data.horizons=[24]", "data.window_stride=96",
            "data.batch_size=16", "data.eval_batch_size=64", "model.patch_len=8", "model.stride=8"]


@pytest.mark.parametrize("recipe, steps_per_epoch, processes", [
    ("simclr-digits", 5, 1),
    ("supervised-ucr", 6, 1),
    ("timedrl-etth1", 5, 1),
    ("ts2vec-ucr", 6, 1),  # crops, masks and the weight average resume exactly
    # time series on 2 gloo processes (the image case: tests/runs/test_distributed_runs.py)
    pytest.param("timedrl-etth1", 5, 2, marks=pytest.mark.ddp),
])
def test_sigkill_right_after_a_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path, recipe, steps_per_epoch,
                                                                                 processes, request):
    overrides = {"simclr-digits": IMAGES, "supervised-ucr": UCR, "ts2vec-ucr": TS2VEC}.get(recipe)
    overrides = overrides or _ett(request.getfixturevalue("etth1_csv"))
    if processes > 1:
        overrides = [*overrides, "trainer.accelerator=cpu", f"trainer.devices={processes}", "trainer.strategy=ddp"]
    reference = tmp_path / "reference"
    done = cli("pretrain", "--recipe", recipe, *overrides, "--out", str(reference), "--no-progress", cwd=tmp_path)
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
        run_recorded(recipe, killed, [*overrides, *extra], kill_step=kill_step, cwd=tmp_path)
        assert resume_position(safe_torch_load(killed / "checkpoints" / "last.ckpt")) == (kill_step, *position)
        assert not (killed / "encoder.safetensors").exists()

        resumed = cli("pretrain", "--resume", str(killed), "--no-progress", cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        same_files(killed, reference, "*.safetensors")
        if recipe.startswith(("timedrl", "ts2vec")):
            same_files(killed, reference, "snapshots/*.safetensors")
        assert (killed / "metrics.csv").read_text() == (reference / "metrics.csv").read_text(), kill_step
        summary = json.loads((killed / "summary.json").read_text())
        assert summary["resumed"] and summary["global_step"] == ref["global_step"]
        assert summary["metrics"] == ref["metrics"]
