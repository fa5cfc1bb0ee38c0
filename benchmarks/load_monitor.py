"""Samples the machine's 1-minute load average in a background thread, so benchmark
results can say how contended the CPUs were while they ran."""

from __future__ import annotations

import os
import statistics
import threading


class LoadMonitor:
    def __init__(self, every_s: float = 15.0):
        self.every_s, self.samples = every_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        s = self.samples or [os.getloadavg()[0]]
        return {"cpus": os.cpu_count(), "load_avg_1min_mean": round(statistics.mean(s), 2),
                "load_avg_1min_max": round(max(s), 2), "samples": len(s),
                "note": "load average above the CPU count means other processes shared the cores (timings contended)"}
