from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invlab.data import ImageArray
from invlab.evaluation import extract_features, knn_accuracy, knn_predict, linear_probe


def naive_knn(query, bank, labels, c, k, t):
    q, b = F.normalize(query, dim=1), F.normalize(bank, dim=1)
    out = torch.zeros(len(q), c)
    for i in range(len(q)):
        sims = [(float(q[i] @ b[j]), j) for j in range(len(b))]
        for s, j in sorted(sims, reverse=True)[:k]:
            out[i, labels[j]] += math.exp(s / t)
    return out


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_knn_matches_naive_and_chunking_changes_nothing(chunk):
    g = torch.Generator().manual_seed(0)
    bank, query = torch.randn(30, 4, generator=g), torch.randn(7, 4, generator=g)
    labels = torch.randint(0, 3, (30,), generator=g)
    got = knn_predict(query, bank, labels, 3, k=5, temperature=0.1, chunk_size=chunk)
    torch.testing.assert_close(got, naive_knn(query, bank, labels, 3, 5, 0.1), rtol=1e-4, atol=1e-3)


def test_knn_accuracy_on_separable_clusters_and_k_larger_than_bank():
    centers = torch.eye(3) * 5
    bank = torch.cat([centers[i] + 0.1 * torch.randn(10, 3) for i in range(3)])
    labels = torch.arange(3).repeat_interleave(10)
    query = centers + 0.1 * torch.randn(3, 3)
    assert knn_accuracy(query, torch.arange(3), bank, labels, k=5) == 1.0
    # k beyond the bank clamps to the bank: the same votes as k = len(bank), and still right
    assert knn_accuracy(query, torch.arange(3), bank, labels, k=500) == 1.0
    torch.testing.assert_close(knn_predict(query, bank, labels, 3, k=500), knn_predict(query, bank, labels, 3, k=30))


def test_knn_rejects_bad_shapes():
    with pytest.raises(ValueError):
        knn_predict(torch.rand(2, 3), torch.rand(4, 5), torch.zeros(4), 2)
    with pytest.raises(ValueError):
        knn_predict(torch.rand(2, 3), torch.rand(4, 3), torch.zeros(3), 2)


def test_linear_probe_learns_a_linearly_separable_problem():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 4, generator=g)
    x = torch.randn(600, 8, generator=g)
    y = (x @ w).argmax(1)
    res = linear_probe(x[:500], y[:500], x[500:], y[500:], 4, epochs=300, lr=1e-2, batch_size=64)
    assert res.top1 > 0.9 and res.train_top1 > 0.9
    assert res.history[-1] < res.history[0]
    with pytest.raises(ValueError, match="labels"):
        linear_probe(x[:5], torch.full((5,), -1), x[5:10], y[5:10], 4)


def test_extract_features_restores_mode_and_pools_maps():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    net.train()
    arr = ImageArray(np.zeros((5, 3, 4, 4), dtype=np.uint8), np.arange(5), [], "t")
    feats, labels = extract_features(net, arr, batch_size=2, show_progress=False)
    assert feats.shape == (5, 4) and labels.tolist() == list(range(5)) and net.training
