"""Learned-augmentation runs end to end from their recipes (digits, seconds): InstaAug
with crops and a rotation range, Augerino, InstaAug-SimCLR; and the augmentation protocol
writes its pictures into the run folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from invlab.errors import ConfigError
from invlab.runs.config import load_recipe
from invlab.runs.evaluate_run import evaluate
from invlab.runs.pretrain_run import pretrain

SMALL = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "model.width=4", "trainer.check_val_every_n_epoch=1",
         "monitor.knn_k=10"]


@pytest.mark.slow
def test_instaaug_run_and_its_pictures(tmp_path):
    cfg = load_recipe("instaaug-digits", [*SMALL, "params.augmentation.ranges=[{name: rotate, degrees: 90}]"])
    summary = pretrain(cfg, tmp_path / "run", progress=False)
    assert "test/tta_top1" in summary["metrics"] and "train/module_loss" in summary["metrics"]
    assert "train/entropy_p90" in summary["metrics"]
    result = evaluate(tmp_path / "run", "augmentation", num_images=4)
    assert (tmp_path / "run" / result["crops_png"]).stat().st_size > 0
    rot = result["ranges"]["rotate.angle"]
    assert (tmp_path / "run" / rot["png"]).stat().st_size > 0
    assert len(rot["a_minus"]) == 4 and all(0 <= a <= 90 for a in rot["a_plus"])
    assert len(result["entropy"]) == 4
    idx = result["test_indices"]  # spread over the test split, not its first (often one-class) images
    assert idx[0] == 0 and all(a < b for a, b in zip(idx, idx[1:])) and idx[-1] > 100
    # the same through the command line (the README's line), default 8 images
    (tmp_path / "run" / result["crops_png"]).unlink()
    cli = subprocess.run([sys.executable, "-m", "invlab.cli.main", "evaluate", str(tmp_path / "run"),
                          "--protocol", "augmentation"], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr[-2000:]
    printed = json.loads(cli.stdout[cli.stdout.index("{"):])
    assert printed["num_images"] == 8 and (tmp_path / "run" / printed["crops_png"]).stat().st_size > 0


@pytest.mark.slow
def test_augerino_and_instaaug_simclr_runs(tmp_path):
    summary = pretrain(load_recipe("augerino-digits", SMALL), tmp_path / "aug", progress=False)
    assert "train/augerino_width_norm" in summary["metrics"]
    widths = evaluate(tmp_path / "aug", "augmentation")["augerino_widths"]
    assert set(widths) == {"tx", "ty", "rotation", "scale", "stretch", "shear"}
    simclr = ["params.augmentation.freeze_fraction=0.3", "params.augmentation.crop_scales=[[2, 0.75]]",
              "model.projector.hidden=[32]", "model.projector.out=16"]
    cfg = load_recipe("instaaug-simclr-cifar10", [*SMALL, *simclr, "data.name=digits", "data.channels=1",
                                                  "data.batch_size=64", "data.root=null"])
    summary = pretrain(cfg, tmp_path / "simclr", progress=False)
    assert "train/module_loss" in summary["metrics"]
    pictures = evaluate(tmp_path / "simclr", "augmentation", num_images=2)
    assert (tmp_path / "simclr" / pictures["crops_png"]).stat().st_size > 0 and len(pictures["full_image_prob"]) == 2
    with pytest.raises(ConfigError, match="needs a run folder with checkpoints/last.ckpt"):
        evaluate(tmp_path / "simclr" / "encoder.safetensors", "augmentation")


@pytest.mark.slow
def test_augmentation_protocol_refuses_other_methods(tmp_path):
    cfg = load_recipe("simclr-digits", [*SMALL, "model.projector.hidden=[32]", "model.projector.out=16"])
    pretrain(cfg, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="learns no augmentation"):
        evaluate(tmp_path / "run", "augmentation")
