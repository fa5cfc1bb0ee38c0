"""Finding sentences computed from the numbers they summarise.

A report states a finding ("SimCLR is more invariant to hue than the untrained network")
only through these helpers, so the sentence always says what the table says: which
value is lower, by how much, with the intervals, and whether the intervals separate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Estimate", "compare", "lowest", "proportion_interval", "separated"]


@dataclass(frozen=True)
class Estimate:
    """A value with an optional interval ``[low, high]`` (e.g. a bootstrap 95% CI)."""

    value: float
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, value: float, interval: Sequence[float] | None = None) -> Estimate:
        if interval is None:
            return cls(float(value))
        low, high = interval
        return cls(float(value), float(low), float(high))

    def text(self, digits: int = 2) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def separated(a: Estimate, b: Estimate) -> bool:
    """Whether the intervals of ``a`` and ``b`` do not overlap (both need intervals)."""
    if None in (a.low, a.high, b.low, b.high):
        return False
    return a.high < b.low or b.high < a.low


def compare(subject: str, a: Estimate, reference: str, b: Estimate, *, digits: int = 2,
            lower: str = "lower", higher: str = "higher") -> tuple[str, int]:
    """One sentence comparing ``a`` (of ``subject``) with ``b`` (of ``reference``), and the
    direction: ``-1`` when ``a`` is lower with separated intervals, ``+1`` higher and
    separated, ``0`` when the intervals overlap (or the values are equal / not finite).

    ``lower`` / ``higher`` name what a lower / higher value means (e.g. "more invariant").
    """
    if not (math.isfinite(a.value) and math.isfinite(b.value)):
        return f"{subject} {a.text(digits)} vs {reference} {b.text(digits)}: not comparable (not finite)", 0
    diff = a.value - b.value
    both = f"{subject} {a.text(digits)} vs {reference} {b.text(digits)}"
    if round(diff, digits) == 0:
        return f"{both}: equal to {digits} decimals", 0
    word = lower if diff < 0 else higher
    amount = f"{abs(diff):.{digits}f}"
    if separated(a, b):
        return f"{both}: {word} by {amount}, the intervals do not overlap", -1 if diff < 0 else 1
    if a.low is None or b.low is None:
        return f"{both}: {word} by {amount} (no interval)", 0
    return f"{both}: {word} by {amount}, but the intervals overlap (not a clear difference)", 0


def lowest(values: Mapping[str, Estimate], digits: int = 2) -> tuple[str, str]:
    """The key with the lowest value and a sentence saying by how much it is below the
    next lowest (and whether their intervals separate)."""
    finite = {k: v for k, v in values.items() if math.isfinite(v.value)}
    if not finite:
        return "", "no finite values"
    order = sorted(finite, key=lambda k: finite[k].value)
    best = order[0]
    if len(order) == 1:
        return best, f"{best} {finite[best].text(digits)} (the only value)"
    runner = order[1]
    gap = finite[runner].value - finite[best].value
    if round(gap, digits) == 0:
        return best, (f"{best} and {runner} tie at {finite[best].value:.{digits}f} "
                      f"({best} {finite[best].text(digits)}, {runner} {finite[runner].text(digits)})")
    sep = "separated" if separated(finite[best], finite[runner]) else "intervals overlap"
    return best, (f"{best} {finite[best].text(digits)}, {gap:.{digits}f} below {runner} "
                  f"{finite[runner].text(digits)} ({sep})")


def proportion_interval(fraction: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% by default) of a proportion measured on ``n`` items
    (e.g. a test accuracy)."""
    if n <= 0 or not math.isfinite(fraction):
        return float("nan"), float("nan")
    centre = (fraction + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
