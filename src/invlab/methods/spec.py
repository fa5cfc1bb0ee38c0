"""What a method declares so that a recipe can name it: :class:`MethodSpec`.

Each method file defines its recipe parameters (a dataclass whose fields are the
constructor's keyword arguments) and a module-level ``SPEC = MethodSpec(...)``;
:mod:`invlab.methods.registry` lists the specs explicitly. See ``docs/architecture.md``
("How to add a method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invlab.errors import ConfigError

__all__ = ["MethodSpec", "check_choice"]


@dataclass(frozen=True)
class MethodSpec:
    """A method as recipes see it.

    name: the recipe's ``method:`` value (unique).
    modality: ``"image"``, ``"timeseries"`` or ``"video"``: the recipe sections, run set-up and
        evaluation protocols the method uses.
    cls: the LightningModule class the modality builds.
    params: dataclass of the recipe's ``params`` section; its fields are passed to ``cls``
        as keyword arguments.
    views: the number of views the method needs, if fixed (checked against ``augment.views``).
    needs_labels: trains on labels (a classifier head instead of projector/predictor).
    validate: optional ``validate(cfg)`` raising :class:`~invlab.errors.ConfigError` for
        checks of the method's parameters against the whole recipe.
    sync_batchnorm: BatchNorm statistics over the global batch (SyncBatchNorm) when more
        than one process trains, as the paper's code does; a recipe's
        ``trainer.sync_batchnorm`` overrides it.
    """

    name: str
    modality: str
    cls: type
    params: type
    views: int | None = None
    needs_labels: bool = False
    validate: Callable[[Any], None] | None = None
    sync_batchnorm: bool = False

    def param_kwargs(self, params: Any) -> dict[str, Any]:
        """The ``params`` section as keyword arguments of ``cls`` (shallow: nested
        dataclasses are passed as objects)."""
        return {k: getattr(params, k) for k in params.__dataclass_fields__}


def check_choice(key: str, value: Any, options: tuple) -> None:
    """``ConfigError`` naming recipe key ``key`` unless ``value`` is one of ``options``."""
    if value not in options:
        raise ConfigError(f"recipe key '{key}' must be one of {', '.join(map(str, options))}, got {value!r}")
