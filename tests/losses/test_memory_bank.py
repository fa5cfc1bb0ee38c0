"""Memory bank (losses/memory_bank.py): momentum update, storage types, chunked search, gradients, checkpoints,
bad input, and DDP consistency (two gloo processes end every step with the same bank)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from invlab.errors import CheckpointError
from invlab.losses.memory_bank import MemoryBank, bank_similarities, bank_topk


def _unit(n, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1)


def test_initial_bank_is_unit_rows_and_seeded():
    a, b, c = MemoryBank(20, 8, seed=1), MemoryBank(20, 8, seed=1), MemoryBank(20, 8, seed=2)
    assert torch.allclose(a.embeddings.norm(dim=1), torch.ones(20))
    assert torch.equal(a.embeddings, b.embeddings) and not torch.equal(a.embeddings, c.embeddings)
    assert (a.neighbours.shape == (20, 0)) and MemoryBank(20, 8, neighbours_k=4).neighbours.eq(-1).all()


def test_momentum_update_matches_formula_row_by_row():
    bank = MemoryBank(10, 4, momentum=0.5, neighbours_k=2)
    before = bank.embeddings.clone()
    idx = torch.tensor([3, 7, 0])
    z = torch.randn(3, 4) * 5  # not normalised: the bank normalises
    nb = torch.tensor([[1, 2], [3, 4], [5, 6]])
    bank.update(idx, z, nb)
    for row, i in enumerate(idx.tolist()):
        want = 0.5 * before[i] + 0.5 * z[row] / z[row].norm()
        torch.testing.assert_close(bank.embeddings[i], want / want.norm())
        assert bank.neighbours[i].tolist() == nb[row].tolist()
    untouched = [i for i in range(10) if i not in idx.tolist()]
    assert torch.equal(bank.embeddings[untouched], before[untouched])
    assert bank.neighbours[untouched].eq(-1).all()


def test_duplicate_index_keeps_the_last_occurrence():
    bank = MemoryBank(5, 3, momentum=0.0)
    z = torch.eye(3)
    bank.update(torch.tensor([2, 4, 2]), z)
    torch.testing.assert_close(bank.embeddings[2], z[2])
    torch.testing.assert_close(bank.embeddings[4], z[1])


def test_float16_storage_keeps_float32_search_close():
    emb = _unit(300, 16)
    b32, b16 = MemoryBank(300, 16, momentum=0.0), MemoryBank(300, 16, momentum=0.0, dtype=torch.float16)
    b32.update(torch.arange(300), emb)
    b16.update(torch.arange(300), emb)
    assert b16.embeddings.dtype == torch.float16 and b16.embeddings.element_size() == 2
    q = _unit(5, 16, seed=3)
    s32, _ = b32.topk(q, 10)
    s16, _ = b16.topk(q, 10)
    assert s16.dtype == torch.float32
    torch.testing.assert_close(s16, s32, atol=2e-3, rtol=0)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_topk_equals_full_search(chunk):
    bank, q = _unit(200, 8), _unit(13, 8, seed=1)
    sim, idx = bank_topk(q, bank, 11, chunk_size=chunk)
    full_sim, full_idx = (q @ bank.T).topk(11, dim=1)
    torch.testing.assert_close(sim, full_sim)
    assert torch.equal(idx, full_idx)


def test_topk_excludes_own_entry_and_groups():
    bank = _unit(50, 6)
    mb = MemoryBank(50, 6, momentum=0.0)
    mb.update(torch.arange(50), bank)
    own = torch.tensor([4, 9, 30])
    _, idx = mb.topk(bank[own], 5, exclude=own)  # the query is its own best match
    assert not (idx == own[:, None]).any()
    full = (bank[own] @ bank.T).scatter(1, own[:, None], float("-inf")).topk(5, dim=1).indices
    assert torch.equal(idx, full)
    groups = torch.arange(50) // 10  # five groups of ten
    _, gidx = bank_topk(bank[own], bank, 5, query_group=groups[own], bank_group=groups, chunk_size=8)
    _, eidx = bank_topk(bank[own], bank, 5, exclude=own, chunk_size=3)
    assert torch.equal(eidx, full)
    assert not (groups[gidx] == groups[own][:, None]).any()


@pytest.mark.parametrize("dense", [False, True])
def test_bank_similarities_values_and_gradient(dense, monkeypatch):
    import invlab.losses.memory_bank as mb

    monkeypatch.setattr(mb, "CHUNK_ELEMENTS", 64)  # several chunks either way
    bank = _unit(40, 5, dtype=torch.float64)
    q = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 40, (6, 9), generator=torch.Generator().manual_seed(0))
    idx[0, :3] = 7  # a repeated entry: its gradient accumulates
    got = bank_similarities(q, bank, idx, dense=dense)
    want = torch.einsum("bd,bmd->bm", q, bank[idx])
    torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda x: bank_similarities(x, bank, idx, dense=dense), (q,))


def test_bank_similarities_rejects_out_of_range_index():
    with pytest.raises(IndexError, match=r"out of range \[0, 4\)"):
        bank_similarities(torch.rand(2, 3), _unit(4, 3), torch.tensor([[0, 4], [1, 2]]))


def test_bank_smaller_than_k_is_a_clear_error():
    with pytest.raises(ValueError, match="neighbours_k=4 needs 0 <= k < size=4"):
        MemoryBank(4, 8, neighbours_k=4)
    mb = MemoryBank(6, 3)
    with pytest.raises(ValueError, match="holds 6 samples: cannot return the 6 nearest other entries"):
        mb.topk(torch.rand(2, 3), 6, exclude=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="between 1 and the bank size 6"):
        bank_topk(torch.rand(2, 3), mb.embeddings, 7)


def test_update_rejects_bad_shapes_and_indices():
    mb = MemoryBank(6, 3, neighbours_k=2)
    with pytest.raises(ValueError, match=r"embeddings \(b, 3\)"):
        mb.update(torch.tensor([0, 1]), torch.rand(2, 4))
    with pytest.raises(ValueError, match=r"neighbours must be \(b, 2\)"):
        mb.update(torch.tensor([0, 1]), torch.rand(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(IndexError, match="different data set size"):
        mb.update(torch.tensor([0, 6]), torch.rand(2, 3))


def test_state_dict_round_trip_and_size_mismatch():
    mb = MemoryBank(12, 4, neighbours_k=2, dtype=torch.float16)
    mb.update(torch.arange(5), torch.rand(5, 4), torch.randint(0, 12, (5, 2)))
    fresh = MemoryBank(12, 4, neighbours_k=2, dtype=torch.float16, seed=9)
    fresh.load_state_dict(mb.state_dict())
    assert torch.equal(fresh.embeddings, mb.embeddings) and torch.equal(fresh.neighbours, mb.neighbours)
    other = MemoryBank(13, 4, neighbours_k=2)
    with pytest.raises(CheckpointError, match="training set now has 13 samples .* built for 12"):
        other.load_state_dict(mb.state_dict())


# -- DDP ------------------------------------------------------------------------------------
N, D, K, B, STEPS = 23, 5, 3, 8, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _steps():
    """Per step: the global batch (index, embeddings, neighbour lists). Index 5 appears on
    both ranks in step 0 (the padded-sampler case)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for s in range(STEPS):
        idx = torch.randperm(N, generator=g)[:B]
        if s == 0:
            idx[1], idx[B // 2 + 2] = 5, 5
        out.append((idx, torch.randn(B, D, generator=g), torch.randint(0, N, (B, K), generator=g)))
    return out


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        bank = MemoryBank(N, D, momentum=0.5, neighbours_k=K, dtype=torch.float16)
        b = B // world
        for idx, z, nb in _steps():
            sl = slice(rank * b, (rank + 1) * b)
            bank.update(idx[sl], z[sl], nb[sl])
        torch.save(bank.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_ranks_end_with_the_same_bank_as_one_process(tmp_path):
    ref = MemoryBank(N, D, momentum=0.5, neighbours_k=K, dtype=torch.float16)
    for idx, z, nb in _steps():
        ref.update(idx, z, nb)
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in ("embeddings", "neighbours"):
        assert torch.equal(states[0][key], states[1][key]), key
        assert torch.equal(states[0][key], ref.state_dict()[key]), key
