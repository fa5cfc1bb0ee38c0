"""Reports: markdown tables and PNG plots from plain numbers.

This layer imports no other invlab layer (only numpy and matplotlib's object API, no
global pyplot state), so the run machinery, the CLI and user code can all use it.
"""

from invlab.report.findings import Estimate, compare, lowest, proportion_interval, separated
from invlab.report.plots import image_grid, invariance_bars, matrix_heatmap
from invlab.report.tables import markdown_table, mean_spread

__all__ = ["markdown_table", "mean_spread", "invariance_bars", "matrix_heatmap", "image_grid", "Estimate", "compare",
           "lowest", "proportion_interval", "separated"]
