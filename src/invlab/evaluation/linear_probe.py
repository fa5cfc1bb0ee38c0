"""Linear probe on frozen, precomputed features."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ProbeResult", "linear_probe"]


@dataclass
class ProbeResult:
    top1: float
    train_top1: float
    epochs: int
    history: list[float] = field(default_factory=list)


def linear_probe(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    num_classes: int | None = None,
    epochs: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    seed: int = 0,
    standardize: bool = True,
) -> ProbeResult:
    """Train ``Linear(D, num_classes)`` with AdamW (cosine schedule, cross-entropy) on
    ``train_x (N, D)`` and report top-1 on ``test_x``.

    The encoder is frozen by construction (features are precomputed without
    augmentation); features are standardised with training-set statistics. The result
    is the last epoch's, never an epoch picked by its test score.
    """
    if train_x.dim() != 2 or test_x.dim() != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected (N, D) features with equal D, got {tuple(train_x.shape)}, {tuple(test_x.shape)}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError("features and labels differ in length")
    if (train_y < 0).any():
        raise ValueError("the linear probe needs labels; some training labels are missing (-1)")
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    train_x, test_x = train_x.float(), test_x.float()
    if standardize:
        mean, std = train_x.mean(0, keepdim=True), train_x.std(0, keepdim=True).clamp_min(1e-6)
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(train_x.shape[1], num_classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.01, generator=g)
        head.bias.zero_()
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_x) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=g)
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            loss = F.cross_entropy(head(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append(total / len(order))
    with torch.no_grad():
        top1 = float((head(test_x).argmax(1) == test_y).float().mean())
        train_top1 = float((head(train_x).argmax(1) == train_y).float().mean())
    return ProbeResult(top1, train_top1, epochs, history)
