"""What every method shares: the base :class:`TrainingMethod` (divergence guard, per-epoch
running means kept in the checkpoint, neither synchronising with the device in the step)
and the per-step learning-rate schedule.
``SSLMethod`` and the time-series methods derive from it."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor

from invlab.distributed import is_distributed, rank, world_size
from invlab.errors import DivergenceError
from invlab.methods.optim import OptimSpec, build_optimizer, param_groups, warmup_cosine

__all__ = [
    "DivergenceWatch", "EpochAverages", "SeriesTrainingMethod", "TrainingMethod", "check_finite_loss", "configure_time_series_optimizers", "per_step_schedule",
]


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64


class EpochAverages:
    """Running per-epoch means of training terms, saved in checkpoints so an epoch
    interrupted and resumed reports the same mean as an uninterrupted one (Lightning's own
    epoch aggregation restarts from zero after a resume).

    The sums stay on the terms' device (float64; float32 on MPS) and are read back only by
    :meth:`means` and :meth:`state_dict` (the epoch's end, a checkpoint): adding a step's
    terms never waits for the device."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, Tensor], n: int) -> None:
        for name, value in terms.items():
            value = value.detach()
            weighted = value.to(_accumulator_dtype(value.device)) * n
            previous = self.sums.get(name)
            self.sums[name] = weighted if previous is None else previous.to(weighted.device) + weighted
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.count for k, v in self.sums.items()} if self.count else {}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def state_dict(self) -> dict:
        return {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {k: torch.tensor(float(v), dtype=torch.float64) for k, v in state.get("sums", {}).items()}
        self.count = int(state.get("count", 0))


class DivergenceWatch:
    """Remembers, on the device and without waiting for it, the first training step whose
    loss was not finite (its epoch, step and every term's value there); :meth:`check`
    reads that back and raises :class:`DivergenceError`. Recording costs a few tiny
    device operations per step; only :meth:`check` synchronises."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.first_step: Tensor | None = None  # -1: every recorded loss was finite
        self.first_epoch: Tensor | None = None
        self.values: dict[str, Tensor] = {}
        self.pending = 0  # steps recorded since the last check

    def record(self, loss: Tensor, terms: dict[str, Tensor], epoch: int, step: int) -> None:
        loss = loss.detach()
        if self.first_step is None or self.first_step.device != loss.device:
            self.first_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self.first_epoch = torch.full((), -1, dtype=torch.long, device=loss.device)
        first = ~torch.isfinite(loss) & (self.first_step < 0)
        self.first_step = torch.where(first, step, self.first_step)
        self.first_epoch = torch.where(first, epoch, self.first_epoch)
        for name, value in {"loss": loss, **terms}.items():
            value = value.detach().float().reshape(-1)[:1].reshape(()).to(loss.device)
            previous = self.values.get(name, torch.zeros((), device=loss.device))
            self.values[name] = torch.where(first, value, previous)
        self.pending += 1

    def check(self) -> None:
        """Raise :class:`DivergenceError` if a recorded loss was not finite (one host
        synchronisation); once raised, every later check raises again. Under DDP every rank must call it at the same point: the first
        non-finite step of any rank stops all of them."""
        if not self.pending or self.first_step is None:
            return
        step = self.first_step
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            packed = torch.where(step < 0, torch.iinfo(torch.long).max, step).reshape(1)
            torch.distributed.all_reduce(packed, op=torch.distributed.ReduceOp.MIN)
            if int(packed) == torch.iinfo(torch.long).max:
                self.pending = 0
                return
            if int(step) < 0:
                raise DivergenceError(f"non-finite loss on another process at step {int(packed)}; "
                                      "lower the learning rate or check the input data")
        elif int(step) < 0:
            self.pending = 0
            return
        values = {name: float(v) for name, v in self.values.items()}
        bad = [name for name, v in values.items() if name != "loss" and not math.isfinite(v)] or ["loss"]
        # the run (runs/pretrain_run.py) adds which checkpoint holds the last good state
        raise DivergenceError(
            f"non-finite loss at epoch {int(self.first_epoch)}, step {int(step)}: "
            f"term(s) {', '.join(bad)} = {', '.join(str(values[b]) for b in bad)}; "
            "lower the learning rate or check the input data"
        )


class TrainingMethod(L.LightningModule):
    """Base of every invlab method (images and time series).

    A training step calls :meth:`check_finite` on its objective and
    :meth:`log_training_step`, which logs the step's loss as ``train/loss_step`` and adds
    the step's terms to :class:`EpochAverages`; at the epoch's end their
    batch-size-weighted means are logged as ``train/<term>``. The running sums live in the
    checkpoint, so a run killed in the middle of an epoch and resumed logs the same means
    as one never interrupted. Never log training terms with Lightning's ``on_epoch=True``:
    that aggregation restarts from zero after a resume.

    Neither makes the host wait for the device (no ``.item()``, ``float()`` or ``bool()``
    of a tensor in the step): the divergence guard records non-finite losses on the device
    (:class:`DivergenceWatch`) and checks every ``trainer.log_every_n_steps`` training
    steps, at every epoch's end and before every checkpoint is taken. A NaN or infinite
    loss therefore stops the run within ``log_every_n_steps`` steps, naming the epoch,
    the step and the term(s) of the *first* non-finite loss, and no checkpoint of a state
    after that step is ever written (the last one on disk predates it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch_averages = EpochAverages()
        self.divergence = DivergenceWatch()

    def check_finite(self, loss: Tensor, terms: dict[str, Tensor]) -> None:
        """Record whether this step's loss is finite (checked by :meth:`raise_if_diverged`)."""
        self.divergence.record(loss, terms, self.current_epoch, self.global_step)

    def raise_if_diverged(self) -> None:
        """Stop with :class:`DivergenceError` if any loss recorded since the last check was
        not finite (the last good checkpoint stays on disk)."""
        self.divergence.check()

    def log_training_step(self, loss: Tensor, terms: dict[str, Tensor], batch_size: int) -> None:
        """Log ``loss`` for this step and add ``{"loss": loss, **terms}`` to the epoch's means."""
        self.log("train/loss_step", loss.detach(), prog_bar=True, on_step=True, on_epoch=False)
        self.epoch_averages.add({"loss": loss, **terms}, batch_size)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        trainer = getattr(self, "_trainer", None)
        every = max(1, int(getattr(trainer, "log_every_n_steps", 1) or 1))
        if self.divergence.pending >= every:
            self.raise_if_diverged()

    def on_train_epoch_start(self) -> None:
        # not called when Lightning restarts in the middle of an epoch: the averages
        # restored from the checkpoint then carry on
        self.epoch_averages.reset()

    def on_train_epoch_end(self) -> None:
        self.raise_if_diverged()
        for name, value in self.epoch_averages.means().items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, sync_dist=True)

    def on_train_end(self) -> None:
        self.raise_if_diverged()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.raise_if_diverged()  # never write a state trained on a non-finite loss
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
    """Stop at once with :class:`DivergenceError` naming the step and the non-finite
    term(s) (synchronises; training steps use :meth:`TrainingMethod.check_finite`)."""
    watch = DivergenceWatch()
    watch.record(loss, terms, module.current_epoch, module.global_step)
    watch.check()


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


class SeriesTrainingMethod(TrainingMethod):
    """A time-series method: subclasses set ``self.optim_spec`` (:class:`OptimSpec`) and
    ``self._callbacks`` (the run's extra Lightning callbacks) in ``__init__``."""

    optim_spec: OptimSpec
    _callbacks: list

    def configure_optimizers(self):
        return configure_time_series_optimizers(self, self.optim_spec)

    def configure_callbacks(self):
        return self._callbacks
