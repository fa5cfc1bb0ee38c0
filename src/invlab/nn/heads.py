"""Declarative MLP heads (projectors, predictors, equivariance heads).

>>> MLP(512, [2048, 2048], 128, norm="batch", last_norm="batch")   # SimSiam projector
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

__all__ = ["MLP", "HeadSpec"]

_NORMS = ("none", "batch", "layer", "batch_noaffine")


def _norm(kind: str, dim: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "batch_noaffine":
        return nn.BatchNorm1d(dim, affine=False)
    if kind == "layer":
        return nn.LayerNorm(dim)
    raise ValueError(f"norm must be one of {_NORMS}, got {kind!r}")


class MLP(nn.Sequential):
    """``Linear -> norm -> act [-> dropout]`` per hidden layer, then ``Linear [-> last_norm]``.

    Shapes: ``(N, in_dim) -> (N, out_dim)``. Hidden linear layers have no bias when
    followed by a batch norm (it would be cancelled).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        norm: str = "batch",
        last_norm: str = "none",
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        layers: list[nn.Module] = []
        dim = in_dim
        for h in hidden:
            layers.append(nn.Linear(dim, h, bias=not norm.startswith("batch")))
            n = _norm(norm, h)
            if n is not None:
                layers.append(n)
            layers.append(_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            dim = h
        layers.append(nn.Linear(dim, out_dim, bias=not last_norm.startswith("batch")))
        n = _norm(last_norm, out_dim)
        if n is not None:
            layers.append(n)
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - shapes in the class docstring
        return super().forward(x)


def _activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
    if name not in acts:
        raise ValueError(f"activation must be one of {sorted(acts)}, got {name!r}")
    return acts[name]()


@dataclass
class HeadSpec:
    """Recipe form of an :class:`MLP` (the input dim comes from the backbone)."""

    hidden: list[int] = field(default_factory=lambda: [2048])
    out: int = 128
    norm: str = "batch"
    last_norm: str = "none"
    activation: str = "relu"
    dropout: float = 0.0

    def build(self, in_dim: int) -> MLP:
        return MLP(in_dim, self.hidden, self.out, self.norm, self.last_norm, self.activation, self.dropout)
