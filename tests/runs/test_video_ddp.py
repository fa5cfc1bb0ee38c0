"""An HDC video run under two gloo processes on CPU, through the public run path
(:func:`invlab.runs.pretrain_run.pretrain` with the shipped ``hdc-synthetic`` recipe and
``trainer.devices=2, strategy=ddp``), each process started as a distributed launcher
would start it (``LOCAL_RANK``, ``MASTER_PORT``): it finishes, the two ranks end with the
same weights and the same running stage-invariance estimates, and every loss is finite."""

from __future__ import annotations

import json
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file

pytestmark = [pytest.mark.ddp, pytest.mark.slow]

OVERRIDES = ["data.controlled.train_samples=16", "data.controlled.test_samples=8", "data.controlled.num_frames=6",
             "data.controlled.image_size=12", "data.controlled.num_backgrounds=4", "data.clip_len=6",
             "augment.temporal.0.length=3", "augment.spatial.0.size=12", "model.width=2", "params.head_hidden=8",
             "params.head_out=4", "data.batch_size=8", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
             "trainer.check_val_every_n_epoch=100", "trainer.devices=2", "trainer.strategy=ddp",
             "trainer.accelerator=cpu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Record(Callback):
    """What this rank saw: its losses per step and its final state."""

    def __init__(self, out: str):
        self.out, self.losses, self.batch_rows = out, [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))
        self.batch_rows.append(int(batch["video"].shape[0]))

    def on_train_end(self, trainer, module):
        torch.save({"rank": trainer.global_rank, "world": trainer.world_size, "step": trainer.global_step,
                    "losses": self.losses, "rows": self.batch_rows,
                    "state": {k: v.detach().clone() for k, v in module.state_dict().items()}},
                   os.path.join(self.out, f"rank{trainer.global_rank}.pt"))


def _worker(local_rank: int, port: int, run: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), NODE_RANK="0", LOCAL_RANK=str(local_rank),
                      WORLD_SIZE="2", OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    from invlab.runs.config import load_recipe
    from invlab.runs.pretrain_run import pretrain

    pretrain(load_recipe("hdc-synthetic", OVERRIDES), run, progress=False, callbacks=[_Record(out)])


def test_two_process_hdc_run_agrees_across_ranks(tmp_path):
    run, out = tmp_path / "run", tmp_path / "ranks"
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(run), str(out)), nprocs=2, join=True)
    a, b = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (a["rank"], b["rank"], a["world"], b["world"]) == (0, 1, 2, 2)
    # the global batch of 8 is split: 4 clips per process per step, 2 steps
    assert a["step"] == b["step"] == 2 and a["rows"] == b["rows"] == [4, 4]
    for r in (a, b):
        assert len(r["losses"]) == 2 and all(math.isfinite(v) for v in r["losses"]), r["losses"]
    # each rank trained on its own clips (so identical weights below mean synchronised updates)
    assert a["losses"] != b["losses"]
    # gradients are averaged over the ranks, so every parameter ends identical; the stage
    # weights' invariance estimates are averaged too. (BatchNorm running statistics are
    # per-process: DDP broadcasts rank 0's before each forward, then each rank's own batch
    # updates them, so they are not compared.)
    params = [k for k, _ in _named_parameters_of(a["state"])]
    assert params, "no parameters recorded"
    for k in params:
        assert torch.equal(a["state"][k], b["state"][k]), k
    inv = [k for k in a["state"] if k.startswith("stage_weights.") and k.endswith(".invariance")]
    assert sorted(inv) == ["stage_weights.sc.invariance", "stage_weights.tc.invariance"]
    for k in inv:
        assert torch.equal(a["state"][k], b["state"][k]), k
        assert not torch.equal(a["state"][k], torch.ones(3)), "the estimate was never updated"
    # rank 0 owned the run folder: its summary and exported encoder are those of the run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == 2 and math.isfinite(summary["metrics"]["train/loss"])
    exported = load_file(str(run / "encoder.safetensors"))
    enc = {k[len("encoder."):]: v for k, v in a["state"].items() if k.startswith("encoder.")}
    assert exported.keys() <= enc.keys() and all(torch.equal(exported[k], enc[k]) for k in exported)
    assert not (run / "rank1").exists() and sorted(p.name for p in out.iterdir()) == ["rank0.pt", "rank1.pt"]


def _named_parameters_of(state: dict[str, torch.Tensor]):
    """The trainable entries of an HDC state dict (floating, not BatchNorm statistics,
    not the stage-weight buffers)."""
    skip = ("running_mean", "running_var", "num_batches_tracked", ".invariance", "fixed_weights")
    return [(k, v) for k, v in state.items() if v.is_floating_point() and not k.endswith(skip)
            and not k.startswith("encoder.mean") and not k.startswith("encoder.std")]
