"""Which samples each process reads: a pure function of (seed, epoch, rank, world size).

invlab shards its data itself (the trainer is built with ``use_distributed_sampler=False``),
so nothing depends on a launcher's or a Lightning version's sampler wrapper forwarding the
epoch, and a resumed run skips exactly what each process had consumed.

**Training** (:class:`ShardedEpochSampler`): every epoch has one permutation of the
``N`` samples, drawn from ``stream_generator("shuffle", seed, epoch)`` (the same order a
single process uses). Global step ``s`` takes positions ``[s*G, (s+1)*G)`` of it, ``G =
world * batch``; process ``r`` reads the ``r``-th block of ``batch`` positions of that
step. So the union of the processes' batches at step ``s`` is exactly the single-process
batch of step ``s`` (in the same order, rank-major, as :func:`invlab.distributed.gather`
concatenates them), and every sample is read at most once per epoch across processes.

The remainder: with ``drop_last`` (every training loader except a time-series set smaller
than one global batch) the last ``N mod G`` samples of the epoch's permutation are left
out of that epoch, exactly as one process with the global batch leaves them out (a
different set each epoch, since the permutation changes). Without ``drop_last`` the last,
partial global batch is split over the processes as evenly as possible; when it has fewer
samples than there are processes, or does not divide evenly, it is padded with the first
samples of the epoch's permutation so every process takes the same number of steps (those
few samples are then seen twice in that epoch; stated, never silent).

:meth:`ShardedEpochSampler.resume_at` makes epoch ``e`` start after the first ``k``
batches of *this process's* sequence, and ``len()`` stays the whole epoch's count (the
learning-rate schedule is sized from it; the loop continues counting from ``k``).

**Evaluation** (:class:`EvalShardSampler`): contiguous blocks in index order, padded to
equal length with repeats of the block's first index (so all processes gather tensors of
one shape); the padding carries indices already present, and
:func:`drop_padding` removes it after the gather.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from invlab.seeding import stream_generator

__all__ = ["ShardedEpochSampler", "EvalShardSampler", "drop_padding", "epoch_order", "shard_positions"]


def epoch_order(length: int, seed: int, epoch: int) -> list[int]:
    """The epoch's permutation of ``range(length)`` (the same for every process)."""
    return torch.randperm(length, generator=stream_generator("shuffle", seed, epoch)).tolist()


def shard_positions(length: int, batch_size: int, world_size: int, rank: int,
                    drop_last: bool = True) -> list[int]:
    """Positions (into the epoch's permutation) that process ``rank`` reads, in order.

    ``batch_size`` is the per-process batch. See the module docstring for the layout and
    the remainder.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    step = batch_size * world_size
    full = length // step
    out: list[int] = []
    for s in range(full):
        start = s * step + rank * batch_size
        out.extend(range(start, start + batch_size))
    rest = length - full * step
    if rest and not drop_last:
        per = math.ceil(rest / world_size)
        block = [full * step + rank * per + j for j in range(per)]
        # positions past the end wrap to the start of the permutation (padding)
        out.extend(p if p < length else (p - length) % length for p in block)
    return out


class ShardedEpochSampler(Sampler[int]):
    """This process's sample indices for each epoch (see the module docstring).

    Args:
        length: samples in the data set.
        batch_size: the per-process batch (the global batch divided by ``world_size``).
        seed: the run's seed.
        world_size, rank: the processes and this one (1 and 0 for a single process).
        drop_last: leave out the last partial global batch.
        epoch_items: yield ``epoch * length + index`` instead of ``index`` (video loaders
            draw each clip's offset from the epoch carried in the item).
        order: ``order(seed, epoch)`` -> the epoch's order of all samples, replacing the
            uniform permutation :func:`epoch_order` (sharded files use a read-local order);
            it must be the same on every process.
    """

    def __init__(self, length: int, batch_size: int, seed: int = 0, world_size: int = 1, rank: int = 0,
                 drop_last: bool = True, epoch_items: bool = False, order=None):
        self.length, self.batch_size, self.seed = int(length), int(batch_size), seed
        self.world_size, self.rank, self.drop_last = int(world_size), int(rank), drop_last
        self.epoch_items = epoch_items
        self.order = order
        self.epoch = 0
        self._positions = shard_positions(self.length, self.batch_size, self.world_size, self.rank, drop_last)
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at every epoch's start (on our own sampler: nothing wraps it)."""
        self.epoch = int(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Start epoch ``epoch`` after this process's first ``batches_done`` batches."""
        self.epoch = int(epoch)
        self._resume = (int(epoch), int(batches_done) * self.batch_size)

    def __len__(self) -> int:
        """Samples of a whole epoch on this process (the same on every process)."""
        return len(self._positions)

    def indices(self, epoch: int) -> list[int]:
        """This process's sample indices of epoch ``epoch`` (whole, no resume skip)."""
        order = (self.order or (lambda seed, e: epoch_order(self.length, seed, e)))(self.seed, epoch)
        return [order[p] for p in self._positions]

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        idx = self.indices(epoch)
        if self._resume is not None and self._resume[0] == epoch:
            idx = idx[self._resume[1]:]
            self._resume = None
        if self.epoch_items:
            return iter([epoch * self.length + i for i in idx])
        return iter(idx)


class EvalShardSampler(Sampler[int]):
    """Indices ``[rank*m, (rank+1)*m)`` of ``range(length)``, ``m = ceil(length / world)``,
    padded to ``m`` with repeats of an index already in the data (every process gets the
    same count, so gathered tensors have one shape). One process: ``range(length)``."""

    def __init__(self, length: int, world_size: int = 1, rank: int = 0):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
        self.length, self.world_size, self.rank = int(length), int(world_size), int(rank)
        m = math.ceil(self.length / self.world_size) if self.length else 0
        real = list(range(min(rank * m, self.length), min((rank + 1) * m, self.length)))
        pad = real[:1] or [0]
        self._indices = real + pad * (m - len(real)) if self.length else []

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)


def drop_padding(index: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """Keep the first row of every distinct ``index`` (gathered evaluation outputs, padding
    removed); returns ``(index, *tensors)`` in ascending index order."""
    order = torch.argsort(index, stable=True)
    sorted_idx = index[order]
    keep = torch.ones_like(sorted_idx, dtype=torch.bool)
    keep[1:] = sorted_idx[1:] != sorted_idx[:-1]
    rows = order[keep]
    return (index[rows], *(t[rows] for t in tensors))
