"""Run folders: resolved config, checkpoints, metrics, summary, exported encoder, a lock.

    RUN/
      config.yaml          the resolved recipe (every default written out)
      run.json             invlab/torch/lightning/python versions, git revision, seed, command
      checkpoints/last.ckpt
      metrics.csv          Lightning's CSV log
      summary.json         final metrics and timings
      encoder.safetensors  + encoder.json
      .lock                held while a process writes to the folder
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

import invlab
from invlab.errors import RunError
from invlab.runs.checkpoint import atomic_write_bytes, read_json_object
from invlab.runs.config import Config, config_from_dict, dump_config, yaml_load
from invlab.runs.encoders import find_run_root

__all__ = ["RUN_FORMAT", "RunDir", "git_revision"]

RUN_FORMAT = 1


def git_revision(cwd: Path | None = None) -> str | None:
    """The git revision of the invlab checkout (or of ``cwd``), if any."""
    here = cwd or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_fd: int | None = None

    config_path = property(lambda self: self.path / "config.yaml")
    checkpoints = property(lambda self: self.path / "checkpoints")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.ckpt")
    summary_path = property(lambda self: self.path / "summary.json")
    meta_path = property(lambda self: self.path / "run.json")

    @classmethod
    def find(cls, path: str | os.PathLike) -> RunDir | None:
        """The run folder containing ``path`` (a folder or a file inside it)."""
        root = find_run_root(path)
        return cls(root) if root is not None else None

    # -- creation and checks ------------------------------------------------------------
    def create(self, cfg: Config, command: list[str] | None = None) -> RunDir:
        if self.path.exists() and any(self.path.iterdir()):
            raise RunError(
                f"run folder {self.path} already exists and is not empty; pick another --out, "
                f"or continue it with `invlab pretrain --resume {self.path}`"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        atomic_write_bytes(self.config_path, dump_config(cfg).encode())
        meta = {
            "format": "invlab-run",
            "format_version": RUN_FORMAT,
            "invlab_version": invlab.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seed": cfg.seed,
            "command": command or sys.argv,
            "git_revision": git_revision(),
            "versions": _versions(),
            "host": platform.node(),
        }
        atomic_write_bytes(self.meta_path, json.dumps(meta, indent=2).encode())
        return self

    def check_compatible(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a run folder (no config.yaml)")
        if not self.meta_path.is_file():
            raise RunError(f"{self.path}: run.json is missing; this folder was not written by invlab")
        meta = read_json_object(self.meta_path, "the run's metadata (run.json)", RunError)
        try:
            version = int(meta.get("format_version", -1))
        except (TypeError, ValueError):
            version = None
        if meta.get("format") != "invlab-run" or version != RUN_FORMAT:
            raise RunError(
                f"{self.path}: run folder format {meta.get('format_version')} from invlab "
                f"{meta.get('invlab_version')} is not compatible with this invlab {invlab.__version__} "
                f"(format {RUN_FORMAT}); start a new run, or use that invlab version to resume"
            )
        return meta

    def load_config(self) -> Config:
        try:
            data = yaml_load(self.config_path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise RunError(f"{self.config_path}: cannot read the run's config ({err})") from None
        return config_from_dict(data or {})

    # -- lock -------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold ``.lock`` for the life of this process (released by the OS on exit,
        including SIGKILL). A second writer is refused."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = (self.path / ".lock").read_text().strip() or "another process"
            raise RunError(f"run folder {self.path} is in use by {holder}; wait for it or pick another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {platform.node()}".encode())
        self._lock_fd = fd

    def discard(self) -> None:
        """Remove a run folder that :meth:`create` made and nothing has trained into yet.
        ``create`` only accepts an absent or empty folder, so everything in it is ours."""
        if self.last_checkpoint.is_file():
            raise RunError(f"{self.path}: refusing to discard a run folder that holds a checkpoint")
        shutil.rmtree(self.path, ignore_errors=True)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- outputs ------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_bytes(self.summary_path, json.dumps(summary, indent=2, default=float).encode())

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.is_file():
            return {}
        return read_json_object(self.summary_path, "the run's summary (summary.json)", RunError)


def _versions() -> dict[str, str]:
    import lightning
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "lightning": lightning.__version__}
    try:
        import kornia

        out["kornia"] = kornia.__version__
    except ImportError:  # pragma: no cover
        pass
    return out
