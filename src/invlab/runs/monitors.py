"""Invariance during pretraining: :class:`InvarianceMonitor` measures the encoder's
invariance score to chosen transformations every N epochs and logs the curves.

Recipe key (image runs)::

    trainer:
      invariance_monitor: {transforms: [rotate, hue], every_n_epochs: 1, num_samples: 256}

logs ``invariance/<transform>`` at the step each measurement was taken (into every logger
of the run: ``metrics.csv``, TensorBoard, ...) and keeps the whole curve in
``RUN/invariance_curve.json`` (``{"rows": [{"epoch", "step", "<transform>": score}]}``; epoch
0 is the untrained encoder). The measurement draws from its own seeded generators and runs
the encoder in eval mode without gradients, so it changes neither the training nor its
exact resume.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from invlab.errors import ConfigError
from invlab.evaluation.invariance import invariance_score
from invlab.runs.checkpoint import atomic_write_bytes, read_json_object

__all__ = ["InvarianceMonitor", "MonitorSpec", "monitor_spec"]


@dataclass
class MonitorSpec:
    transforms: list[str] = field(default_factory=list)
    every_n_epochs: int = 1
    num_samples: int = 256
    layer: str = "output"
    seed: int = 0


def monitor_spec(raw: dict[str, Any] | None) -> MonitorSpec | None:
    """``trainer.invariance_monitor`` checked (``None``: no monitor)."""
    if raw is None:
        return None
    where = "recipe key 'trainer.invariance_monitor'"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected {{transforms: [...], every_n_epochs: N}}, got {raw!r}")
    unknown = sorted(set(raw) - set(MonitorSpec.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; options: {', '.join(MonitorSpec.__dataclass_fields__)}")
    spec = MonitorSpec(**raw)
    if isinstance(spec.transforms, str):
        spec.transforms = [s.strip() for s in spec.transforms.split(",") if s.strip()]
    if not spec.transforms or not all(isinstance(t, str) for t in spec.transforms):
        raise ConfigError(f"recipe key 'trainer.invariance_monitor.transforms': name at least one transformation, "
                          f"got {spec.transforms!r}")
    for key in ("every_n_epochs", "num_samples"):
        value = getattr(spec, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "every_n_epochs" else 2):
            raise ConfigError(f"recipe key 'trainer.invariance_monitor.{key}': expected an integer >= "
                              f"{1 if key == 'every_n_epochs' else 2}, got {value!r}")
    return spec


class InvarianceMonitor(Callback):
    """Measure ``pl_module.encoder``'s invariance to ``spec.transforms`` on ``data`` (any
    data :func:`~invlab.evaluation.invariance_score` takes) before training and every
    ``spec.every_n_epochs`` epochs; log the scores and keep the curve in
    ``folder/invariance_curve.json``. Rank 0 measures; the other ranks do nothing."""

    def __init__(self, data: Any, spec: MonitorSpec, folder: str | Path):
        self.data, self.spec = data, spec
        self.path = Path(folder) / "invariance_curve.json"

    def _measure(self, trainer, pl_module, epoch: int) -> None:
        if not trainer.is_global_zero:
            return
        row: dict[str, Any] = {"epoch": epoch, "step": trainer.global_step}
        for name in self.spec.transforms:
            scores = invariance_score(pl_module.encoder, self.data, name, self.spec.layer,
                                      num_samples=self.spec.num_samples, bootstrap=0, seed=self.spec.seed)
            row[name] = next(iter(scores.values())).score
        for logger in trainer.loggers:
            logger.log_metrics({f"invariance/{k}": v for k, v in row.items() if k not in ("epoch", "step")},
                               step=trainer.global_step)
        rows = read_json_object(self.path, "the invariance curve").get("rows", []) if self.path.is_file() else []
        rows = [r for r in rows if r.get("epoch") != epoch] + [row]  # a resumed run re-measures an epoch once
        atomic_write_bytes(self.path, json.dumps({"transforms": self.spec.transforms, "layer": self.spec.layer,
                                                  "rows": sorted(rows, key=lambda r: r["epoch"])}, indent=2).encode())

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_step == 0:
            self._measure(trainer, pl_module, 0)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.spec.every_n_epochs == 0 or epoch == trainer.max_epochs:
            self._measure(trainer, pl_module, epoch)
