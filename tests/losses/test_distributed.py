"""Two gloo processes with B/2 each give the same losses and gradients as one process
with batch B (the gather-with-gradient bug class)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from invlab import distributed
from invlab.losses import barlow_twins, info_nce, nt_xent

pytestmark = pytest.mark.ddp

B, D, E = 8, 6, 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(D, E).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    x1 = torch.randn(B, D, generator=g, dtype=torch.float64)
    x2 = torch.randn(B, D, generator=g, dtype=torch.float64)
    return model, x1, x2


def _loss(name, z1, z2):
    if name == "info_nce":
        return info_nce(z1, z2, 0.5)
    return nt_xent(z1, z2, 0.5) if name == "nt_xent" else barlow_twins(z1, z2, 0.1)


def _worker(rank: int, world: int, port: int, name: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, x1, x2 = _data()
        b = B // world
        sl = slice(rank * b, (rank + 1) * b)
        loss = _loss(name, model(x1[sl]), model(x2[sl]))
        loss.backward()
        # what DistributedDataParallel does to the gradients: average them over ranks
        grads = [p.grad.clone() for p in model.parameters()]
        for g in grads:
            dist.all_reduce(g)
            g /= world
        torch.save({"loss": loss.detach(), "grads": grads, "world": distributed.world_size()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", ["nt_xent", "info_nce", "barlow_twins"])
def test_two_ranks_match_one_process(name, tmp_path):
    model, x1, x2 = _data()
    ref_loss = _loss(name, model(x1), model(x2))
    ref_loss.backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]

    mp.get_context("spawn")
    mp.spawn(_worker, args=(2, _free_port(), name, str(tmp_path)), nprocs=2, join=True)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(r["world"] == 2 for r in results)
    if name in ("nt_xent", "info_nce"):
        # each rank averages over its own anchors: the mean over ranks is the global loss
        got_loss = sum(float(r["loss"]) for r in results) / 2
    else:
        # Barlow Twins is computed on global statistics: every rank has the global loss
        assert float(results[0]["loss"]) == pytest.approx(float(results[1]["loss"]), rel=1e-12)
        got_loss = float(results[0]["loss"])
    assert got_loss == pytest.approx(ref_loss.item(), rel=1e-10)
    for r in results:
        for got, want in zip(r["grads"], ref_grads):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def test_helpers_are_identity_without_a_process_group():
    x = torch.rand(3, 2, requires_grad=True)
    assert distributed.gather(x) is x and distributed.all_reduce_sum(x) is x
    assert distributed.world_size() == 1 and distributed.rank() == 0
    assert distributed.resolve_gather(None) is False


def _unequal_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        distributed._checked_groups.clear()
        first = distributed.gather(torch.ones(2, 3))  # the group's first gather: sizes checked (and equal)
        message = ""
        try:
            # later gathers skip the handshake, except under TORCH_DISTRIBUTED_DEBUG
            os.environ["TORCH_DISTRIBUTED_DEBUG"] = "INFO"
            distributed.gather(torch.ones(2 + rank, 3))
        except RuntimeError as err:
            message = str(err)
        torch.save({"first": first.shape[0], "message": message}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_gather_checks_batch_sizes_on_the_first_gather_and_under_debug(tmp_path):
    mp.spawn(_unequal_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        got = torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
        assert got["first"] == 4
        assert "equal batch sizes on every rank, got [2, 3]" in got["message"]


def test_size_handshake_runs_once_per_group_unless_debugging(monkeypatch):
    class Group:
        pass

    monkeypatch.setattr(distributed.dist, "group", type("G", (), {"WORLD": Group()}))
    monkeypatch.delenv("TORCH_DISTRIBUTED_DEBUG", raising=False)
    distributed._checked_groups.clear()
    assert distributed._size_handshake_due() and not distributed._size_handshake_due()
    monkeypatch.setenv("TORCH_DISTRIBUTED_DEBUG", "DETAIL")
    assert distributed._size_handshake_due()
