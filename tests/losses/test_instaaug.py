"""InstaAug / Augerino losses: the score-function estimator against the exact gradient,
entropies against naive formulas, the entropy controllers on toys."""

from __future__ import annotations

import math

import pytest
import torch

from invlab.losses.instaaug import (
    AdaptiveEntropyWeight,
    EntropyTarget,
    augerino_loss,
    categorical_entropy,
    score_function_loss,
    uniform_entropy,
)
from invlab.transforms.learned import sample_categorical


@pytest.fixture(autouse=True)
def _one_thread():
    """These loops run thousands of tiny ops: with 2 threads on a loaded 2-core machine
    each op waits on a thread barrier (measured ~100x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _per_trial_estimates(theta, f, trials, k, baseline, seed):
    """One score-function gradient estimate per trial (each trial: K samples)."""
    rows = theta.detach().expand(trials, -1).clone().requires_grad_()
    idx = sample_categorical(rows, k, torch.Generator().manual_seed(seed)).t()  # (K, T)
    log_prob = torch.log_softmax(rows, -1).gather(1, idx.t()).t()
    surrogate = score_function_loss(log_prob, f[idx], baseline)
    (grad,) = torch.autograd.grad(surrogate, rows)
    return grad * trials  # undo the mean over trials


def test_score_function_matches_exact_gradient_and_baseline_reduces_variance():
    theta = torch.tensor([0.5, -0.3, 1.0, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([1.0, 2.0, 0.0, 3.0, 1.5], dtype=torch.float64) + 10.0  # offset: a poor implicit baseline
    (exact,) = torch.autograd.grad((torch.softmax(theta, 0) * f).sum(), theta)
    trials = 40000
    results = {}
    for baseline in ("leave_one_out", "none"):
        g = _per_trial_estimates(theta, f, trials, 4, baseline, seed=1)
        mean, stderr = g.mean(0), g.std(0) / math.sqrt(trials)
        assert bool(((mean - exact).abs() <= 4 * stderr + 1e-9).all()), (baseline, mean, exact, stderr)
        results[baseline] = g.var(0).sum()
    assert results["leave_one_out"] < 0.05 * results["none"], results


def test_score_function_bad_input():
    with pytest.raises(ValueError, match="K >= 2"):
        score_function_loss(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(K, N\)"):
        score_function_loss(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="baseline"):
        score_function_loss(torch.zeros(2, 3), torch.zeros(2, 3), "mean")


def test_entropies_match_naive_formulas():
    logits = torch.randn(4, 6)
    naive = []
    for row in logits:
        p = [math.exp(v) for v in row.tolist()]
        z = sum(p)
        naive.append(-sum(q / z * math.log(q / z) for q in p))
    assert torch.allclose(categorical_entropy(logits), torch.tensor(naive), atol=1e-5)
    am, ap = torch.tensor([[1.0, 0.5]]), torch.tensor([[2.0, 0.5]])
    assert torch.allclose(uniform_entropy(am, ap), torch.tensor([math.log(3.0) + math.log(1.0)]))


def test_adaptive_weight_direction_and_state():
    c = AdaptiveEntropyWeight(1.0, 2.0, init_weight=0.1)
    assert c.update(0.5) == pytest.approx(0.12)
    assert c.update(1.5) == pytest.approx(0.12)
    assert c.update(2.5) == pytest.approx(0.1)
    assert "weight" in c.state_dict()
    d = AdaptiveEntropyWeight(1.0, 2.0)
    d.load_state_dict(c.state_dict())
    assert float(d.weight) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="low < high"):
        AdaptiveEntropyWeight(2.0, 1.0)
    with pytest.raises(ValueError, match="nan"):
        c.update(float("nan"))


def test_adaptive_weight_keeps_entropy_in_band_on_a_toy():
    """A task that wants the distribution to collapse onto one candidate, against the
    adaptive bonus: after the weight has adapted, every period's mean entropy stays in
    (or within one step's drift of) the band, while without control it collapses."""
    torch.manual_seed(0)
    low, high = 1.5, 2.0
    reward = torch.linspace(0, 1, 30)

    def run(controlled: bool, periods: int):
        logits = torch.zeros(2, 30, requires_grad=True)
        opt = torch.optim.Adam([logits], lr=0.1)
        control = AdaptiveEntropyWeight(low, high, init_weight=1.0)
        history = []
        for _ in range(periods):
            entropies = []
            for _ in range(10):
                p = torch.softmax(logits, -1)
                h = categorical_entropy(logits)
                loss = -(p * reward * 5).sum(-1).mean() + (control.loss(h) if controlled else 0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                entropies.append(float(h.mean().detach()))
            mean_h = sum(entropies) / len(entropies)
            control.update(mean_h)
            history.append(mean_h)
        return history

    controlled, free = run(True, 40), run(False, 20)
    assert free[-1] < low - 0.5
    late = controlled[20:]
    assert all(low - 0.15 <= h <= high + 0.15 for h in late), late
    assert sum(low <= h <= high for h in late) >= 0.8 * len(late), late


def test_entropy_target_ramp_and_freeze():
    e = EntropyTarget(start=3.0, end=1.0, strength=0.3, warmup=0.2, ramp_end=0.6)
    assert e.frozen(0.1) and not e.frozen(0.2)
    assert e.target(0.0) == 3.0 and e.target(0.4) == pytest.approx(2.0) and e.target(0.9) == 1.0
    h = torch.tensor([1.0, 3.0])
    assert float(e.loss(h, 0.4)) == pytest.approx(0.0)
    assert float(e.loss(h, 1.0)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="warmup"):
        EntropyTarget(1.0, 1.0, warmup=0.7, ramp_end=0.5)


def test_augerino_loss():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    loss = augerino_loss(torch.tensor(2.0), w, reg=0.01)
    assert float(loss.detach()) == pytest.approx(2.0 - 0.05)
    loss.backward()
    assert torch.allclose(w.grad, -0.01 * w.detach() / 5.0)


def test_nt_xent_per_sample_averages_to_nt_xent():
    from invlab.losses.contrastive import nt_xent
    from invlab.losses.instaaug import nt_xent_per_sample

    z1, z2 = torch.randn(6, 5), torch.randn(6, 5)
    per = nt_xent_per_sample(z1, z2, 0.3)
    assert per.shape == (6,)
    assert torch.allclose(per.mean(), nt_xent(z1, z2, 0.3, gather=False), atol=1e-6)
