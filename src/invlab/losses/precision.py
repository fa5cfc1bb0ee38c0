"""Losses in float32 under mixed precision.

Under ``torch.autocast`` (``trainer.precision: bf16-mixed`` or ``16-mixed``) the encoder
runs in bfloat16 / float16, but a loss's logits, similarities and cross-correlations
lose too much there (bfloat16 keeps 8 bits of mantissa: a cosine similarity of 0.99
divided by a temperature of 0.1 is off by up to 0.04). :func:`float32_loss` makes a loss
function compute in float32 whatever the surrounding autocast says: its half-precision
tensor arguments are upcast (differentiably, so gradients flow back in their own dtype)
and autocast is switched off inside it. Without autocast and with float32 inputs it
changes nothing.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["float32_loss", "upcast"]

F = TypeVar("F", bound=Callable[..., Any])
_HALF = (torch.float16, torch.bfloat16)


def upcast(x: Any) -> Any:
    """A float16 / bfloat16 tensor as float32 (differentiable); anything else unchanged."""
    return x.float() if isinstance(x, Tensor) and x.dtype in _HALF else x


def _device_type(values: Iterable[Any]) -> str:
    for v in values:
        if isinstance(v, Tensor):
            return v.device.type
    return "cpu"


def float32_loss(fn: F | None = None, *, keep: tuple[str, ...] = ()) -> F:
    """Decorator: run ``fn`` with autocast off and its half-precision tensor arguments
    upcast to float32. ``keep`` names arguments passed through untouched (a large memory
    bank kept in float16, which the loss reads chunk by chunk in float32 itself)."""

    def wrap(f: F) -> F:
        signature = inspect.signature(f)

        @functools.wraps(f)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if keep:
                bound = signature.bind(*args, **kwargs)
                for name, value in bound.arguments.items():
                    if name not in keep:
                        bound.arguments[name] = upcast(value)
                args, kwargs = bound.args, bound.kwargs
            else:
                args = tuple(upcast(a) for a in args)
                kwargs = {k: upcast(v) for k, v in kwargs.items()}
            with torch.autocast(device_type=_device_type((*args, *kwargs.values())), enabled=False):
                return f(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap  # type: ignore[return-value]
