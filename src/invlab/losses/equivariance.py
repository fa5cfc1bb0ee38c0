"""Equivariance objectives: predict a transformation's parameters from a representation.

What each parameter is comes from the transform's :class:`~invlab.transforms.ParamSpec`
(so any invlab transform can be a prediction target, as in E-SSL, Dangovski et al.,
"Equivariant Contrastive Learning", ICLR 2022):

========== ============================== =================================================
kind       prediction (per element)       loss
========== ============================== =================================================
discrete   ``num_classes`` logits         cross-entropy (rot90's ``k``, a jigsaw index)
binary     2 logits                       cross-entropy (flips, grayscale, ``fired``)
continuous 1 logit ``l``                   Bernoulli KL between the range mapped to ``[0, 1]`` and ``sigmoid(l)``
angle      2 values ``(u, v)``            ``1 - cos(atan2(v, u) - 2 pi theta / period)``
========== ============================== =================================================

Parameters with a per-element ``shape`` (a crop box ``(4,)``) get one prediction per
element. A parameter that only means something when a :class:`RandomApply` fired
(``"blur.sigma"`` next to ``"blur.fired"``) is scored only on the samples where it fired.
The total is the sum over predicted parameters of each one's mean loss.

Continuous values are regressed through a logistic link rather than by squared error:
its gradient with respect to the head's output, ``sigmoid(l) - t``, is bounded like a
cross-entropy's, so a head trained at the base method's learning rate (E-SSL's SGD 0.06
with 2048-wide LayerNorm features) stays stable where squared error diverged within a
few steps; its minimum is still at the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invlab.losses.precision import float32_loss
from invlab.transforms.base import ParamSpec

__all__ = [
    "PredictedParam",
    "prediction_layout",
    "discrete_loss",
    "regression_loss",
    "predicted_value",
    "circular_loss",
    "EquivarianceLoss",
]


@dataclass(frozen=True)
class PredictedParam:
    """One predicted parameter: its ``key`` in the params dict, its ``spec``, the slice
    ``[start, start + width)`` of the prediction vector it reads, and ``mask_key``, the
    ``fired`` flag it depends on (or ``None``)."""

    key: str
    spec: ParamSpec
    start: int
    width: int
    mask_key: str | None = None

    @property
    def elements(self) -> int:
        return math.prod(self.spec.shape)

    @property
    def per_element(self) -> int:
        """Outputs per element: classes for discrete/binary, 2 for angles, 1 otherwise."""
        if self.spec.kind in ("discrete", "binary"):
            return self.spec.num_classes
        return 2 if self.spec.kind == "angle" else 1


def _width(spec: ParamSpec) -> int:
    per = spec.num_classes if spec.kind in ("discrete", "binary") else (2 if spec.kind == "angle" else 1)
    return math.prod(spec.shape) * per


def _fired_key(key: str) -> str:
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    return prefix + "fired"


def prediction_layout(specs: Mapping[str, ParamSpec], keys: Sequence[str] | None = None) -> list[PredictedParam]:
    """Lay the parameters ``keys`` (default: all of ``specs``) out along one prediction
    vector. Raises ``ValueError`` naming the available keys when one is unknown."""
    if keys is None:
        keys = list(specs)
    unknown = [k for k in keys if k not in specs]
    if unknown:
        raise ValueError(f"cannot predict {unknown}: the target transform's parameters are {sorted(specs)}")
    if not keys:
        raise ValueError("nothing to predict: the target transform has no parameters")
    layout, start = [], 0
    for key in keys:
        spec = specs[key]
        fired = _fired_key(key)
        mask = fired if fired != key and fired in specs else None
        width = _width(spec)
        layout.append(PredictedParam(key, spec, start, width, mask))
        start += width
    return layout


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values (N, ...)`` over the samples where ``mask (N,)`` holds; 0 (still
    attached to the graph) when none does."""
    values = values.reshape(values.shape[0], -1).mean(1)
    if mask is None:
        return values.mean()
    w = mask.to(values.dtype)
    return (values * w).sum() / w.sum().clamp_min(1.0)


@float32_loss
def discrete_loss(logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy. ``logits (N, E, C)``, ``target (N, E)`` integer classes (or bool)."""
    n, e, c = logits.shape
    ce = F.cross_entropy(logits.reshape(n * e, c), target.reshape(n * e).long(), reduction="none")
    return _masked_mean(ce.view(n, e), mask)


@float32_loss
def regression_loss(pred: Tensor, target: Tensor, low: float, high: float, mask: Tensor | None = None) -> Tensor:
    """Regression on the range ``[low, high]`` mapped to ``t`` in ``[0, 1]``, through a logistic
    link: ``KL(Bernoulli(t) || Bernoulli(sigmoid(pred)))``, 0 exactly when
    ``sigmoid(pred) = t``. ``pred`` are logits, ``target`` in the parameter's own units
    (values outside the range count as its ends). ``pred, target: (N, E)``."""
    t = normalised_target(target.to(pred.dtype), low, high)
    # BCE with soft targets minus the targets' own entropy (xlogy: 0 log 0 = 0)
    entropy = -(torch.xlogy(t, t) + torch.xlogy(1 - t, 1 - t))
    return _masked_mean(F.binary_cross_entropy_with_logits(pred, t, reduction="none") - entropy, mask)


def _span(low: float, high: float) -> float:
    return (high - low) if high > low else 1.0


def normalised_target(value: Tensor, low: float, high: float) -> Tensor:
    """``value`` in ``[low, high]`` -> ``[0, 1]`` (clamped)."""
    return ((value - low) / _span(low, high)).clamp(0.0, 1.0)


def predicted_value(pred: Tensor, low: float, high: float) -> Tensor:
    """A regression head's logits -> values in the parameter's units."""
    return torch.sigmoid(pred) * _span(low, high) + low


@float32_loss
def circular_loss(pred: Tensor, angle: Tensor, period: float, mask: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """``1 - cos(phi_hat - phi)`` with ``phi = 2 pi angle / period`` and ``phi_hat`` the
    direction of ``pred (N, E, 2)``; ``angle (N, E)``. 0 when right, 2 when opposite; a
    prediction and its wrapped-around twin (359 vs -1 degrees) cost the same."""
    phi = angle.to(pred.dtype) * (2 * math.pi / period)
    u, v = pred.unbind(-1)
    cos_diff = (u * torch.cos(phi) + v * torch.sin(phi)) / torch.sqrt(u * u + v * v + eps)
    return _masked_mean(1.0 - cos_diff, mask)


class EquivarianceLoss(nn.Module):
    """Sum of per-parameter losses for the parameters ``keys`` of a transform with
    parameter specs ``specs``. ``out_dim`` is the size of the prediction a head must emit.

    ``forward(pred (N, out_dim), params) -> (loss, terms)`` where ``params`` is the dict the
    transform's ``sample`` returned for the ``N`` inputs and ``terms`` holds, per key, the
    loss and a readable error: ``"<key>/acc"`` for discrete/binary, ``"<key>/mae"`` (in the
    parameter's units) for continuous and angles.
    """

    def __init__(self, specs: Mapping[str, ParamSpec], keys: Sequence[str] | None = None):
        super().__init__()
        self.layout = prediction_layout(specs, keys)
        self.out_dim = sum(p.width for p in self.layout)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.layout]

    @float32_loss
    def forward(self, pred: Tensor, params: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        if pred.dim() != 2 or pred.shape[1] != self.out_dim:
            raise ValueError(f"expected predictions (N, {self.out_dim}), got {tuple(pred.shape)}")
        missing = [k for k in self.keys if k not in params]
        if missing:
            raise KeyError(f"parameters {missing} are missing from the targets (got {sorted(params)})")
        n = pred.shape[0]
        total = pred.new_zeros(())
        terms: dict[str, Tensor] = {}
        for p in self.layout:
            out = pred[:, p.start : p.start + p.width].reshape(n, p.elements, p.per_element)
            target = params[p.key].to(pred.device).reshape(n, p.elements)
            mask = params[p.mask_key].to(pred.device).bool() if p.mask_key else None
            kind = p.spec.kind
            if kind in ("discrete", "binary"):
                loss = discrete_loss(out, target, mask)
                with torch.no_grad():
                    hit = (out.argmax(-1) == target.long()).float()
                    terms[f"{p.key}/acc"] = _masked_mean(hit, mask)
            elif kind == "continuous":
                out = out.squeeze(-1)
                loss = regression_loss(out, target, p.spec.low, p.spec.high, mask)
                with torch.no_grad():
                    value = predicted_value(out, p.spec.low, p.spec.high)
                    terms[f"{p.key}/mae"] = _masked_mean((value - target).abs(), mask)
            else:  # angle
                loss = circular_loss(out, target, p.spec.period, mask)
                with torch.no_grad():
                    phi_hat = torch.atan2(out[..., 1], out[..., 0])
                    diff = torch.remainder(phi_hat - target * (2 * math.pi / p.spec.period) + math.pi, 2 * math.pi) - math.pi
                    terms[f"{p.key}/mae"] = _masked_mean(diff.abs() * p.spec.period / (2 * math.pi), mask)
            terms[p.key] = loss
            total = total + loss
        return total, terms
