"""Weighted k-nearest-neighbour classification on embeddings (Wu et al., 2018).

Each query votes with its ``k`` most cosine-similar bank entries, weighted by
``exp(sim / t)``.

The search streams: queries go in chunks of ``chunk_size`` rows and the bank in chunks
of rows sized so that one chunk's similarity block stays under ``max_chunk_elements``
elements; each bank chunk's top ``k`` is merged into the running best (after the first chunk,
only as many as the most entries any row has above its current ``k``-th best). Memory is
``O(chunk_size * (k + bank_chunk))`` whatever the bank size ``N`` (no ``Q x N`` matrix),
time is linear in ``N``.

Ties are broken the same way at every chunk size: entries are ranked by similarity, then
by the lower bank index (an int64 key that orders the float32 similarity's bits and then
the index, so :func:`torch.topk` has no ties left to break arbitrarily; it is computed
only for the few candidates of each block, and for a whole row only where a tie straddles
the ``k``-th place). The chunked search therefore returns the neighbours of the dense
computation, in the same order, and the same class scores. (A BLAS product can round a
dot product differently for matrices of another shape, by one unit in the last place;
features whose products are exact, such as those of the tests, agree bit for bit.)

``backend="faiss"`` searches with `faiss <https://github.com/facebookresearch/faiss>`_
(the optional ``faiss`` extra) instead: an exact ``IndexFlatIP`` by default, or any
index factory string (``"IVF4096,Flat"``, ``"IVF4096,PQ32"``) for banks that do not fit
in memory as float32. With the exact index it finds the same neighbours as the torch
search (up to the order of exactly equal similarities, which faiss does not define).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_predict", "knn_accuracy", "knn_search", "faiss_available", "KNN_BACKENDS"]

KNN_BACKENDS = ("torch", "faiss")

#: elements of one bank chunk's similarity block (16 MiB of float32)
MAX_CHUNK_ELEMENTS = 1 << 22

_INDEX_BITS = 32
_INDEX_LIMIT = (1 << 31) - 1


def faiss_available() -> bool:
    """Whether the optional ``faiss`` package imports."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _rank_key(sim: Tensor, index: Tensor) -> Tensor:
    """int64 keys ordering ``sim (Q, M)`` float32 descending, then ``index (M,)``
    ascending: larger key = better neighbour. The float's bits map to an int32 whose
    order is the float's (negative floats have their magnitude bits flipped); ``-0.0`` is
    folded into ``+0.0`` first so equal similarities get equal high halves."""
    bits = (sim + 0.0).contiguous().view(torch.int32)
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    return ordered * (1 << _INDEX_BITS) + (_INDEX_LIMIT - index.to(torch.int64))


def _check_inputs(query: Tensor, bank: Tensor, k: int) -> None:
    if query.dim() != 2 or bank.dim() != 2 or query.shape[1] != bank.shape[1]:
        raise ValueError(f"knn expects (Q, D) and (N, D) with equal D, got {tuple(query.shape)} and {tuple(bank.shape)}")
    if k < 1:
        raise ValueError(f"knn needs k >= 1, got k={k}")
    if bank.shape[0] > _INDEX_LIMIT:
        raise ValueError(f"knn: the bank has {bank.shape[0]} rows; the torch search indexes at most {_INDEX_LIMIT}")


def _block_topk(sim: Tensor, index: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The best ``min(k, M)`` of a similarity block ``sim (Q, M)`` with bank indices
    ``index (M,)`` under the (similarity, lower index) order: ``(key, sim, index)``, best
    first. A float top-``k + 1`` finds them; only rows whose ``k``-th and ``k + 1``-th
    similarities are equal (a tie at the boundary) are ranked again by the full key."""
    m = sim.shape[1]
    if m <= k:
        key, pos = _rank_key(sim, index).topk(m, dim=1)
        return key, sim.gather(1, pos), index[pos]
    vals, pos = sim.topk(k + 1, dim=1)
    pos = pos[:, :k].clone()
    tied = (vals[:, k - 1] == vals[:, k]).nonzero().flatten()
    if tied.numel():
        pos[tied] = _rank_key(sim[tied], index).topk(k, dim=1).indices
    top_sim, top_idx = sim.gather(1, pos), index[pos]
    key, order = _rank_key(top_sim, top_idx).topk(k, dim=1)
    return key, top_sim.gather(1, order), top_idx.gather(1, order)


@torch.no_grad()
def _torch_search(query: Tensor, bank: Tensor, k: int, chunk_size: int, max_chunk_elements: int) -> tuple[Tensor, Tensor]:
    device = bank.device
    n = bank.shape[0]
    for name, x in (("query", query), ("bank", bank)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"knn: the {name} features contain NaN or infinite values")
    sims, idxs = [], []
    for qs in range(0, query.shape[0], chunk_size):
        q = F.normalize(query[qs : qs + chunk_size].float().to(device), dim=1)
        rows = max(k, max_chunk_elements // max(1, q.shape[0]))
        best_key = best_sim = best_idx = None
        for bs in range(0, n, rows):
            b = F.normalize(bank[bs : bs + rows].float(), dim=1)
            block = q @ b.T
            take = k
            if best_sim is not None:
                # only entries above a row's current k-th best can enter it (an equal one has
                # a higher index, so it loses the tie): keep the block's top `take` only
                take = int((block > best_sim[:, -1:]).sum(1).max())
                if take == 0:
                    continue
            key, sim, idx = _block_topk(block, torch.arange(bs, bs + b.shape[0], device=device), min(k, take))
            if best_key is not None:  # merge with the best so far (keys are unique: no ties)
                key, pos = torch.cat([best_key, key], 1).topk(k, dim=1)
                sim = torch.cat([best_sim, sim], 1).gather(1, pos)
                idx = torch.cat([best_idx, idx], 1).gather(1, pos)
            best_key, best_sim, best_idx = key, sim, idx
        sims.append(best_sim)
        idxs.append(best_idx)
    if not sims:
        return torch.zeros(0, k, device=device), torch.zeros(0, k, dtype=torch.long, device=device)
    return torch.cat(sims), torch.cat(idxs)


def _faiss_search(query: Tensor, bank: Tensor, k: int, chunk_size: int, index_factory: str,
                  train_size: int, nprobe: int | None) -> tuple[Tensor, Tensor]:
    try:
        import faiss
    except ImportError:
        raise ImportError("knn backend 'faiss' needs the faiss package: pip install 'invlab[faiss]'") from None
    dim = bank.shape[1]
    index: Any = faiss.index_factory(dim, index_factory, faiss.METRIC_INNER_PRODUCT)

    def unit(x: Tensor) -> np.ndarray:
        return np.ascontiguousarray(F.normalize(x.detach().float().cpu(), dim=1).numpy())

    if not index.is_trained:
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(bank.shape[0], generator=g)[: min(train_size, bank.shape[0])]
        index.train(unit(bank[pick.sort().values]))
    if nprobe is not None and hasattr(index, "nprobe"):
        index.nprobe = nprobe
    step = max(1, MAX_CHUNK_ELEMENTS // max(1, dim))
    for s in range(0, bank.shape[0], step):  # add in chunks: no full float32 copy of the bank
        index.add(unit(bank[s : s + step]))
    sims, idxs = [], []
    for s in range(0, query.shape[0], chunk_size):
        d, i = index.search(unit(query[s : s + chunk_size]), k)
        sims.append(torch.from_numpy(d))
        idxs.append(torch.from_numpy(i).long())
    if not sims:
        return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.long)
    sim, idx = torch.cat(sims), torch.cat(idxs)
    if bool((idx < 0).any()):
        raise ValueError(f"faiss index {index_factory!r} found fewer than k={k} neighbours for some queries; raise nprobe")
    return sim, idx


def knn_search(
    query: Tensor,
    bank: Tensor,
    k: int,
    *,
    chunk_size: int = 1024,
    backend: str = "torch",
    max_chunk_elements: int = MAX_CHUNK_ELEMENTS,
    faiss_index: str = "Flat",
    faiss_train_size: int = 100_000,
    faiss_nprobe: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` bank rows most cosine-similar to each query: ``(similarity, index)``,
    both ``(Q, k)``, best first (ties: lower bank index first with the torch backend).

    ``query (Q, D)`` and ``bank (N, D)`` are L2-normalised here; ``k`` is capped at ``N``.
    ``backend="torch"`` runs on the bank's device in bounded memory (see the module
    docstring); ``"faiss"`` on the CPU with ``faiss_index`` (a faiss index factory string;
    ``faiss_train_size`` bank rows train it when it needs training, ``faiss_nprobe`` sets
    an IVF index's probes)."""
    _check_inputs(query, bank, k)
    if chunk_size < 1 or max_chunk_elements < 1:
        raise ValueError(f"knn needs chunk_size >= 1 and max_chunk_elements >= 1, got {chunk_size}, {max_chunk_elements}")
    k = min(k, bank.shape[0])
    if backend == "torch":
        return _torch_search(query, bank, k, chunk_size, max_chunk_elements)
    if backend == "faiss":
        return _faiss_search(query, bank, k, chunk_size, faiss_index, faiss_train_size, faiss_nprobe)
    raise ValueError(f"knn backend must be one of {KNN_BACKENDS}, got {backend!r}")


@torch.no_grad()
def knn_predict(
    query: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
    **search: Any,
) -> Tensor:
    """Class scores ``(Q, num_classes)`` for ``query (Q, D)`` given ``bank (N, D)`` with
    integer ``bank_labels (N,)``: each of a query's ``k`` neighbours adds
    ``exp(sim / temperature)`` to its class. Embeddings are L2-normalised here; ``search``
    passes on to :func:`knn_search` (``backend``, ``max_chunk_elements``, ``faiss_index``, ...)."""
    if bank.dim() == 2 and bank.shape[0] != bank_labels.shape[0]:
        raise ValueError(f"bank has {bank.shape[0]} rows but {bank_labels.shape[0]} labels")
    if temperature <= 0 or k < 1:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, t={temperature}")
    sim, idx = knn_search(query, bank, k, chunk_size=chunk_size, **search)
    labels = bank_labels.to(idx.device).long()[idx]
    scores = torch.zeros(sim.shape[0], num_classes, device=sim.device)
    return scores.scatter_add_(1, labels, (sim / temperature).exp())


def knn_accuracy(
    query: Tensor,
    query_labels: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
    **search: Any,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` (a predicted class is the first of the
    highest-scoring classes)."""
    if num_classes is None:
        num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    scores = knn_predict(query, bank, bank_labels, num_classes, k, temperature, chunk_size, **search)
    return float((scores.argmax(1).cpu() == query_labels.cpu()).float().mean())
