"""Finding sentences follow the numbers: direction, amount, intervals."""

from __future__ import annotations

import math

import pytest

from invlab.report import Estimate, compare, lowest, proportion_interval, separated


def test_compare_says_which_is_lower_by_how_much_and_whether_intervals_separate():
    a, b = Estimate(0.16, 0.15, 0.17), Estimate(0.32, 0.29, 0.35)
    text, sign = compare("supervised", a, "random init", b)
    assert sign == -1
    assert text == ("supervised 0.16 [0.15, 0.17] vs random init 0.32 [0.29, 0.35]: lower by 0.16, "
                    "the intervals do not overlap")
    text, sign = compare("random init", b, "supervised", a)
    assert sign == 1 and "higher by 0.16" in text
    text, sign = compare("x", Estimate(0.30, 0.2, 0.4), "y", Estimate(0.35, 0.3, 0.5))
    assert sign == 0 and "lower by 0.05, but the intervals overlap (not a clear difference)" in text
    assert compare("x", Estimate(0.5), "y", Estimate(0.5))[1] == 0
    assert "equal to 2 decimals" in compare("x", Estimate(0.501), "y", Estimate(0.499))[0]
    assert compare("x", Estimate(math.nan), "y", Estimate(0.1))[1] == 0
    assert "no interval" in compare("x", Estimate(0.2), "y", Estimate(0.5))[0]


def test_lowest_names_the_lowest_and_its_margin():
    key, text = lowest({"a": Estimate(0.3, 0.2, 0.4), "b": Estimate(0.1, 0.05, 0.15), "c": Estimate(0.9)})
    assert key == "b" and text == "b 0.10 [0.05, 0.15], 0.20 below a 0.30 [0.20, 0.40] (separated)"
    key, text = lowest({"a": Estimate(0.3, 0.2, 0.4), "b": Estimate(0.25, 0.2, 0.3)})
    assert key == "b" and "0.05 below a" in text and "intervals overlap" in text
    assert "tie" in lowest({"a": Estimate(0.3), "b": Estimate(0.3)})[1]


def test_separated_and_wilson_interval():
    assert separated(Estimate(0.1, 0.0, 0.2), Estimate(0.5, 0.3, 0.6))
    assert not separated(Estimate(0.1, 0.0, 0.4), Estimate(0.5, 0.3, 0.6))
    assert not separated(Estimate(0.1), Estimate(0.5, 0.3, 0.6))
    low, high = proportion_interval(0.5, 500)
    assert low == pytest.approx(0.4563, abs=1e-4) and high == pytest.approx(0.5437, abs=1e-4)
    assert proportion_interval(1.0, 10)[1] == 1.0 and proportion_interval(0.0, 10)[0] == 0.0
