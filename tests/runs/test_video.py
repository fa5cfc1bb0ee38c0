"""The video modality end to end: recipes, pretraining on controlled videos and on real
.mp4 files in the UCF101 / HMDB51 layouts, evaluation (clip and video level),
measurement, and kill-and-resume."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from invlab.cli.main import main
from invlab.data.video import ControlledVideos, write_hmdb51, write_ucf101
from invlab.errors import ConfigError
from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.measure_run import measure
from invlab.runs.pretrain_run import pretrain, resume_position
from tests.run_helpers import sigkill_when_checkpointed

TINY = ["data.controlled.train_samples=32", "data.controlled.test_samples=16", "data.controlled.num_frames=8",
        "data.controlled.image_size=16", "data.clip_len=8", "augment.temporal.0.length=4",
        "augment.spatial.0.size=16", "model.width=4", "params.head_hidden=16", "params.head_out=8",
        "data.batch_size=8", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1", "monitor.knn_k=5",
        "data.eval_clips=2"]


@pytest.mark.parametrize("name", ["hdc-synthetic", "clip-simclr-synthetic", "hdc-ucf101", "hdc-hmdb51"])
def test_shipped_video_recipes_validate(name):
    cfg = load_recipe(name)
    assert cfg.modality.name == "video"


@pytest.mark.parametrize("override, key", [
    ("data.on_error=ignore", "data.on_error"),
    ("model.backbone=resnet18", "model.backbone"),
    ("augment.temporal.0.length=32", "augment.temporal"),
    ("data.name=kinetics", "data.name"),
    ("params.weighting=mean", "params.weighting"),
    ("params.subtasks={sc: spatial}", "params.subtasks.sc"),
    ("data.controlled.motions=[sideways]", "data.controlled.motions"),
    ("augment.spatial.0.name=crp", "augment.spatial[0]"),
])
def test_bad_video_recipes_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_recipe("hdc-synthetic", [override])


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["hdc-synthetic", "clip-simclr-synthetic"])
def test_pretrain_evaluate_and_measure_on_controlled_videos(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    summary = pretrain(load_recipe(recipe, TINY), run, progress=False)
    assert "test/knn_top1" in summary["metrics"]
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["modality"] == "video" and meta["clip_len"] == 4
    if recipe == "hdc-synthetic":
        for k in ("sc", "tc"):
            ws = [summary["metrics"][f"train/{k}_w_{s}"] for s in ("res3", "res4", "res5")]
            assert sum(ws) == pytest.approx(1.0, abs=1e-4)
    lin = evaluate(run, "linear")
    assert 0 <= lin["clip_top1"] <= 1 and 0 <= lin["video_top1"] <= 1 and lin["clips_per_test_video"] == 2
    assert main(["evaluate", str(run), "--protocol", "linear", "--no-progress"]) == 0
    assert "videos x 2 clips" in capsys.readouterr().out
    app = evaluate(run, "linear", data_overrides=[("label", "appearance")])
    assert app["train_videos"] == 32
    inv = evaluate(run, "invariance", transforms="reverse,hue", layers="res3,output", num_samples=16)
    assert set(inv) >= {"invariance/reverse", "invariance/hue", "mean_invariance"}
    m = measure(run, "reverse,shuffle,temporal_crop,hue", "res4,output", num_samples=16, bootstrap=20,
                out=tmp_path / "m", progress=False)
    assert {r["transform"] for r in m["invariance"]} == {"reverse", "shuffle", "temporal_crop", "hue"}
    assert (tmp_path / "m" / "measure.md").exists()


def _layout_overrides(root):
    return [f"data.root={root}", "data.size=16", "data.clip_len=8", "data.cache=none", "data.num_workers=0",
            "augment.temporal.0.length=4", "augment.spatial.0.size=16", "model.width=4", "model.stem_stride=1",
            "params.head_hidden=16", "params.head_out=8", "data.batch_size=4", "trainer.max_epochs=1",
            "optim.warmup_epochs=0", "trainer.check_val_every_n_epoch=1", "monitor.knn_k=3", "data.eval_clips=2"]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["ucf101", "hmdb51"])
def test_recipes_for_real_data_sets_run_on_generated_files(layout, tmp_path):
    motions = ["right", "left", "grow"]
    train = ControlledVideos(9, num_frames=10, image_size=16, motions=motions)
    test = ControlledVideos(6, num_frames=10, image_size=16, motions=motions, split="test")
    root = (write_ucf101 if layout == "ucf101" else write_hmdb51)(tmp_path / layout, train, test)
    run = tmp_path / "run"
    summary = pretrain(load_recipe(f"hdc-{layout}", _layout_overrides(root)), run, progress=False)
    assert summary["train_videos"] == 9 and summary["test_videos"] == 6
    lin = evaluate(run, "linear")
    assert lin["data"] == layout and lin["test_videos"] == 6
    ft = evaluate(run, "finetune", epochs=1, lr=0.01)
    assert ft["epochs"] == 1 and 0 <= ft["video_top1"] <= 1 and len(ft["loss_history"]) == 1


@pytest.mark.slow
def test_unreadable_file_in_a_layout_fails_naming_it_or_is_skipped(tmp_path):
    motions = ["right", "left"]
    train = ControlledVideos(8, num_frames=10, image_size=16, motions=motions)
    test = ControlledVideos(4, num_frames=10, image_size=16, motions=motions, split="test")
    root = write_ucf101(tmp_path / "ucf", train, test)
    bad = root / (root / "trainlist01.txt").read_text().split()[0]
    bad.write_bytes(bad.read_bytes()[:200])
    from invlab.errors import DataError

    with pytest.raises(DataError, match=bad.name):
        pretrain(load_recipe("hdc-ucf101", _layout_overrides(root)), tmp_path / "a", progress=False)
    over = _layout_overrides(root) + ["data.on_error=skip"]
    summary = pretrain(load_recipe("hdc-ucf101", over), tmp_path / "b", progress=False)
    assert summary["train_videos"] == 7 and bad.name in summary["skipped"][0]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "invlab.cli.main", *args]


@pytest.mark.slow
def test_video_run_killed_mid_epoch_resumes_exactly(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    over = [o for o in TINY if not o.startswith("trainer.max_epochs")] + [
        "trainer.max_epochs=3", "trainer.checkpoint_every_n_steps=1", "trainer.log_every_n_steps=1"]
    args = ["pretrain", "--recipe", "hdc-synthetic", *over, "--no-progress"]
    ckpt = killed / "checkpoints" / "last.ckpt"
    # 4 steps per epoch: kill inside the second epoch
    sigkill_when_checkpointed(_cli(*args, "--out", str(killed)), killed, lambda step: step >= 5 and step % 4 != 0)
    _, epoch, done = resume_position(safe_torch_load(ckpt))
    assert 0 < done < 4, "killed outside the middle of an epoch"
    resumed = subprocess.run(_cli("pretrain", "--resume", str(killed), "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref = subprocess.run(_cli(*args, "--out", str(reference)), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr[-3000:]
    wa, wb = load_file(str(killed / "encoder.safetensors")), load_file(str(reference / "encoder.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    a, b = (json.loads((r / "summary.json").read_text()) for r in (killed, reference))
    assert a["metrics"] == b["metrics"] and a["resumed"] and not b["resumed"]
    assert (killed / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()
    # the stage weights' running invariance estimate travels in the checkpoint
    state = safe_torch_load(killed / "checkpoints" / "last.ckpt")["state_dict"]
    ref_state = safe_torch_load(reference / "checkpoints" / "last.ckpt")["state_dict"]
    assert torch.equal(state["stage_weights.sc.invariance"], ref_state["stage_weights.sc.invariance"])


@pytest.mark.slow
@pytest.mark.ddp
def test_two_process_video_run_reads_each_video_once_per_epoch_and_resumes_exactly(tmp_path):
    from tests.run_helpers import cli, read_records, run_recorded, same_weights

    over = [o for o in TINY if not o.startswith("trainer.max_epochs")] + [
        "trainer.max_epochs=3", "trainer.log_every_n_steps=1", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.strategy=ddp", "trainer.enable_progress_bar=false"]
    run_recorded("hdc-synthetic", tmp_path / "reference", over, record=tmp_path / "rec", cwd=tmp_path)
    rec = read_records(tmp_path / "rec")
    for epoch in range(3):  # 32 videos, global batch 8: 4 steps, 4 videos per process and step
        seen = [i for r in (0, 1) for row in rec[r] if row["epoch"] == epoch for i in row["index"]]
        assert sorted(seen) == list(range(32)), epoch
    killed = tmp_path / "killed"
    run_recorded("hdc-synthetic", killed, [*over, "trainer.checkpoint_every_n_steps=1"], kill_step=6, cwd=tmp_path)
    assert resume_position(safe_torch_load(killed / "checkpoints" / "last.ckpt")) == (6, 1, 2)
    resumed = cli("pretrain", "--resume", str(killed), "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    same_weights(killed, tmp_path / "reference")
    a, b = (json.loads((r / "summary.json").read_text()) for r in (killed, tmp_path / "reference"))
    assert a["metrics"] == b["metrics"] and a["resumed"]
    assert (killed / "metrics.csv").read_text() == (tmp_path / "reference" / "metrics.csv").read_text()
