"""Optimisers and schedules: SGD, LARS, AdamW; linear warm-up then cosine decay (per step)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["OptimSpec", "LARS", "build_optimizer", "warmup_cosine", "param_groups"]


@dataclass
class OptimSpec:
    """Optimiser settings. ``lr`` is absolute (no batch-size scaling)."""

    name: str = "sgd"  # sgd | lars | adamw
    lr: float = 0.06
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 10.0
    schedule: str = "cosine"  # cosine | constant
    min_lr_ratio: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    lars_eta: float = 0.02
    exclude_bias_and_norm: bool = False  # from weight decay (and LARS adaptation)
    probe_lr: float = 0.1  # online linear probe (no weight decay)


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al., 2017).

    The update of each parameter is scaled by ``eta * ||w|| / ||g + wd * w||``; groups
    with ``lars_exclude=True`` (biases, norms, probes) get plain SGD with momentum.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.02):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if group["weight_decay"] != 0:
                    d = d.add(p, alpha=group["weight_decay"])
                if not group["lars_exclude"]:
                    w_norm, d_norm = torch.norm(p), torch.norm(d)
                    trust = torch.where(
                        (w_norm > 0) & (d_norm > 0), group["eta"] * w_norm / d_norm, torch.ones_like(w_norm)
                    )
                    d = d.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(d).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(d)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def _is_bias_or_norm(name: str, p: torch.Tensor, module_of: dict[str, nn.Module]) -> bool:
    owner = module_of.get(name.rsplit(".", 1)[0]) if "." in name else None
    return p.ndim <= 1 or isinstance(owner, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))


def param_groups(model: nn.Module, spec: OptimSpec, exclude: Iterable[nn.Module] = ()) -> list[dict]:
    """Trainable parameters of ``model`` except those in ``exclude``, split into a decayed
    group and (if ``spec.exclude_bias_and_norm``) an undecayed, LARS-excluded group."""
    skip = {id(p) for m in exclude for p in m.parameters()}
    modules = dict(model.named_modules())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        if spec.exclude_bias_and_norm and _is_bias_or_norm(name, p, modules):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": spec.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "lars_exclude": True})
    return groups


def build_optimizer(groups: list[dict], spec: OptimSpec) -> torch.optim.Optimizer:
    if spec.name == "sgd":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.name == "lars":
        return LARS(groups, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay, eta=spec.lars_eta)
    if spec.name == "adamw":
        for g in groups:
            g.pop("lars_exclude", None)
        return torch.optim.AdamW(groups, lr=spec.lr, betas=tuple(spec.betas), weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimiser {spec.name!r}; use sgd, lars or adamw")


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0, schedule: str = "cosine"):
    """Multiplier of the base lr at each step: linear warm-up from ``1/warmup`` to 1, then
    cosine decay to ``min_ratio`` (or constant)."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
