"""Several transformed copies of each image, optionally cycling a discrete parameter
through all its values (E-SSL's "every image in all four rotations").
"""

from __future__ import annotations

import torch
from torch import Tensor

from invlab.transforms.base import Params, Transform

__all__ = ["enumerable_key", "transformed_copies"]


def enumerable_key(transform: Transform, copies: int, key: str | None = "auto") -> str | None:
    """Which parameter :func:`transformed_copies` cycles through its values.

    ``key="auto"``: the transform's only scalar discrete/binary parameter, if it has exactly
    one and ``copies`` is a multiple of its number of values (rot90 with 4 copies: all four
    rotations; a flip with 2 or 4: both states), else ``None`` (every copy drawn at random).
    An explicit key must name such a parameter; ``None`` turns enumeration off.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    specs = transform.param_specs()
    if key is None:
        return None
    if key == "auto":
        candidates = [k for k, s in specs.items() if s.kind in ("discrete", "binary") and s.shape == ()]
        if len(candidates) == 1 and copies % specs[candidates[0]].num_classes == 0:
            return candidates[0]
        return None
    if key not in specs:
        raise ValueError(f"cannot enumerate {key!r}: {transform!r} has parameters {sorted(specs)}")
    spec = specs[key]
    if spec.kind not in ("discrete", "binary") or spec.shape != ():
        raise ValueError(f"cannot enumerate {key!r}: only scalar discrete/binary parameters can be, it is {spec.kind}")
    if copies % spec.num_classes:
        raise ValueError(
            f"cannot enumerate {key!r} ({spec.num_classes} values) over {copies} copies: "
            "copies must be a multiple of the number of values"
        )
    return key


def transformed_copies(
    x: Tensor,
    transform: Transform,
    copies: int,
    generator: torch.Generator | None = None,
    enumerate_key: str | None = None,
) -> tuple[Tensor, Params]:
    """``copies`` transformed copies of every image of ``x (N, C, H, W)``.

    Returns ``(y (copies * N, C, H', W'), params)``, copy-major: row ``j * N + i`` is copy
    ``j`` of image ``i``. Parameters are drawn from ``generator``; with ``enumerate_key``
    (see :func:`enumerable_key`) copy ``j`` of every image gets value
    ``j mod num_classes`` of that parameter instead (so with rot90 and 4 copies each image
    appears once in each rotation, labelled ``k = 0, 1, 2, 3``).
    """
    n = x.shape[0]
    params = transform.sample(n * copies, generator, device=x.device, size=tuple(x.shape[-2:]))
    if enumerate_key is not None:
        spec = transform.param_specs()[enumerate_key]
        values = torch.arange(copies, device=x.device).repeat_interleave(n) % spec.num_classes
        params[enumerate_key] = values.to(params[enumerate_key].dtype)
    return transform.apply(x.repeat(copies, *([1] * (x.dim() - 1))), params), params
