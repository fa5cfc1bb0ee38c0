"""A memory bank: one L2-normalised embedding per training sample, kept across steps.

NPID-style methods (Wu et al., CVPR 2018; Invariance Propagation, Wang et al., NeurIPS
2020) compare each step's embeddings against the whole training set's previous
embeddings instead of a second view. Everything a resumed run needs lives in registered
buffers (so checkpoints carry it):

- ``embeddings (N, D)``: unit rows, float32 or float16 (storage only: every similarity
  is computed in float32, chunk by chunk);
- ``neighbours (N, k)`` (when ``neighbours_k > 0``): each sample's ``k`` nearest bank
  entries (self excluded) as of its last visit, ``-1`` before the first one.

Under DDP every rank holds the whole bank: :meth:`MemoryBank.update` gathers the
indices, embeddings and neighbour lists of every rank's batch (through
:func:`invlab.distributed.gather`) and applies the same writes in the same order on every
rank, so all ranks end each step with identical buffers.

Searching is chunked over the bank (:func:`bank_topk`) and the gradient-carrying
similarities to chosen entries are chunked over the queries (:func:`bank_similarities`),
so memory stays bounded however large ``N`` grows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab import distributed
from invlab.errors import CheckpointError
from invlab.losses.precision import float32_loss

__all__ = ["MemoryBank", "bank_topk", "bank_similarities"]

#: elements of float32 scratch one chunk may use (32 MiB)
CHUNK_ELEMENTS = 1 << 23


@float32_loss(keep=("bank",))
@torch.no_grad()
def bank_topk(
    query: Tensor,
    bank: Tensor,
    n: int,
    *,
    exclude: Tensor | None = None,
    query_group: Tensor | None = None,
    bank_group: Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``n`` bank rows most cosine-similar to each query, searched in chunks of rows.

    Args:
        query: ``(Q, D)``; normalised here.
        bank: ``(N, D)`` unit rows (any float dtype; compared in float32).
        n: how many to keep, ``1 <= n <= N`` (minus the excluded entries).
        exclude: ``(Q,)`` long, one bank row per query never returned (its own entry).
        query_group, bank_group: ``(Q,)`` and ``(N,)`` integer labels; a bank row whose
            group equals the query's is never returned (e.g. track ids exclude the
            query's whole track).
        chunk_size: bank rows compared at once (default: about 32 MiB of scratch).

    Returns: ``(similarity, index)``, both ``(Q, n)``, sorted by decreasing similarity.
    Memory is ``O(Q * (n + chunk_size))`` whatever ``N`` is; time is linear in ``N``.
    """
    if query.dim() != 2 or bank.dim() != 2 or query.shape[1] != bank.shape[1]:
        raise ValueError(f"bank_topk expects (Q, D) and (N, D) with equal D, got {tuple(query.shape)} and {tuple(bank.shape)}")
    if not 1 <= n <= bank.shape[0]:
        raise ValueError(f"bank_topk: n={n} must be between 1 and the bank size {bank.shape[0]}")
    if (query_group is None) != (bank_group is None):
        raise ValueError("bank_topk: give both query_group and bank_group, or neither")
    q = F.normalize(query.detach().float(), dim=1)
    rows_q = torch.arange(q.shape[0], device=q.device)
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // (q.shape[0] + bank.shape[1]))
    best_sim = best_idx = None
    for start in range(0, bank.shape[0], chunk_size):
        rows = bank[start : start + chunk_size].float()
        stop = start + rows.shape[0]
        sim = q @ rows.T
        if exclude is not None:
            inside = (exclude >= start) & (exclude < stop)
            sim[rows_q[inside], exclude[inside] - start] = float("-inf")
        if query_group is not None:
            same = query_group.to(q.device)[:, None] == bank_group[start:stop].to(q.device)[None, :]
            sim.masked_fill_(same, float("-inf"))
        sim, idx = sim.topk(min(n, sim.shape[1]), dim=1, sorted=False)
        idx += start
        if best_sim is not None:  # merge with the best so far
            merged = torch.cat([best_sim, sim], 1)
            sim, pos = merged.topk(min(n, merged.shape[1]), dim=1, sorted=False)
            idx = torch.cat([best_idx, idx], 1).gather(1, pos)
        best_sim, best_idx = sim, idx
    best_sim, order = best_sim.sort(dim=1, descending=True)
    best_idx = best_idx.gather(1, order)
    if best_sim.shape[1] < n or bool(torch.isinf(best_sim).any()):
        raise ValueError(f"bank_topk: fewer than n={n} bank entries remain once each query's excluded entries are left out")
    return best_sim, best_idx


def _dense_is_cheaper(n_bank: int, per_row: int) -> bool:
    """Gathering ``per_row`` bank rows per query costs about 30x more per element than a
    BLAS product over the whole bank (measured on a 2-core CPU), so a chunked product is
    the faster way to reach ``per_row`` entries when the bank is under ~32x larger."""
    return n_bank <= 32 * per_row


class _BankSimilarities(torch.autograd.Function):
    """``out[b, m] = query[b] . bank[index[b, m]]``; gradient to ``query`` only.

    Two equivalent ways, chosen by cost: gather the requested rows (``rows`` queries at
    a time), or multiply by the bank in chunks of ``chunk`` rows and pick the requested
    entries (backward: scatter the gradient into the chunk and multiply back)."""

    @staticmethod
    def forward(ctx, query: Tensor, bank: Tensor, index: Tensor, rows: int, chunk: int, dense: bool) -> Tensor:
        ctx.save_for_backward(bank, index)
        ctx.rows, ctx.chunk, ctx.dense, ctx.query_dtype = rows, chunk, dense, query.dtype
        dtype = torch.float64 if query.dtype == torch.float64 else torch.float32
        q = query.to(dtype)
        out = q.new_empty(index.shape)
        if dense:
            r = torch.arange(index.shape[0], device=q.device)[:, None].expand_as(index)
            for s in range(0, bank.shape[0], chunk):
                keys = bank[s : s + chunk].to(dtype)
                inside = (index >= s) & (index < s + keys.shape[0])
                if bool(inside.any()):
                    out[inside] = (q @ keys.T)[r[inside], index[inside] - s]
            return out
        for s in range(0, index.shape[0], rows):
            keys = bank[index[s : s + rows]].to(dtype)  # (c, M, D)
            out[s : s + rows] = torch.bmm(keys, q[s : s + rows, :, None])[..., 0]
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        bank, index = ctx.saved_tensors
        out = grad.new_zeros(index.shape[0], bank.shape[1])
        if ctx.dense:
            r = torch.arange(index.shape[0], device=grad.device)[:, None].expand_as(index)
            for s in range(0, bank.shape[0], ctx.chunk):
                keys = bank[s : s + ctx.chunk].to(grad.dtype)
                inside = (index >= s) & (index < s + keys.shape[0])
                if bool(inside.any()):
                    g = grad.new_zeros(index.shape[0], keys.shape[0])
                    g.index_put_((r[inside], index[inside] - s), grad[inside], accumulate=True)
                    out += g @ keys
        else:
            for s in range(0, index.shape[0], ctx.rows):
                keys = bank[index[s : s + ctx.rows]].to(grad.dtype)
                out[s : s + ctx.rows] = torch.bmm(grad[s : s + ctx.rows, None, :], keys)[:, 0]
        return out.to(ctx.query_dtype), None, None, None, None, None


@float32_loss(keep=("bank",))
def bank_similarities(query: Tensor, bank: Tensor, index: Tensor, dense: bool | None = None) -> Tensor:
    """Dot products of each query with chosen bank rows, differentiable in ``query``.

    Args:
        query: ``(B, D)`` (normalise it first for cosine similarities).
        bank: ``(N, D)``, any float dtype (treated as a constant).
        index: ``(B, M)`` long, entries in ``[0, N)``.
        dense: compute through chunked products with the whole bank (``True``) or by
            gathering the requested rows (``False``); ``None`` picks the cheaper.

    Returns: ``(B, M)`` float32 (float64 for a float64 query). Either way the scratch
    memory stays about 32 MiB, in the forward and the backward pass.
    """
    if query.dim() != 2 or bank.dim() != 2 or index.dim() != 2 or index.shape[0] != query.shape[0]:
        raise ValueError(
            f"bank_similarities expects query (B, D), bank (N, D), index (B, M); got {tuple(query.shape)}, "
            f"{tuple(bank.shape)}, {tuple(index.shape)}"
        )
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= bank.shape[0]):
        raise IndexError(f"bank_similarities: index out of range [0, {bank.shape[0]})")
    if dense is None:
        dense = _dense_is_cheaper(bank.shape[0], index.shape[1])
    rows = max(1, CHUNK_ELEMENTS // max(1, index.shape[1] * bank.shape[1]))
    chunk = max(1, CHUNK_ELEMENTS // (query.shape[0] + bank.shape[1]))
    return _BankSimilarities.apply(query, bank.detach(), index.long(), rows, chunk, dense)


class MemoryBank(nn.Module):
    """One normalised embedding per training sample, updated with momentum.

    Args:
        size: number of training samples ``N`` (indices are ``0..N-1``).
        dim: embedding size ``D``.
        momentum: ``m`` in ``v <- normalise(m * v + (1 - m) * normalise(z))`` (0.5 in
            Invariance Propagation; 0 overwrites).
        dtype: storage type, ``torch.float32`` or ``torch.float16`` (halves memory for
            large ``N``; similarities are still computed in float32).
        neighbours_k: also keep each sample's ``k`` nearest bank entries (``0``: no list).
        seed: the initial bank is random unit vectors from this seed (the same on every
            rank, so DDP ranks start identical).
    """

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        momentum: float = 0.5,
        dtype: torch.dtype = torch.float32,
        neighbours_k: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"MemoryBank needs size >= 1 and dim >= 1, got size={size}, dim={dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MemoryBank momentum must be in [0, 1), got {momentum}")
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"MemoryBank dtype must be float32, float16 or bfloat16, got {dtype}")
        if neighbours_k < 0 or neighbours_k >= size:
            raise ValueError(
                f"MemoryBank: neighbours_k={neighbours_k} needs 0 <= k < size={size} "
                "(each sample's k nearest other entries)"
            )
        self.size, self.dim, self.momentum, self.neighbours_k = size, dim, momentum, neighbours_k
        g = torch.Generator().manual_seed(seed)
        init = torch.empty(size, dim, dtype=dtype)
        step = max(1, CHUNK_ELEMENTS // dim)
        for start in range(0, size, step):  # in chunks: no full-size float32 temporaries
            rows = min(step, size - start)
            init[start : start + rows] = F.normalize(torch.randn(rows, dim, generator=g), dim=1).to(dtype)
        self.register_buffer("embeddings", init)
        self.register_buffer("neighbours", torch.full((size, max(neighbours_k, 0)), -1, dtype=torch.long))

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, momentum={self.momentum}, dtype={self.embeddings.dtype}, k={self.neighbours_k}"

    # -- updates -----------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, index: Tensor, embeddings: Tensor, neighbours: Tensor | None = None) -> None:
        """Write this step's embeddings (and neighbour lists) of the samples ``index``.

        Args:
            index: ``(b,)`` long, this rank's sample indices.
            embeddings: ``(b, D)``, normalised here; detached.
            neighbours: ``(b, k)`` long, the new neighbour lists of these samples.

        Under DDP every rank passes its own batch (equal ``b`` on every rank); the batches
        are gathered rank-major and every rank applies the same writes, so the banks stay
        identical. A sample appearing twice in the gathered batch keeps its last
        occurrence (rank-major order).
        """
        if index.dim() != 1 or embeddings.shape != (index.shape[0], self.dim):
            raise ValueError(
                f"MemoryBank.update expects index (b,) and embeddings (b, {self.dim}), "
                f"got {tuple(index.shape)} and {tuple(embeddings.shape)}"
            )
        if neighbours is not None and neighbours.shape != (index.shape[0], self.neighbours_k):
            raise ValueError(
                f"MemoryBank.update: neighbours must be (b, {self.neighbours_k}), got {tuple(neighbours.shape)}"
            )
        index = index.to(self.embeddings.device).long()
        z = F.normalize(embeddings.detach().float(), dim=1).to(self.embeddings.device)
        if distributed.is_distributed():
            index, z = distributed.gather(index), distributed.gather(z)
            if neighbours is not None:
                neighbours = distributed.gather(neighbours.to(self.embeddings.device).long())
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.size):
            raise IndexError(
                f"MemoryBank.update: sample index out of range [0, {self.size}) (min {int(index.min())}, "
                f"max {int(index.max())}); was the bank built for a different data set size?"
            )
        keep = _last_occurrence(index)
        index, z = index[keep], z[keep]
        old = self.embeddings[index].float()
        self.embeddings[index] = F.normalize(self.momentum * old + (1.0 - self.momentum) * z, dim=1).to(self.embeddings.dtype)
        if neighbours is not None:
            self.neighbours[index] = neighbours[keep].to(self.neighbours.device).long()

    # -- search --------------------------------------------------------------------------------
    def topk(self, query: Tensor, n: int, exclude: Tensor | None = None, chunk_size: int | None = None):
        """``(similarity, index)`` of the ``n`` entries most similar to each query row
        (``(Q, n)`` each, decreasing); ``exclude (Q,)``: each query's own sample index,
        never returned. See :func:`bank_topk`."""
        limit = self.size - (1 if exclude is not None else 0)
        if n > limit:
            raise ValueError(
                f"memory bank holds {self.size} samples: cannot return the {n} nearest"
                + (" other entries" if exclude is not None else "")
                + " (use a smaller k / number of negatives, or more data)"
            )
        return bank_topk(query, self.embeddings, n, exclude=exclude, chunk_size=chunk_size)

    def similarities(self, query: Tensor, index: Tensor) -> Tensor:
        """``(B, M)`` dot products of ``query (B, D)`` with entries ``index (B, M)``,
        differentiable in ``query``. See :func:`bank_similarities`."""
        return bank_similarities(query, self.embeddings, index)

    # -- checkpoints ---------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for name, want in (("embeddings", (self.size, self.dim)), ("neighbours", tuple(self.neighbours.shape))):
            got = state_dict.get(prefix + name)
            if got is not None and tuple(got.shape) != want:
                raise CheckpointError(
                    f"memory bank '{prefix}{name}' in the checkpoint has shape {tuple(got.shape)} but this run "
                    f"expects {want}: the training set now has {self.size} samples (the checkpoint's bank was "
                    f"built for {got.shape[0]}). Resume with the same data set, or start a new run."
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


def _last_occurrence(index: Tensor) -> Tensor:
    """Positions of ``index``'s entries that are the last occurrence of their value."""
    n = index.shape[0]
    if n == 0:
        return index.new_zeros(0)
    unique, inverse = torch.unique(index, return_inverse=True)
    last = torch.full((unique.shape[0],), -1, dtype=torch.long, device=index.device)
    last.scatter_reduce_(0, inverse, torch.arange(n, device=index.device), reduce="amax")
    return last
