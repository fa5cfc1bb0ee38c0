"""Pretraining: recipe -> run folder, through Lightning's Trainer."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from invlab.errors import ConfigError, RunError
from invlab.runs.checkpoint import AtomicCheckpointIO
from invlab.runs.config import Config
from invlab.runs.metrics_log import RunCSVLogger
from invlab.runs.run_dir import RunDir

__all__ = ["RunCheckpoint", "StepSeeder", "TrainingClock", "make_trainer", "pretrain", "quiet_lightning", "resume_position"]


class RunCheckpoint(ModelCheckpoint):
    """``checkpoints/last.ckpt`` at the end of every epoch and, optionally, every
    ``every_n_steps`` training steps: one file, always the newest state.

    (Two ModelCheckpoint callbacks would each keep their own ``last`` file, so the newest
    could be either; Lightning's constructor refuses step and epoch intervals together,
    hence the step interval is set after it.)
    """

    def __init__(self, dirpath: Path, every_n_steps: int | None = None) -> None:
        super().__init__(
            dirpath=dirpath, filename="last", save_last=True, save_top_k=0, every_n_epochs=1,
            save_on_train_epoch_end=True,
        )
        self._every_n_train_steps = int(every_n_steps or 0)


class StepSeeder(Callback):
    """Seeds torch's global RNG at every training step from ``(seed, rank, epoch, batch)``.

    Dropout, random masks and any other draw from the global generator become a pure
    function of where the run is, so a run resumed from any checkpoint continues exactly as
    an uninterrupted one would, with no RNG state to save.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        key = ((self.seed * 1_000_003 + trainer.global_rank) * 1_000_033 + trainer.current_epoch) * 1_000_037
        torch.manual_seed((key + batch_idx) % (2**63))


class TrainingClock(Callback):
    """Wall time spent in training (validation and checkpointing excluded) and the
    number of samples seen, for an honest samples/s."""

    def __init__(self) -> None:
        self.train_seconds = 0.0
        self.samples = 0
        self._t0: float | None = None

    def exclude(self, seconds: float) -> None:
        """Remove time spent inside a training hook on work that is not training."""
        self.train_seconds -= seconds

    def _pause(self) -> None:
        if self._t0 is not None:
            self.train_seconds += time.perf_counter() - self._t0
            self._t0 = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.samples += _batch_size(batch) * trainer.world_size

    def on_validation_start(self, trainer, pl_module) -> None:
        self._pause()

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.training:
            self._t0 = time.perf_counter()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        # checkpoint time is not training time; the clock restarts on the next batch
        self._pause()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._pause()

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return _batch_size(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    return 0


def quiet_lightning() -> None:
    """Drop Lightning's start-up chatter (GPU/TPU availability, tips)."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # invlab resumes mid-epoch itself (see resume_position): Lightning's warning does not apply
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def make_trainer(
    cfg: Config,
    run: RunDir,
    extra_callbacks: list[Callback] | None = None,
    resume_step: int | None = None,
    progress: bool = True,
) -> L.Trainer:
    t = cfg.trainer
    callbacks: list[Callback] = [
        RunCheckpoint(run.checkpoints, t.checkpoint_every_n_steps), StepSeeder(cfg.seed), *(extra_callbacks or [])
    ]
    try:
        return L.Trainer(
            max_epochs=t.max_epochs,
            accelerator=t.accelerator,
            devices=t.devices,
            num_nodes=t.num_nodes,
            strategy=t.strategy,
            precision=t.precision,
            sync_batchnorm=t.sync_batchnorm,
            logger=RunCSVLogger(str(run.path), resume_step),
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(run.path),
            log_every_n_steps=t.log_every_n_steps,
            check_val_every_n_epoch=t.check_val_every_n_epoch,
            gradient_clip_val=t.gradient_clip_val,
            deterministic=t.deterministic,
            limit_train_batches=t.limit_train_batches,
            enable_progress_bar=t.enable_progress_bar and progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            benchmark=False,
        )
    except (ValueError, TypeError) as err:  # Lightning's own checks of devices/strategy/precision
        raise ConfigError(f"recipe section 'trainer': {err}") from None


def resume_position(checkpoint: dict[str, Any]) -> tuple[int, int, int]:
    """``(global_step, epoch, batches done in that epoch)`` of a Lightning checkpoint."""
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    epoch = int(loops.get("epoch_progress", {}).get("current", {}).get("processed", checkpoint.get("epoch", 0)))
    batches = int(loops.get("epoch_loop.batch_progress", {}).get("current", {}).get("ready", 0))
    done = int(loops.get("epoch_loop.batch_progress", {}).get("current", {}).get("completed", 0))
    # a checkpoint written at the end of a batch has ready == completed + 1 (Lightning
    # completes the batch after the hooks): the batch itself is done either way
    return int(checkpoint.get("global_step", 0)), epoch, max(batches, done)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of a save that a crash interrupted (the target is intact)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)


def pretrain(
    cfg: Config,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Pretrain per ``cfg`` into run folder ``out`` (or continue it with ``resume``).

    ``callbacks`` are added to the trainer's; a :class:`TrainingClock` among them is used
    for the summary's timings. Returns the summary written to ``out/summary.json``.
    """
    quiet_lightning()
    run = RunDir(out)
    if resume:
        run.check_compatible()
        run.lock()
        cfg = run.load_config()
        if not run.last_checkpoint.is_file():
            raise RunError(f"{run.path}: no checkpoints/last.ckpt to resume from")
    else:
        run.create(cfg, command)
    try:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        callbacks = list(callbacks or [])
        clock = next((c for c in callbacks if isinstance(c, TrainingClock)), None)
        if clock is None:
            clock = TrainingClock()
            callbacks.insert(0, clock)
        resume_step = position = None
        if resume:
            from invlab.runs.checkpoint import safe_torch_load

            _remove_stale_temporaries(run.checkpoints)
            resume_step, *position = resume_position(safe_torch_load(run.last_checkpoint))
        trainer = make_trainer(cfg, run, callbacks, resume_step, progress)
        world = trainer.world_size
        if cfg.data.batch_size % world or cfg.data.batch_size < world:
            raise ConfigError(
                f"recipe key 'data.batch_size' ({cfg.data.batch_size}) must be a positive multiple of the "
                f"{world} processes the trainer started"
            )
        parts = cfg.modality.setup(cfg, world, progress)
        if position is not None and hasattr(parts.datamodule, "resume_at"):
            parts.datamodule.resume_at(position[0], position[1], world)
        t0 = time.perf_counter()
        trainer.fit(parts.method, datamodule=parts.datamodule, ckpt_path=str(run.last_checkpoint) if resume else None)
        wall = time.perf_counter() - t0
        summary: dict[str, Any] = {}
        if trainer.is_global_zero:
            parts.export(run.path)
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
            previous = run.read_summary()
            summary = {
                "method": cfg.method,
                "epochs": trainer.current_epoch,
                "global_step": trainer.global_step,
                "metrics": metrics,
                "train_seconds": clock.train_seconds + previous.get("train_seconds", 0.0) * resume,
                "wall_seconds": wall + previous.get("wall_seconds", 0.0) * resume,
                "train_samples_per_s": clock.samples_per_s,
                **parts.info,
                "resumed": bool(resume) or previous.get("resumed", False),
            }
            run.write_summary(summary)
        return summary
    finally:
        run.unlock()
