"""Pretraining: recipe -> run folder, through Lightning's Trainer."""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from invlab.errors import ConfigError, DivergenceError, RunError
from invlab.methods.registry import METHODS
from invlab.nn.global_batchnorm import convert_to_global_batchnorm
from invlab.runs.checkpoint import AtomicCheckpointIO, safe_torch_load
from invlab.runs.config import Config
from invlab.runs.loggers import build_loggers
from invlab.runs.monitors import InvarianceMonitor, monitor_spec
from invlab.runs.run_dir import RunDir
from invlab.seeding import bounded_seed, derive_seed

__all__ = [
    "RunCheckpoint", "StepSeeder", "TrainingClock", "compile_encoder", "make_trainer", "pretrain", "quiet_lightning",
    "resume_position", "sync_batchnorm",
]


class RunCheckpoint(Callback):
    """Writes ``checkpoints/last.ckpt`` (atomically, through the trainer's checkpoint I/O) at
    the end of every epoch and, optionally, every ``every_n_steps`` training steps: one
    file, always the newest state, never written twice for the same step.

    The state is taken where it always was (a step's ``on_train_batch_end``, an epoch's
    ``on_train_epoch_end``) but written to disk at the next hook (the next batch's or
    epoch's start, or the end of training): Lightning writes a step's or an epoch's metrics
    row only after those hooks, so a process killed right after a save would otherwise
    lose that row for good (the resumed run starts after it). Nothing changes the model,
    optimiser or loop state in between.
    """

    def __init__(self, dirpath: Path, every_n_steps: int | None = None) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = int(every_n_steps or 0)
        self._saved_step = -1
        self._pending: dict[str, Any] | None = None

    def _take(self, trainer) -> None:
        if trainer.global_step != self._saved_step and not trainer.sanity_checking:
            # what Trainer.save_checkpoint does, split in two (no public API for the halves)
            self._pending = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            self._saved_step = trainer.global_step

    def _write(self, trainer) -> None:
        if self._pending is not None:
            checkpoint, self._pending = self._pending, None
            trainer.strategy.save_checkpoint(checkpoint, self.path)
            trainer.strategy.barrier("RunCheckpoint")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._take(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._take(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._write(trainer)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._write(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer)


class StepSeeder(Callback):
    """Seeds torch's global RNG at every training step from ``(seed, rank, epoch, batch)``.

    Dropout, random masks and any other draw from the global generator become a pure
    function of where the run is, so a run resumed from any checkpoint continues exactly as
    an uninterrupted one would, with no RNG state to save.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.manual_seed(derive_seed("global", self.seed, trainer.global_rank, trainer.current_epoch, batch_idx))


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
    # a data module returns no validation loaders when no monitor needs them: that is intended
    warnings.filterwarnings("ignore", message=".*Total length of `list` across ranks is zero.*")
    # tiny data sets (a few batches per epoch) still log every epoch's means
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    # SSLMethod.on_before_batch_transfer (a host-side flag) is meant to apply with any data module
    warnings.filterwarnings("ignore", message=".*overridden `on_before_batch_transfer`.*")


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
            sync_batchnorm=False,  # invlab's GlobalBatchNorm instead (torch's SyncBatchNorm is CUDA-only)
            use_distributed_sampler=False,  # invlab shards its data itself (invlab.data.sharding)
            logger=build_loggers(t.loggers, run.path, resume_step),
            callbacks=callbacks,
            plugins=[AtomicCheckpointIO()],
            enable_checkpointing=False,  # RunCheckpoint writes checkpoints/last.ckpt
            default_root_dir=str(run.path),
            log_every_n_steps=t.log_every_n_steps,
            check_val_every_n_epoch=t.check_val_every_n_epoch,
            gradient_clip_val=t.gradient_clip_val,
            deterministic=t.deterministic,
            limit_train_batches=t.limit_train_batches,
            enable_progress_bar=t.enable_progress_bar and progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            benchmark=not t.deterministic,  # cuDNN picks the fastest kernels (fixed input sizes)
        )
    except (ValueError, TypeError) as err:  # Lightning's own checks of devices/strategy/precision
        raise ConfigError(f"recipe section 'trainer': {err}") from None


def sync_batchnorm(cfg: Config) -> bool:
    """``trainer.sync_batchnorm`` if the recipe sets it, else the method's default
    (``MethodSpec.sync_batchnorm``: on for the methods whose papers synchronise BatchNorm
    statistics across devices). With more than one process, every BatchNorm of the method
    becomes a :class:`~invlab.nn.global_batchnorm.GlobalBatchNorm` (any device)."""
    t = cfg.trainer.sync_batchnorm
    return METHODS[cfg.method].sync_batchnorm if t is None else bool(t)


def compile_encoder(method: torch.nn.Module, mode: str = "default", **options: Any) -> torch.nn.Module:
    """Compile the method's encoder in place with ``torch.compile`` (``nn.Module.compile``:
    the parameters, the state-dict keys and so checkpoints and exports are unchanged).
    ``options`` pass on to ``torch.compile`` (``backend=...``). Returns the compiled module."""
    module = getattr(method, "encoder", None)
    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"recipe key 'trainer.compile': {type(method).__name__} has no encoder module to compile")
    module.compile(mode=None if mode == "default" else mode, **options)
    return module


def launch_rank() -> int:
    """This process's global rank as set by the launcher (torchrun, SLURM, or Lightning's
    own subprocess launcher, which gives its children LOCAL_RANK and NODE_RANK); 0 when
    the process was started by hand."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))
    return local + node * 1000  # only "is it 0" matters here


def resume_position(checkpoint: dict[str, Any]) -> tuple[int, int, int]:
    """``(global_step, epoch, batches done in that epoch)`` of a Lightning checkpoint."""
    loops = checkpoint.get("loops", {}).get("fit_loop", {})
    epochs = loops.get("epoch_progress", {}).get("current", {})
    batches = loops.get("epoch_loop.batch_progress", {}).get("current", {})
    processed, started = int(epochs.get("processed", 0)), int(epochs.get("started", 0))
    step = int(checkpoint.get("global_step", 0))
    if processed >= started:  # written at an epoch's end: the next epoch starts afresh
        return step, processed, 0
    # written after a batch: Lightning marks it completed only after the hooks ran, so
    # `ready` counts the batches done
    return step, processed, max(int(batches.get("ready", 0)), int(batches.get("completed", 0)))


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files of a save that a crash interrupted (the target is intact)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)


def _previous_summary(run: RunDir) -> dict[str, Any]:
    """The summary of the run being resumed (its timings carry over), checked."""
    previous = run.read_summary()
    for key in ("train_seconds", "wall_seconds"):
        value = previous.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RunError(f"{run.summary_path}: '{key}' must be a number, found {value!r}; the file was edited by hand")
    return previous


def pretrain(
    cfg: Config | None,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    callbacks: list[Callback] | None = None,
) -> dict[str, Any]:
    """Pretrain per ``cfg`` into run folder ``out``, or, with ``resume``, continue the run
    in ``out`` from its last checkpoint with its recorded config (``cfg`` is then ignored).

    ``callbacks`` are added to the trainer's; a :class:`TrainingClock` among them is used
    for the summary's timings. Returns the summary written to ``out/summary.json``.
    """
    quiet_lightning()
    run = RunDir(out)
    primary = launch_rank() == 0
    if not primary:
        # a process started by a distributed launcher: rank 0 owns (creates, locks, writes)
        # the folder; this one writes nothing there, so on another node it needs no shared
        # file system: a fresh run takes its config from the same command line as rank 0,
        # a resumed one reads the run's config (and every rank the checkpoint)
        if resume:
            run.check_compatible()
            cfg = run.load_config()
        elif cfg is None:
            raise RunError("pretrain needs a config for a fresh run")
    elif resume:
        run.check_compatible()
        run.lock()
        cfg = run.load_config()
        if not run.last_checkpoint.is_file():
            raise RunError(f"{run.path}: no checkpoints/last.ckpt to resume from")
    else:
        run.create(cfg, command)
    fresh = primary and not resume
    training = False
    try:
        # read before training, so a broken summary.json stops the resume at once, not after it
        previous = _previous_summary(run) if resume and primary else {}
        # Lightning accepts only 32-bit seeds; this seeds model initialisation
        L.seed_everything(bounded_seed(derive_seed("init", cfg.seed)), workers=True, verbose=False)
        callbacks = list(callbacks or [])
        clock = next((c for c in callbacks if isinstance(c, TrainingClock)), None)
        if clock is None:
            clock = TrainingClock()
            callbacks.insert(0, clock)
        spec = monitor_spec(cfg.trainer.invariance_monitor)
        if spec is not None:
            from invlab.runs.image import measurement_data

            callbacks.append(InvarianceMonitor(measurement_data(cfg, "test", progress), spec, run.path))
        resume_step = position = None
        if resume:
            if primary:
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
        if world > 1 and sync_batchnorm(cfg):
            convert_to_global_batchnorm(parts.method)
        if str(cfg.trainer.precision).startswith("64"):
            # Lightning restores a checkpoint's weights before its precision plugin converts the
            # module: a float32 module would round the float64 weights and the resume would not be exact
            parts.method.double()
        if cfg.trainer.compile:
            compile_encoder(parts.method, cfg.trainer.compile_mode)
        if position is not None and hasattr(parts.datamodule, "resume_at"):
            parts.datamodule.resume_at(position[0], position[1], world)
        t0 = time.perf_counter()
        training = True
        try:
            trainer.fit(parts.method, datamodule=parts.datamodule,
                        ckpt_path=str(run.last_checkpoint) if resume else None)
        except DivergenceError as err:
            if run.last_checkpoint.is_file():
                step = safe_torch_load(run.last_checkpoint).get("global_step")
                kept = f"the last good state is kept in {run.last_checkpoint} (step {step})"
            else:
                kept = "no checkpoint had been written yet"
            raise DivergenceError(f"{err}; {kept}") from None
        wall = time.perf_counter() - t0
        summary: dict[str, Any] = {}
        if trainer.is_global_zero:
            parts.export(run.path)
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
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
    except BaseException:
        if fresh and not training:
            # refused before any training (bad data, impossible trainer set-up): leave no folder
            # behind, so the same command works once the input is fixed
            run.unlock()
            run.discard()
        raise
    finally:
        run.unlock()
