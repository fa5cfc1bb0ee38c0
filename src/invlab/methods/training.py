"""What every method shares: the divergence guard and the per-step learning-rate
schedule (``SSLMethod`` and the time-series methods call these)."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from invlab.errors import DivergenceError
from invlab.methods.optim import OptimSpec, build_optimizer, param_groups, warmup_cosine

__all__ = ["check_finite_loss", "configure_time_series_optimizers", "per_step_schedule"]


def check_finite_loss(module: L.LightningModule, loss: Tensor, terms: dict[str, Tensor]) -> None:
    """Stop with :class:`DivergenceError` naming the step and the non-finite term(s)."""
    if bool(torch.isfinite(loss)):
        return
    bad = [name for name, v in terms.items() if not bool(torch.isfinite(v).all())] or ["loss"]
    values = ", ".join(str(float(terms.get(b, loss).detach())) for b in bad)
    # the run (runs/pretrain_run.py) adds which checkpoint holds the last good state
    raise DivergenceError(
        f"non-finite loss at epoch {module.current_epoch}, step {module.global_step}: "
        f"term(s) {', '.join(bad)} = {values}; lower the learning rate or check the input data"
    )


def per_step_schedule(module: L.LightningModule, optimizer: torch.optim.Optimizer, spec: OptimSpec) -> dict:
    """Lightning's ``configure_optimizers`` answer: ``optimizer`` with linear warm-up over
    ``spec.warmup_epochs`` and cosine (or constant) decay, stepped every batch."""
    total = max(1, int(module.trainer.estimated_stepping_batches))
    epochs = max(1, module.trainer.max_epochs or 1)
    warmup = int(round(spec.warmup_epochs * total / epochs))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total, min(warmup, total), spec.min_lr_ratio, spec.schedule)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def configure_time_series_optimizers(module: L.LightningModule, spec: OptimSpec) -> dict:
    """The optimiser of ``spec`` over all trainable parameters, with per-step linear
    warm-up and cosine (or constant) decay."""
    return per_step_schedule(module, build_optimizer(param_groups(module, spec), spec), spec)
