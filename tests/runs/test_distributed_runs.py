"""Two processes (gloo on CPU) train like one: the same samples in each global step, the
same views of each sample, the same loss curve and weights as one process with the same
global batch (within float tolerance), every sample once per epoch across the processes
in an order that changes between epochs, and a 2-process job killed mid-epoch right after
a checkpoint and resumed ends bitwise where the uninterrupted 2-process job ends."""

from __future__ import annotations

import json

import pytest
import torch

from invlab.runs.checkpoint import safe_torch_load
from invlab.runs.pretrain_run import resume_position
from tests.run_helpers import cli, read_records, run_recorded, same_weights, weights

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

# 512 digits, global batch 64: 8 steps per epoch, 3 epochs; SimCLR with BatchNorm in the
# backbone and projector, synchronised across the processes (SimCLR's default with > 1
# process). In float64: in float32 this tiny network amplifies rounding differences by
# ~1e3 in a single step now and then (BatchNorm channels with near-zero variance on the
# digits' flat backgrounds), so one process with 1 vs 2 threads drifts 1e-3 apart within 4
# steps, which would hide any real difference between 1 and 2 processes.
RECIPE = "simclr-digits"
COMMON = ["trainer.max_epochs=3", "trainer.precision=64-true", "model.width=4", "model.projector.hidden=[32]", "model.projector.out=16",
          "data.batch_size=64", "data.train_subset=512", "monitor.knn_k=20", "trainer.check_val_every_n_epoch=1",
          "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
          "model.channels_last=false"]
TWO = ["trainer.devices=2", "trainer.strategy=ddp"]
STEPS_PER_EPOCH, EPOCHS = 512 // 64, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-process and a two-process run of the same recipe, with step records."""
    root = tmp_path_factory.mktemp("ddp")
    run_recorded(RECIPE, root / "one", [*COMMON, "trainer.devices=1"], record=root / "rec-one", cwd=root)
    run_recorded(RECIPE, root / "two", [*COMMON, *TWO], record=root / "rec-two", cwd=root)
    return root


def test_two_processes_read_each_global_batch_of_one_process(runs):
    one, two = read_records(runs / "rec-one"), read_records(runs / "rec-two")
    assert sorted(two) == [0, 1] and len(one[0]) == len(two[0]) == len(two[1]) == STEPS_PER_EPOCH * EPOCHS
    for s, row in enumerate(one[0]):
        a, b = two[0][s], two[1][s]
        assert len(a["index"]) == len(b["index"]) == 32
        # rank-major blocks of the one-process batch, the order invlab.distributed.gather concatenates
        assert a["index"] + b["index"] == row["index"], f"step {s}"


def test_every_sample_once_per_epoch_across_processes_and_a_new_order_each_epoch(runs):
    two = read_records(runs / "rec-two")
    orders = []
    for epoch in range(EPOCHS):
        seen = [i for r in (0, 1) for row in two[r] if row["epoch"] == epoch for i in row["index"]]
        assert sorted(seen) == list(range(512)), f"epoch {epoch}"  # 512 = 8 x 64: no remainder
        per_rank = [[i for row in two[r] if row["epoch"] == epoch for i in row["index"]] for r in (0, 1)]
        assert not set(per_rank[0]) & set(per_rank[1])
        orders.append(per_rank[0])
    assert orders[0] != orders[1] != orders[2] and set(orders[0]) != set(orders[1])


def test_two_processes_give_the_loss_curve_and_weights_of_one(runs):
    """Same samples per step, same views per sample (drawn for the global batch, each rank
    keeps its block), GlobalBatchNorm = BatchNorm over the global batch, and the gathered
    NT-Xent with DDP's gradient mean = the one-process loss. What differs is only float
    summation order (BatchNorm statistics summed across ranks, gradients all-reduced, the
    loss a mean of two half-batch means): in float64, measured below 4e-13 relative over
    the 24 steps. Asserted: every step's loss within 1e-9 relative, the epoch mean too,
    the exported weights within 1e-9 absolute, the kNN monitor equal."""
    one, two = read_records(runs / "rec-one"), read_records(runs / "rec-two")
    curve_one = torch.tensor([row["loss"] for row in one[0]], dtype=torch.float64)
    # each rank's loss is the mean over its half of the anchors (and probe samples): the
    # global loss is the mean of the two
    curve_two = torch.tensor([(a["loss"] + b["loss"]) / 2 for a, b in zip(two[0], two[1])], dtype=torch.float64)
    rel = ((curve_one - curve_two).abs() / curve_one.abs()).max().item()
    assert rel < 1e-9, f"largest relative difference of a step's loss: {rel:.2e}"
    assert curve_one[-4:].mean() < curve_one[:4].mean() - 0.5  # it trained
    s1 = json.loads((runs / "one" / "summary.json").read_text())["metrics"]
    s2 = json.loads((runs / "two" / "summary.json").read_text())["metrics"]
    assert s1["train/loss"] == pytest.approx(s2["train/loss"], rel=1e-9)
    assert s1["test/knn_top1"] == s2["test/knn_top1"] and s1["test/probe_top1"] == s2["test/probe_top1"]
    wa, wb = weights(runs / "one"), weights(runs / "two")
    assert wa.keys() == wb.keys()
    worst = max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa if wa[k].is_floating_point())
    assert worst < 1e-9, f"largest weight difference {worst:.2e}"


def test_kill_mid_epoch_under_two_processes_then_resume_equals_the_uninterrupted_job(runs):
    killed = runs / "killed"
    kill_step = STEPS_PER_EPOCH + 3  # inside the second epoch
    run_recorded(RECIPE, killed, [*COMMON, *TWO, "trainer.checkpoint_every_n_steps=1"], kill_step=kill_step,
                 cwd=runs)
    assert resume_position(safe_torch_load(killed / "checkpoints" / "last.ckpt")) == (kill_step, 1, 3)
    assert not (killed / "encoder.safetensors").exists()
    resumed = cli("pretrain", "--resume", str(killed), "--no-progress", cwd=runs)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    same_weights(killed, runs / "two")
    a = json.loads((killed / "summary.json").read_text())
    b = json.loads((runs / "two" / "summary.json").read_text())
    assert a["resumed"] and a["global_step"] == b["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert a["metrics"] == b["metrics"]
    assert (killed / "metrics.csv").read_text() == (runs / "two" / "metrics.csv").read_text()
