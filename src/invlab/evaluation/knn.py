"""Weighted k-nearest-neighbour classification on embeddings (Wu et al., 2018).

Each query votes with its ``k`` most cosine-similar bank entries, weighted by
``exp(sim / t)``. Computed in chunks of queries so memory is ``O(chunk * bank)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["knn_predict", "knn_accuracy"]


@torch.no_grad()
def knn_predict(
    query: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> Tensor:
    """Class scores ``(Q, num_classes)`` for ``query (Q, D)`` given ``bank (N, D)`` with
    integer ``bank_labels (N,)``. Embeddings are L2-normalised here."""
    if query.dim() != 2 or bank.dim() != 2 or query.shape[1] != bank.shape[1]:
        raise ValueError(f"knn expects (Q, D) and (N, D) with equal D, got {tuple(query.shape)} and {tuple(bank.shape)}")
    if bank.shape[0] != bank_labels.shape[0]:
        raise ValueError(f"bank has {bank.shape[0]} rows but {bank_labels.shape[0]} labels")
    if temperature <= 0 or k < 1:
        raise ValueError(f"need k >= 1 and temperature > 0, got k={k}, t={temperature}")
    k = min(k, bank.shape[0])
    bank = F.normalize(bank.float(), dim=1)
    bank_labels = bank_labels.to(bank.device).long()
    out = []
    for start in range(0, query.shape[0], chunk_size):
        q = F.normalize(query[start : start + chunk_size].float().to(bank.device), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        weights = (sim / temperature).exp()
        scores = torch.zeros(q.shape[0], num_classes, device=bank.device)
        scores.scatter_add_(1, bank_labels[idx], weights)
        out.append(scores)
    return torch.cat(out) if out else torch.zeros(0, num_classes)


def knn_accuracy(
    query: Tensor,
    query_labels: Tensor,
    bank: Tensor,
    bank_labels: Tensor,
    num_classes: int | None = None,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> float:
    """Top-1 accuracy of :func:`knn_predict`."""
    if num_classes is None:
        num_classes = int(max(bank_labels.max(), query_labels.max())) + 1
    scores = knn_predict(query, bank, bank_labels, num_classes, k, temperature, chunk_size)
    return float((scores.argmax(1).cpu() == query_labels.cpu()).float().mean())
