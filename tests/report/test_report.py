"""Report writing: markdown tables and PNG plots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from invlab.report import image_grid, invariance_bars, markdown_table, matrix_heatmap, mean_spread


def test_markdown_table_formats_numbers_and_escapes_pipes():
    text = markdown_table(["a", "b"], [["x|y", 0.12345], [1, math.nan]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 0.123 |", "| 1 | n/a |"]
    with pytest.raises(ValueError, match="2 columns"):
        markdown_table(["a", "b"], [[1]])


def test_mean_spread():
    assert mean_spread([0.5, 0.6, 0.7]) == "0.600 ± 0.100"
    assert mean_spread([0.5]) == "0.500"
    assert mean_spread([]) == "n/a"


def test_plots_are_png_files(tmp_path):
    for path in (
        invariance_bars({"layer1": {"rotate": 0.3, "hue": 0.6}, "output": {"rotate": 0.1}}, tmp_path / "a.png",
                        {"layer1": {"rotate": (0.25, 0.35)}}),
        matrix_heatmap([[0.9, math.nan], [0.4, 0.5]], ["same", "disjoint"], ["t1", "t2"], tmp_path / "b.png"),
        image_grid(np.random.rand(2, 3, 1, 8, 8), tmp_path / "c.png", ["x", "y"]),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))
