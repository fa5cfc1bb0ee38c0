"""The one place where tensors cross processes.

``gather`` concatenates a tensor from all ranks with gradient: its backward sums the
incoming gradients over ranks (all-reduce) and returns this rank's slice, so a loss
computed on gathered embeddings and averaged by DDP gets exactly the gradient of the
single-process loss over the global batch. ``all_reduce_sum`` is the autograd-aware
all-reduce (its backward is an all-reduce too). Both are the identity when
``torch.distributed`` is not initialised or the world has one process.

Neither waits for the device: ``gather`` needs equal batch sizes on every rank (training
loaders drop the last partial batch), which it checks with a size handshake on a process
group's first gather only (and on every gather under ``TORCH_DISTRIBUTED_DEBUG=INFO``).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "world_size", "rank", "gather", "all_reduce_sum", "all_reduce_mean", "resolve_gather",
           "check_equal_sizes"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def resolve_gather(gather: bool | None) -> bool:
    """``None`` means: gather whenever more than one process runs."""
    return is_distributed() if gather is None else (gather and is_distributed())


_checked_groups: set[int] = set()


def _size_handshake_due() -> bool:
    """The batch-size handshake (one host synchronisation) runs on the first gather of a
    process group, and on every gather when ``TORCH_DISTRIBUTED_DEBUG`` is ``INFO`` or
    ``DETAIL``. Every rank makes its n-th gather at the same point, so every rank agrees
    on whether the handshake runs."""
    group = id(dist.group.WORLD)
    if group not in _checked_groups:
        _checked_groups.add(group)
        return True
    return os.environ.get("TORCH_DISTRIBUTED_DEBUG", "OFF").upper() in ("INFO", "DETAIL")


def check_equal_sizes(x: Tensor) -> None:
    """Raise naming every rank's size unless ``x.shape[0]`` is the same on all ranks
    (a collective: every rank must call it)."""
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
    sizes = [int(s.item()) for s in sizes]
    if len(set(sizes)) != 1:
        raise RuntimeError(
            f"gather needs equal batch sizes on every rank, got {sizes}; "
            "use drop_last=True in the data loader"
        )


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.rank, ctx.world = dist.get_rank(), dist.get_world_size()
        ctx.batch = x.shape[0]
        if _size_handshake_due():
            check_equal_sizes(x)
        out = [torch.empty_like(x) for _ in range(ctx.world)]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def gather(x: Tensor) -> Tensor:
    """``(b, ...) -> (world * b, ...)``, rank-major; differentiable (see module docstring)."""
    if not is_distributed():
        return x
    return _Gather.apply(x)


def all_reduce_sum(x: Tensor) -> Tensor:
    """Sum over ranks; differentiable."""
    if not is_distributed():
        return x
    return _AllReduceSum.apply(x)


def all_reduce_mean(x: Tensor) -> Tensor:
    return all_reduce_sum(x) / world_size()
