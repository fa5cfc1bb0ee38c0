"""Representations of any ``torch.nn.Module`` at any layer picked by name (forward hooks).

Layer names are those of ``model.named_modules()`` (``"backbone.layer3"``,
``"features.4"``); ``"output"`` is the model's own output. For invlab encoders the stage
names work too: ``stem``, ``layer1`` .. ``layer4`` mean ``backbone.<stage>`` and ``pool``
is the output (the pooled features, the usual representation).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from invlab.errors import ConfigError

__all__ = ["OUTPUT", "resolve_layers", "LayerTaps", "flatten_representation", "SeriesRepresentation"]

OUTPUT = "output"


def _module_names(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name}


def resolve_layers(model: nn.Module, layers: Sequence[str] | str | None) -> list[tuple[str, str]]:
    """``[(label, module name or "output")]`` for the requested layers (default: the
    output). Unknown names raise a :class:`ConfigError` listing the choices."""
    if layers is None:
        return [(OUTPUT, OUTPUT)]
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    modules = _module_names(model)
    out = []
    for name in layers:
        if name in (OUTPUT, "pool") and (name == OUTPUT or "pool" not in modules):
            out.append((name, OUTPUT))
        elif name in modules:
            out.append((name, name))
        elif f"backbone.{name}" in modules:
            out.append((name, f"backbone.{name}"))
        else:
            top = [n for n in modules if n.count(".") <= 1][:40]
            close = difflib.get_close_matches(name, list(modules) + [f"{n[len('backbone.'):]}" for n in modules
                                                                     if n.startswith("backbone.")], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown layer {name!r}{hint}; use 'output' or a module name of {type(model).__name__}, "
                f"e.g. {', '.join(top)}"
            )
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"layers {labels} name the same layer twice")
    return out


def flatten_representation(t: Tensor, pool: str = "flatten", max_dim: int | None = None) -> Tensor:
    """``(N, ...) -> (N, D)``. ``pool="flatten"`` keeps every unit (a feature map's spatial
    layout counts); ``"mean"`` averages over spatial positions. With ``max_dim``, feature
    maps are average-pooled down (by powers of two) until ``C * H * W <= max_dim``."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    t = t.detach().float()
    if t.dim() <= 2:
        return t.reshape(len(t), -1)
    if pool == "mean":
        return t.flatten(2).mean(-1)
    if pool != "flatten":
        raise ValueError(f"pool must be 'flatten' or 'mean', got {pool!r}")
    if max_dim is not None and t.dim() == 4:
        while t[0].numel() > max_dim and min(t.shape[-2:]) > 1:
            t = nn.functional.avg_pool2d(t, 2, ceil_mode=True)
    return t.flatten(1)


class LayerTaps:
    """Run a model and collect the outputs of named layers.

    >>> with LayerTaps(model, [("layer3", "backbone.layer3"), ("output", "output")]) as taps:
    ...     feats = taps(x)          # {"layer3": (N, ...), "output": (N, ...)}
    """

    def __init__(self, model: nn.Module, layers: list[tuple[str, str]]):
        self.model, self.layers = model, layers
        self._store: dict[str, Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> LayerTaps:
        modules = _module_names(self.model)
        for label, name in self.layers:
            if name == OUTPUT:
                continue

            def hook(_module, _inputs, output, label=label):
                self._store[label] = output

            self._handles.append(modules[name].register_forward_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    @torch.no_grad()
    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        self._store = {}
        out = self.model(x)
        result = {}
        for label, name in self.layers:
            result[label] = out if name == OUTPUT else self._store[label]
        return result


class SeriesRepresentation(nn.Module):
    """A time-series token encoder (e.g. :class:`~invlab.nn.PatchTransformer`) as a module
    from series ``(B, C, T)`` to one representation per series, for measurement.

    The output is the instance embedding (``instance``: ``"cls"``, ``"last"`` or
    ``"mean"``) with one row per series (a channel-independent encoder's channels are
    concatenated); the layer ``"tokens"`` is every token of the series. Layers inside the
    encoder see channel-independent batches ``(B * C, ...)``, so they are not offered.
    """

    def __init__(self, encoder: nn.Module, instance: str = "cls"):
        super().__init__()
        self.encoder, self.instance = encoder, instance
        self.tokens = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.encoder(x)
        self.tokens(self.encoder.per_series(tokens.flatten(1)))
        return self.encoder.per_series(self.encoder.instance_embedding(tokens, self.instance))
