"""The interleaving schedule and the paired statistics of the throughput benchmarks."""

import importlib.util
import math
from collections import Counter
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "throughput_schedule.py"
_spec = importlib.util.spec_from_file_location("throughput_schedule", _PATH)
ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ts)


def test_every_arm_once_per_round_in_rotating_order():
    plan = ts.interleaved_schedule(["invlab", "raw", "lightly"], 4)
    assert len(plan) == 12
    for r in range(4):
        arms = [a for rr, a in plan if rr == r]
        assert sorted(arms) == ["invlab", "lightly", "raw"]
    rounds = [[a for rr, a in plan if rr == r] for r in range(4)]
    assert rounds[0] == ["invlab", "raw", "lightly"]
    assert rounds[1] == ["raw", "lightly", "invlab"]
    assert rounds[2] == ["lightly", "invlab", "raw"]
    assert rounds[3] == rounds[0]


def test_each_arm_takes_every_place_equally_often_over_a_full_rotation():
    arms = ["a", "b", "c", "d"]
    plan = ts.interleaved_schedule(arms, 8)
    places = Counter((i % 4, a) for i, (_, a) in enumerate(plan))
    assert set(places.values()) == {2}
    assert len(places) == 16


@pytest.mark.parametrize("arms, rounds", [([], 3), (["a", "a"], 2), (["a"], 0)])
def test_bad_schedules_are_refused(arms, rounds):
    with pytest.raises(ValueError):
        ts.interleaved_schedule(arms, rounds)


def test_paired_ratio_is_taken_within_rounds():
    # the machine halves its speed in round 2: both arms slow down alike
    a, b = [100.0, 50.0, 100.0], [80.0, 40.0, 80.0]
    p = ts.paired_ratio(a, b)
    assert p["round_ratios"] == pytest.approx([1.25, 1.25, 1.25])
    assert p["median_of_round_ratios"] == pytest.approx(1.25)
    assert p["mean_of_round_ratios"] == pytest.approx(1.25)
    assert p["ratio_of_medians"] == pytest.approx(1.25)
    # drift that hits one arm's round only: the median of ratios ignores the outlier round
    p = ts.paired_ratio([100.0, 100.0, 100.0, 100.0, 30.0], [100.0] * 5)
    assert p["median_of_round_ratios"] == pytest.approx(1.0)
    assert p["mean_of_round_ratios"] == pytest.approx(0.86)
    with pytest.raises(ValueError):
        ts.paired_ratio([1.0], [1.0, 2.0])


def test_rate_summary():
    s = ts.rate_summary([3.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["mean"], s["min"], s["max"], s["rounds"]) == (2.5, 4.0, 1.0, 10.0, 4)
    assert math.isnan(ts.rate_summary([])["median"])
