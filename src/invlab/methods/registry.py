"""The one table of methods a recipe can name: ``METHODS`` (name -> :class:`MethodSpec`).

Built from the explicit tuple :data:`BUILTIN` of the method modules' ``SPEC`` objects, so
what exists is readable here and never depends on import order or import side effects.
Adding a paper: write ``methods/<paper>.py`` with a params dataclass and ``SPEC``, and add
the spec to ``BUILTIN``. :func:`register_method` / :func:`registered` add a method at run
time (plug-ins, tests) without touching the run layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from invlab.methods import (
    barlow_twins,
    essl,
    hdc,
    instaaug,
    invariance_propagation,
    simclr,
    simsiam,
    supervised,
    supervised_timeseries,
    timedrl,
    ts2vec,
)
from invlab.methods.spec import MethodSpec

__all__ = ["BUILTIN", "METHODS", "MethodSpec", "register_method", "unregister_method", "registered", "method_spec"]

BUILTIN: tuple[MethodSpec, ...] = (
    simclr.SPEC,
    simsiam.SPEC,
    barlow_twins.SPEC,
    supervised.SPEC,
    *essl.SPECS,
    *instaaug.SPECS,
    timedrl.SPEC,
    supervised_timeseries.SPEC,
    ts2vec.SPEC,
    invariance_propagation.SPEC,
    *hdc.SPECS,
)

METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`METHODS`; a taken name is an error (no silent replacement)."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method takes a MethodSpec, got {type(spec).__name__}")
    if spec.name in METHODS:
        raise ValueError(f"method name {spec.name!r} is already registered ({METHODS[spec.name].cls.__name__})")
    METHODS[spec.name] = spec
    return spec


def unregister_method(name: str) -> MethodSpec:
    """Remove a method added with :func:`register_method` (built-in ones stay)."""
    if any(spec.name == name for spec in BUILTIN):
        raise ValueError(f"{name!r} is a built-in method and cannot be removed")
    return METHODS.pop(name)


@contextmanager
def registered(spec: MethodSpec) -> Iterator[MethodSpec]:
    """``with registered(spec):`` recipes can name ``spec.name`` inside the block."""
    register_method(spec)
    try:
        yield spec
    finally:
        unregister_method(spec.name)


def method_spec(name: str) -> MethodSpec:
    """The spec of method ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}") from None


for _spec in BUILTIN:
    register_method(_spec)
del _spec
