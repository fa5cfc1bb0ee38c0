"""What every method shares: the base :class:`TrainingMethod` (divergence guard, per-epoch
running means kept in the checkpoint) and the per-step learning-rate schedule.
``SSLMethod`` and the time-series methods derive from it."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from invlab.distributed import is_distributed, rank, world_size
from invlab.errors import DivergenceError
from invlab.methods.optim import OptimSpec, build_optimizer, param_groups, warmup_cosine

__all__ = [
    "EpochAverages", "TrainingMethod", "check_finite_loss", "configure_time_series_optimizers", "per_step_schedule",
]


class EpochAverages:
    """Running per-epoch means of training terms, saved in checkpoints so an epoch
    interrupted and resumed reports the same mean as an uninterrupted one (Lightning's own
    epoch aggregation restarts from zero after a resume)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, terms: dict[str, Tensor], n: int) -> None:
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value.detach()) * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.count = dict(state.get("sums", {})), int(state.get("count", 0))


class TrainingMethod(L.LightningModule):
    """Base of every invlab method (images and time series).

    A training step calls :meth:`check_finite` on its objective (a NaN or infinite loss
    stops the run naming the step and the term) and :meth:`log_training_step`, which logs
    the step's loss as ``train/loss_step`` and adds the step's terms to
    :class:`EpochAverages`; at the epoch's end their batch-size-weighted means are logged
    as ``train/<term>``. The running sums live in the checkpoint, so a run killed in the
    middle of an epoch and resumed logs the same means as one never interrupted. Never log
    training terms with Lightning's ``on_epoch=True``: that aggregation restarts from zero
    after a resume.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch_averages = EpochAverages()

    def check_finite(self, loss: Tensor, terms: dict[str, Tensor]) -> None:
        """Stop with a clear message on a NaN or infinite loss (the last good checkpoint
        stays on disk)."""
        check_finite_loss(self, loss, terms)

    def log_training_step(self, loss: Tensor, terms: dict[str, Tensor], batch_size: int) -> None:
        """Log ``loss`` for this step and add ``{"loss": loss, **terms}`` to the epoch's means."""
        self.log("train/loss_step", loss.detach(), prog_bar=True, on_step=True, on_epoch=False)
        self.epoch_averages.add({"loss": loss, **terms}, batch_size)

    def on_train_epoch_start(self) -> None:
        # not called when Lightning restarts in the middle of an epoch: the averages
        # restored from the checkpoint then carry on
        self.epoch_averages.reset()

    def on_train_epoch_end(self) -> None:
        for name, value in self.epoch_averages.means().items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        state = self.epoch_averages.state_dict()
        section = checkpoint.setdefault("invlab", {})
        section["epoch_averages"] = state
        if is_distributed():
            # each process holds the running sums of its own shard and only rank 0 writes the
            # file: keep every rank's, so each resumes its own (every rank saves together)
            states: list = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, state)
            section["epoch_averages_per_rank"] = states

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        section = checkpoint.get("invlab", {})
        per_rank = section.get("epoch_averages_per_rank")
        if per_rank is not None and len(per_rank) == world_size():
            self.epoch_averages.load_state_dict(per_rank[rank()])
        else:
            self.epoch_averages.load_state_dict(section.get("epoch_averages", {}))


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
