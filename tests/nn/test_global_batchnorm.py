"""GlobalBatchNorm on two gloo processes with B/2 samples each equals BatchNorm on one
process with B: outputs, DDP-averaged gradients and running statistics (float64, so the
comparison is tight); with one process or in eval mode it is BatchNorm exactly; the
conversion keeps the state dict."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from invlab.nn.global_batchnorm import GlobalBatchNorm, convert_to_global_batchnorm

B = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5),
                         nn.BatchNorm1d(5, momentum=None)).double()


def _x() -> torch.Tensor:
    return torch.randn(B, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 + 1


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        m = convert_to_global_batchnorm(_net())
        b = B // world
        for _ in range(2):  # two steps: running statistics accumulate
            m.zero_grad()
            y = m(_x()[rank * b:(rank + 1) * b])
            ((y - 0.3) ** 2).mean().backward()
        grads = {k: p.grad.clone() for k, p in m.named_parameters()}
        for g in grads.values():  # what DDP does: average over ranks
            dist.all_reduce(g)
            g /= world
        torch.save({"y": y.detach(), "grads": grads, "state": m.state_dict()}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_equal_one_process_batchnorm_on_the_whole_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ref = _net()
    for _ in range(2):
        ref.zero_grad()
        y = ref(_x())
        ((y - 0.3) ** 2).mean().backward()
    for rank in (0, 1):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(out["y"], y[rank * 4:(rank + 1) * 4].detach(), rtol=1e-10, atol=1e-10)
        for k, p in ref.named_parameters():
            torch.testing.assert_close(out["grads"][k], p.grad, rtol=1e-9, atol=1e-12, msg=k)
        for k, v in ref.state_dict().items():  # running statistics identical on every rank
            torch.testing.assert_close(out["state"][k], v, rtol=1e-10, atol=1e-12, msg=k)


def test_one_process_and_eval_mode_are_plain_batchnorm():
    ref, conv = _net(), convert_to_global_batchnorm(_net())
    assert isinstance(conv[1], GlobalBatchNorm) and isinstance(conv[5], GlobalBatchNorm)
    assert conv.state_dict().keys() == ref.state_dict().keys()
    for mode in ("train", "eval"):
        getattr(ref, mode)()
        getattr(conv, mode)()
        assert torch.equal(ref(_x()), conv(_x()))
    for k, v in ref.state_dict().items():
        assert torch.equal(conv.state_dict()[k], v), k
    assert isinstance(convert_to_global_batchnorm(nn.BatchNorm2d(3)), GlobalBatchNorm)
    with pytest.raises(ValueError, match=r"expects \(N, C, \.\.\.\) input"):
        GlobalBatchNorm(3)(torch.zeros(3))
