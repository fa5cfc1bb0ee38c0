from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invlab.data import ImageArray
from invlab.evaluation import extract_features, knn_accuracy, knn_predict, linear_probe
from invlab.evaluation.knn import faiss_available, knn_search


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


def naive_neighbours(query, bank, k):
    """Reference: every similarity of the dense (Q, N) matrix, ranked by (similarity
    descending, bank index ascending) with Python's sort."""
    sim = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    out = []
    for row in sim.tolist():
        out.append([j for _, j in sorted(((-s, j) for j, s in enumerate(row)))[:k]])
    return torch.tensor(out)


def tied_problem(seed=0, n=150, q=16, d=8):
    """Unit features with four entries of +-0.5 and the rest 0, rows repeated: every
    similarity is a multiple of 0.25, computed exactly by any matrix-product path, so the
    bank is full of exactly equal similarities and only the tie rule decides."""
    g = torch.Generator().manual_seed(seed)

    def draw(m):
        x = torch.zeros(m, d)
        for i in range(m):
            cols = torch.randperm(d, generator=g)[:4]
            x[i, cols] = 0.5 * (torch.randint(0, 2, (4,), generator=g).float() * 2 - 1)
        return x

    bank = draw(n // 3)
    bank = torch.cat([bank, bank, bank])[torch.randperm(n, generator=g)]
    return draw(q), bank, torch.randint(0, 4, (n,), generator=g)


CHUNKINGS = [(1, 60), (3, 17), (7, 100), (16, 4000)]


@pytest.mark.parametrize("k", [1, 7, 50])
def test_chunked_search_equals_the_dense_ranking_exactly_with_ties(k):
    query, bank, labels = tied_problem()
    dense_sim, dense_idx = knn_search(query, bank, k, chunk_size=10_000, max_chunk_elements=10**9)
    assert dense_idx.tolist() == naive_neighbours(query, bank, k).tolist()  # ties: lower index first
    if k > 1:  # the test is about ties
        assert (dense_sim[:, :-1] == dense_sim[:, 1:]).float().mean() > 0.5
    dense_scores = knn_predict(query, bank, labels, 4, k, 0.1, chunk_size=10_000, max_chunk_elements=10**9)
    for chunk, elements in CHUNKINGS:
        sim, idx = knn_search(query, bank, k, chunk_size=chunk, max_chunk_elements=elements)
        assert torch.equal(idx, dense_idx) and torch.equal(sim, dense_sim), (chunk, elements)
        scores = knn_predict(query, bank, labels, 4, k, 0.1, chunk_size=chunk, max_chunk_elements=elements)
        assert torch.equal(scores, dense_scores), (chunk, elements)


def test_chunked_search_equals_the_dense_computation_on_real_valued_features():
    """Generic features: the same neighbours and predictions at every chunking; the
    similarities agree to float32 rounding (a BLAS product may round a dot product
    differently for another matrix shape)."""
    g = torch.Generator().manual_seed(3)
    bank, query = torch.randn(300, 16, generator=g), torch.randn(24, 16, generator=g)
    labels = torch.randint(0, 5, (300,), generator=g)
    dense_sim, dense_idx = knn_search(query, bank, 20, chunk_size=10_000, max_chunk_elements=10**9)
    assert dense_idx.tolist() == naive_neighbours(query, bank, 20).tolist()
    dense_pred = knn_predict(query, bank, labels, 5, 20, 0.1, chunk_size=10_000, max_chunk_elements=10**9).argmax(1)
    for chunk, elements in CHUNKINGS:
        sim, idx = knn_search(query, bank, 20, chunk_size=chunk, max_chunk_elements=elements)
        assert torch.equal(idx, dense_idx), (chunk, elements)
        torch.testing.assert_close(sim, dense_sim, rtol=0, atol=1e-6)
        pred = knn_predict(query, bank, labels, 5, 20, 0.1, chunk_size=chunk, max_chunk_elements=elements).argmax(1)
        assert torch.equal(pred, dense_pred)


def test_rank_key_orders_like_the_floats_then_the_index():
    from invlab.evaluation.knn import _rank_key

    sim = torch.tensor([[-1.0, -0.5, -0.0, 0.0, 1e-30, 0.5, 0.5, 1.0, -1e-30]])
    idx = torch.arange(sim.shape[1])
    order = _rank_key(sim, idx).argsort(1, descending=True)[0].tolist()
    assert order == [7, 5, 6, 4, 2, 3, 8, 1, 0]  # -0.0 ties with 0.0 (lower index first)


def test_bounded_memory_chunks_never_build_the_query_by_bank_matrix(monkeypatch):
    """Every similarity block the search multiplies stays within the chunk budget."""
    import invlab.evaluation.knn as knn

    query, bank = torch.randn(64, 8), torch.randn(5000, 8)
    seen = []
    real = knn._block_topk

    def spy(sim, index, k):
        seen.append(sim.numel())
        return real(sim, index, k)

    monkeypatch.setattr(knn, "_block_topk", spy)
    knn_search(query, bank, 10, chunk_size=16, max_chunk_elements=16 * 256)
    assert seen and max(seen) <= 16 * 256 < query.shape[0] * bank.shape[0]


@pytest.mark.skipif(not faiss_available(), reason="the optional faiss extra is not installed")
@pytest.mark.parametrize("k", [1, 10])
def test_faiss_exact_index_finds_the_same_neighbours_and_predictions(k):
    g = torch.Generator().manual_seed(1)
    bank, query = torch.randn(2000, 32, generator=g), torch.randn(100, 32, generator=g)
    labels = torch.randint(0, 10, (2000,), generator=g)
    sim, idx = knn_search(query, bank, k)
    f_sim, f_idx = knn_search(query, bank, k, backend="faiss", chunk_size=33)
    assert torch.equal(f_idx, idx)
    torch.testing.assert_close(f_sim, sim, rtol=0, atol=1e-5)
    torch_scores = knn_predict(query, bank, labels, 10, k, 0.1)
    faiss_scores = knn_predict(query, bank, labels, 10, k, 0.1, backend="faiss")
    assert torch.equal(faiss_scores.argmax(1), torch_scores.argmax(1))
    torch.testing.assert_close(faiss_scores, torch_scores, rtol=1e-4, atol=0)
    qy = torch.randint(0, 10, (100,), generator=g)
    assert knn_accuracy(query, qy, bank, labels, 10, k, backend="faiss") == knn_accuracy(query, qy, bank, labels, 10, k)


@pytest.mark.skipif(not faiss_available(), reason="the optional faiss extra is not installed")
def test_faiss_ivf_index_trains_and_finds_near_neighbours():
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(8, 16, generator=g) * 4
    bank = centres.repeat_interleave(200, 0) + torch.randn(1600, 16, generator=g)
    labels = torch.arange(8).repeat_interleave(200)
    query = centres + 0.1 * torch.randn(8, 16, generator=g)
    acc = knn_accuracy(query, torch.arange(8), bank, labels, 8, k=20, backend="faiss",
                       faiss_index="IVF8,Flat", faiss_nprobe=2)
    assert acc == 1.0


def test_knn_rejects_unknown_backend_bad_chunks_and_non_finite_features():
    with pytest.raises(ValueError, match="bank features contain NaN"):
        knn_search(torch.rand(2, 3), torch.tensor([[0.0, 1.0, float("nan")]] * 4), 2)
    with pytest.raises(ValueError, match="backend"):
        knn_search(torch.rand(2, 3), torch.rand(4, 3), 2, backend="annoy")
    with pytest.raises(ValueError, match="chunk_size"):
        knn_search(torch.rand(2, 3), torch.rand(4, 3), 2, chunk_size=0)


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
