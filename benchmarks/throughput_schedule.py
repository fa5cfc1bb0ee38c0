"""Interleaving and summary statistics shared by the throughput benchmarks
(benchmarks/peer_throughput.py, benchmarks/gpu_throughput.sh). Standard library only, so
both the invlab venv and the peers venv can import it.

Arms (invlab, raw model, lightly, ...) run in blocks of steps, alternating inside every
round, so slow drift of a shared machine's speed hits every arm alike; the order inside a
round rotates, so no arm always runs right after the same neighbour.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

__all__ = ["interleaved_schedule", "rate_summary", "paired_ratio"]


def interleaved_schedule(arms: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """``(round, arm)`` in run order: every arm once per round, round ``r`` in the order of
    ``arms`` rotated left by ``r``: over ``len(arms)`` rounds each arm takes every place
    in a round equally often (first, right after a switch, ...)."""
    arms = list(arms)
    if not arms or len(set(arms)) != len(arms):
        raise ValueError(f"arms must be distinct and non-empty, got {arms}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    plan = []
    for r in range(rounds):
        k = r % len(arms)
        plan.extend((r, arm) for arm in arms[k:] + arms[:k])
    return plan


def rate_summary(rates: Sequence[float]) -> dict[str, float]:
    """Median, mean, spread of per-round rates (samples/s); rounds where the arm failed
    (NaN) are left out."""
    rates = [float(x) for x in rates if math.isfinite(x)]
    if not rates:
        return {"median": math.nan, "mean": math.nan, "min": math.nan, "max": math.nan, "stdev": math.nan, "rounds": 0}
    return {
        "median": statistics.median(rates),
        "mean": statistics.fmean(rates),
        "min": min(rates),
        "max": max(rates),
        "stdev": statistics.stdev(rates) if len(rates) > 1 else 0.0,
        "rounds": len(rates),
    }


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> dict[str, float]:
    """Ratio of two arms' rates paired by round (the same stretch of machine time), as the
    median and mean of the per-round ratios; also the ratio of the median rates. Rounds
    where either arm failed (NaN) are left out."""
    if len(numerator) != len(denominator):
        raise ValueError(f"paired rates need the same rounds, got {len(numerator)} and {len(denominator)}")
    kept = [(a, b) for a, b in zip(numerator, denominator) if math.isfinite(a) and math.isfinite(b) and b > 0]
    if not kept:
        return {"median_of_round_ratios": math.nan, "mean_of_round_ratios": math.nan, "ratio_of_medians": math.nan,
                "round_ratios": []}
    pairs = [a / b for a, b in kept]
    return {
        "median_of_round_ratios": statistics.median(pairs),
        "mean_of_round_ratios": statistics.fmean(pairs),
        "ratio_of_medians": statistics.median([a for a, _ in kept]) / statistics.median([b for _, b in kept]),
        "round_ratios": pairs,
    }
