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

__all__ = ["TrainingClock", "make_trainer", "pretrain", "quiet_lightning"]


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
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def make_trainer(
    cfg: Config,
    run: RunDir,
    extra_callbacks: list[Callback] | None = None,
    resume_step: int | None = None,
    progress: bool = True,
) -> L.Trainer:
    t = cfg.trainer
    ckpt = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="epoch{epoch:03d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=0,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
    )
    callbacks: list[Callback] = [ckpt, *(extra_callbacks or [])]
    if t.checkpoint_every_n_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath=run.checkpoints, filename="step{step:07d}", auto_insert_metric_name=False,
                save_last=True, save_top_k=0, every_n_train_steps=t.checkpoint_every_n_steps,
            )
        )
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
        resume_step = None
        if resume:
            from invlab.runs.checkpoint import safe_torch_load

            resume_step = int(safe_torch_load(run.last_checkpoint).get("global_step", 0))
        trainer = make_trainer(cfg, run, callbacks, resume_step, progress)
        world = trainer.world_size
        if cfg.data.batch_size % world or cfg.data.batch_size < world:
            raise ConfigError(
                f"recipe key 'data.batch_size' ({cfg.data.batch_size}) must be a positive multiple of the "
                f"{world} processes the trainer started"
            )
        parts = cfg.modality.setup(cfg, world, progress)
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
