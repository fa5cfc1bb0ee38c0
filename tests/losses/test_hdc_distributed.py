"""StageWeights under two gloo processes: each rank sees its own positive similarities,
and both end every step with the same running invariance estimate (the mean over ranks),
so checkpoints written by any rank agree and the weights are identical everywhere."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from invlab.losses.hdc import StageWeights

pytestmark = pytest.mark.ddp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SIMS = [torch.tensor([0.2, 0.5, 0.9]), torch.tensor([-0.4, 0.1, 0.7])]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        w = StageWeights(["res3", "res4", "res5"], "invariance", momentum=0.5).train()
        for _ in range(2):
            _, weights = w(torch.ones(3), SIMS[rank])
        torch.save({"invariance": w.invariance.clone(), "weights": weights}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_running_invariance_is_averaged_over_ranks(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(a["invariance"], b["invariance"]) and torch.equal(a["weights"], b["weights"])
    level = ((SIMS[0] + SIMS[1]) / 2).clamp(0.01, 1.0)
    expected = torch.ones(3)
    for _ in range(2):
        expected = 0.5 * expected + 0.5 * level
    assert torch.allclose(a["invariance"], expected)
    assert float(a["weights"].sum()) == pytest.approx(1.0)
