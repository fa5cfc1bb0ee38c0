"""Shared helpers for tests that run `invlab pretrain` in child processes: the environment
they need, a run killed with SIGKILL right after a given checkpoint reaches the disk (one
process or a whole multi-process job), per-rank records of what each training step saw,
and comparisons of run folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

__all__ = ["child_env", "python", "cli", "run_recorded", "read_records", "same_files", "same_weights", "weights"]

# `invlab pretrain` through the Python API with two test hooks:
#   argv: RECIPE OUT KILL_STEP RECORD_DIR OVERRIDES...
# - KILL_STEP >= 0: right after the checkpoint of that global step has been written, the
#   whole process group (every rank Lightning started) gets SIGKILL: the worst moment,
#   whatever is logged after the save is lost, as when a job is killed;
# - RECORD_DIR != "-": each rank writes RECORD_DIR/rank<R>.json, one row per training step:
#   epoch, batch_idx, global step, the step's loss and the sample indices it read.
# A script file, not `python -c`: Lightning starts the other ranks by running it again.
_SCRIPT = """
import json, os, signal, sys
from pathlib import Path
from lightning.pytorch.callbacks import Callback
from invlab.runs import checkpoint
from invlab.runs.config import load_recipe
from invlab.runs.pretrain_run import pretrain

recipe, out, kill_step, record = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
save = checkpoint.AtomicCheckpointIO.save_checkpoint

def save_then_die(self, state, path, storage_options=None):
    save(self, state, path, storage_options)
    if state["global_step"] == kill_step:
        os.killpg(os.getpgid(0), signal.SIGKILL)

checkpoint.AtomicCheckpointIO.save_checkpoint = save_then_die


class Record(Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({"epoch": trainer.current_epoch, "batch": batch_idx, "step": trainer.global_step,
                          "loss": float(outputs["loss"]), "index": batch["index"].tolist()})

    def on_train_end(self, trainer, pl_module):
        Path(record).mkdir(parents=True, exist_ok=True)
        (Path(record) / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))


pretrain(load_recipe(recipe, sys.argv[5:]), out, progress=False, callbacks=[Record()] if record != "-" else None)
"""


def child_env() -> dict[str, str]:
    """This test process's environment for a child: our sources first, one thread each."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def python(*args: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` in a new session (so a kill of its process group spares pytest)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=child_env(),
                          cwd=cwd, start_new_session=True)


def cli(*args: str, cwd, timeout: float = 300) -> subprocess.CompletedProcess:
    """``invlab ARGS`` in a child process."""
    return python("-m", "invlab.cli.main", *args, cwd=cwd, timeout=timeout)


def run_recorded(recipe: str, out: Path, overrides: list[str], *, kill_step: int = -1, record: Path | None = None,
                 cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """A fresh run of ``recipe`` into ``out``; ``kill_step >= 0`` kills the job right after
    the checkpoint of that step is saved (then the return code is ``-SIGKILL``);
    ``record``: per-rank step records (:func:`read_records`)."""
    script = Path(cwd) / "_recorded_pretrain.py"
    script.write_text(_SCRIPT)
    proc = python(str(script), recipe, str(out), str(kill_step), str(record) if record else "-", *overrides,
                  cwd=cwd, timeout=timeout)
    if kill_step >= 0:
        assert proc.returncode == -signal.SIGKILL, f"not killed ({proc.returncode}): {proc.stderr[-3000:]}"
    else:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def read_records(record: Path) -> dict[int, list[dict]]:
    """``{rank: [row per training step]}`` written by :func:`run_recorded`."""
    return {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(Path(record).glob("rank*.json"))}


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(run) / "encoder.safetensors"))


def same_weights(a: Path, b: Path) -> None:
    """The exported encoders of runs ``a`` and ``b`` are bitwise equal."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


def same_files(a: Path, b: Path, pattern: str) -> None:
    """Files matching ``pattern`` exist in both folders, with the same names and bytes."""
    names = sorted(p.relative_to(a) for p in a.glob(pattern))
    assert names and names == sorted(p.relative_to(b) for p in b.glob(pattern)), pattern
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs"


def sigkill_when_checkpointed(command: list[str], out: Path, at_step, timeout: float = 300) -> None:
    """Start ``command`` (a training run writing to ``out``), poll its ``last.ckpt`` and
    SIGKILL the process as soon as the checkpointed global step satisfies ``at_step``; fails
    if the run ends first."""
    import time

    from invlab.runs.checkpoint import safe_torch_load

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if ckpt.exists():
                try:
                    step = int(safe_torch_load(ckpt)["global_step"])
                except Exception:  # being replaced right now
                    continue
                if at_step(step):
                    break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
