"""Losses and controllers for learned augmentation (InstaAug, Augerino).

- :func:`score_function_loss`: a surrogate whose gradient is the REINFORCE estimate of
  ``grad E_{a ~ p}[loss(a)]`` for a categorical (crops), with a leave-one-out baseline over
  ``K >= 2`` independent samples per input (Kool et al., 2019: unbiased, and much lower
  variance; InstaAug's code has no baseline).
- :func:`categorical_entropy`, :func:`uniform_entropy`: per-input entropies in nats.
- :class:`AdaptiveEntropyWeight` (supervised): an entropy bonus ``-w * H`` whose weight
  is multiplied or divided by ``factor`` to keep the mean entropy inside a band.
- :class:`EntropyTarget` (contrastive): ``strength * (mean H - H_target(t))^2`` with the
  target ramped over training, and the module frozen for a warm-up.
- :func:`augerino_loss`: ``task - reg * ||w||_2``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.losses.precision import float32_loss

__all__ = [
    "score_function_loss",
    "categorical_entropy",
    "uniform_entropy",
    "AdaptiveEntropyWeight",
    "EntropyTarget",
    "augerino_loss",
    "nt_xent_per_sample",
]


@float32_loss
def score_function_loss(log_prob: Tensor, loss: Tensor, baseline: str = "leave_one_out") -> Tensor:
    """Surrogate for the gradient of ``mean_n E_a[loss]`` w.r.t. the distribution.

    Args:
        log_prob: ``(K, N)`` log-probabilities of ``K`` independent samples per input
            (differentiable in the distribution's parameters).
        loss: ``(K, N)`` the loss each sample got (treated as a constant).
        baseline: ``"leave_one_out"`` (sample ``k``'s baseline is the mean loss of the
            other ``K - 1`` samples of the same input; needs ``K >= 2``) or ``"none"``.

    Returns a scalar whose gradient is ``1/(K N) sum (loss - b) grad log p``; its value is
    not the expected loss (add the loss itself where it has pathwise gradients).
    """
    if log_prob.shape != loss.shape or log_prob.dim() != 2:
        raise ValueError(f"log_prob and loss must both be (K, N), got {tuple(log_prob.shape)} and {tuple(loss.shape)}")
    k = log_prob.shape[0]
    loss = loss.detach()
    if baseline == "leave_one_out":
        if k < 2:
            raise ValueError("the leave-one-out baseline needs K >= 2 samples per input")
        advantage = loss - (loss.sum(0, keepdim=True) - loss) / (k - 1)
    elif baseline == "none":
        advantage = loss
    else:
        raise ValueError(f"baseline must be 'leave_one_out' or 'none', got {baseline!r}")
    return (advantage * log_prob).mean()


@float32_loss
def categorical_entropy(logits: Tensor) -> Tensor:
    """``(N, M)`` logits -> ``(N,)`` entropy in nats."""
    logp = F.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


@float32_loss
def uniform_entropy(a_minus: Tensor, a_plus: Tensor, eps: float = 1e-6) -> Tensor:
    """Differential entropy of independent uniforms of widths ``a_minus + a_plus``:
    ``(N, D), (N, D) -> (N,)``, ``sum_d log(width_d)`` (widths floored at ``eps``)."""
    return torch.log((a_minus + a_plus).clamp_min(eps)).sum(-1)


class AdaptiveEntropyWeight(nn.Module):
    """Entropy bonus with a weight adapted to keep the mean entropy in ``[low, high]``.

    The module's loss gets ``-weight * mean(H)``; after each period (an epoch, in the
    paper) :meth:`update` multiplies the weight by ``factor`` if the period's mean entropy
    fell below ``low`` and divides it if it rose above ``high``. The weight is a buffer, so
    it is saved in the checkpoint with the module.
    """

    def __init__(self, low: float, high: float, init_weight: float = 0.1, factor: float = 1.2,
                 min_weight: float = 1e-6, max_weight: float = 1e3):
        super().__init__()
        if not low < high:
            raise ValueError(f"entropy band needs low < high, got [{low}, {high}]")
        if init_weight <= 0 or factor <= 1:
            raise ValueError(f"init_weight must be > 0 and factor > 1, got {init_weight}, {factor}")
        self.low, self.high, self.factor = float(low), float(high), float(factor)
        self.min_weight, self.max_weight = float(min_weight), float(max_weight)
        self.register_buffer("weight", torch.tensor(float(init_weight), dtype=torch.float64))

    @float32_loss
    def loss(self, entropy: Tensor) -> Tensor:
        """``-weight * mean(entropy)`` for per-input entropies ``(N,)``."""
        return -self.weight.to(entropy.dtype) * entropy.mean()

    @torch.no_grad()
    def update(self, mean_entropy: float) -> float:
        """Adapt the weight to one period's mean entropy; returns the new weight."""
        if not math.isfinite(mean_entropy):
            raise ValueError(f"mean entropy is {mean_entropy}; cannot adapt the entropy weight")
        w = float(self.weight)
        if mean_entropy < self.low:
            w = min(w * self.factor, self.max_weight)
        elif mean_entropy > self.high:
            w = max(w / self.factor, self.min_weight)
        self.weight.fill_(w)
        return w

    def extra_repr(self) -> str:
        return f"band=[{self.low}, {self.high}], factor={self.factor}"


class EntropyTarget:
    """Contrastive entropy control: ``strength * (mean(H) - target(p))^2`` where the target
    moves linearly from ``start`` to ``end`` over the training progress ``p in [0, 1]``
    (reaching ``end`` at ``ramp_end``), and the module is frozen while ``p < warmup``."""

    def __init__(self, start: float, end: float, strength: float = 0.3, warmup: float = 0.1,
                 ramp_end: float = 1.0):
        if strength < 0:
            raise ValueError(f"strength must be >= 0, got {strength}")
        if not 0.0 <= warmup < 1.0 or not warmup < ramp_end <= 1.0:
            raise ValueError(f"need 0 <= warmup < ramp_end <= 1, got warmup={warmup}, ramp_end={ramp_end}")
        self.start, self.end, self.strength = float(start), float(end), float(strength)
        self.warmup, self.ramp_end = float(warmup), float(ramp_end)

    def frozen(self, progress: float) -> bool:
        return progress < self.warmup

    def target(self, progress: float) -> float:
        t = (progress - self.warmup) / (self.ramp_end - self.warmup)
        t = min(max(t, 0.0), 1.0)
        return self.start + t * (self.end - self.start)

    @float32_loss
    def loss(self, entropy: Tensor, progress: float) -> Tensor:
        return self.strength * (entropy.mean() - self.target(progress)) ** 2


@float32_loss
def augerino_loss(task_loss: Tensor, widths: Tensor, reg: float = 0.01) -> Tensor:
    """Augerino's objective: ``task_loss - reg * ||widths||_2`` (rewards wide ranges)."""
    return task_loss - reg * widths.norm()


@float32_loss
def nt_xent_per_sample(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's NT-Xent per sample (this process's batch only): ``(B, D), (B, D) -> (B,)``,
    the mean of the two anchors' losses of each sample; its mean is
    :func:`invlab.losses.contrastive.nt_xent` without gathering."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    pos = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    per_anchor = F.cross_entropy(logits, pos, reduction="none")
    return (per_anchor[:b] + per_anchor[b:]) / 2
