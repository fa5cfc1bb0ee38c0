"""A CSV metrics log that survives resumption.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts. A resumed run
must keep the rows logged before its checkpoint and drop those logged after it (they
will be logged again), so the final file equals an uninterrupted run's.
"""

from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

__all__ = ["RunCSVLogger"]


class _KeepingWriter(_ExperimentWriter):
    def __init__(self, log_dir: str, keep_until_step: int | None) -> None:
        self._keep_until_step = keep_until_step
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = self.metrics_file_path
        if not os.path.isfile(path):
            return
        if self._keep_until_step is None:
            os.remove(path)
            return
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            keys = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("step") not in (None, "") and int(r["step"]) < self._keep_until_step]
        tmp = path + ".tmp"
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
        self.metrics_keys = sorted(keys)


class RunCSVLogger(CSVLogger):
    """``RUN/metrics.csv``; with ``resume_step``, rows before that step are kept."""

    def __init__(self, run_dir: str, resume_step: int | None = None) -> None:
        super().__init__(save_dir=run_dir, name="", version="")
        self._resume_step = resume_step

    @property
    @rank_zero_experiment  # other ranks write nothing into the run folder
    def experiment(self) -> _ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self._resume_step)
        return self._experiment
