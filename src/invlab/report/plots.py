"""PNG plots with matplotlib's object API (no pyplot, no global state), written atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["invariance_bars", "matrix_heatmap", "image_grid", "save_figure", "learned_range_plot", "range_bars",
           "crop_heatmaps"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def invariance_bars(
    scores: dict[str, dict[str, float]],
    path: str | os.PathLike,
    errors: dict[str, dict[str, tuple[float, float]]] | None = None,
    title: str = "",
    ylabel: str = "invariance score (0 = invariant, 1 = like another image)",
) -> Path:
    """Grouped bars: one group per transformation, one bar per series (a layer or a model).

    ``scores[series][transform]``; ``errors[series][transform] = (low, high)`` draws
    confidence intervals."""
    series = list(scores)
    transforms = list(dict.fromkeys(t for s in series for t in scores[s]))
    fig = _figure(max(5.0, 0.55 * len(transforms) * max(1, len(series)) ** 0.5 + 2), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(series))
    x = np.arange(len(transforms))
    for i, s in enumerate(series):
        vals = np.array([scores[s].get(t, np.nan) for t in transforms], dtype=float)
        kw = {}
        if errors and s in errors:
            lo = np.array([errors[s].get(t, (np.nan, np.nan))[0] for t in transforms], dtype=float)
            hi = np.array([errors[s].get(t, (np.nan, np.nan))[1] for t in transforms], dtype=float)
            kw["yerr"] = np.nan_to_num(np.stack([vals - lo, hi - vals]).clip(0))
            kw["capsize"] = 2
        ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=s, **kw)
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels(transforms, rotation=30, ha="right")
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8, frameon=False)
    ax.set_ylim(0, max(1.1, float(np.nanmax([v for s in series for v in scores[s].values()] or [1])) * 1.1))
    return save_figure(fig, path)


def matrix_heatmap(
    values: np.ndarray | Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    annotations: Sequence[Sequence[str]] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "viridis",
) -> Path:
    """A labelled heatmap (e.g. source x target transfer accuracy); NaN cells stay blank."""
    v = np.asarray(values, dtype=float)
    fig = _figure(1.4 + 1.1 * v.shape[1], 1.0 + 0.55 * v.shape[0])
    ax = fig.add_subplot(1, 1, 1)
    finite = v[np.isfinite(v)]
    im = ax.imshow(np.ma.masked_invalid(v), cmap=cmap, aspect="auto",
                   vmin=float(finite.min()) if finite.size else 0, vmax=float(finite.max()) if finite.size else 1)
    ax.set_xticks(range(v.shape[1]))
    ax.set_xticklabels(col_labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(v.shape[0]))
    ax.set_yticklabels(row_labels, fontsize=8)
    mid = (float(finite.min()) + float(finite.max())) / 2 if finite.size else 0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            text = annotations[i][j] if annotations is not None else ("" if math.isnan(v[i, j]) else f"{v[i, j]:.3f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if v[i, j] > mid else "white")
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, path)


def image_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    row_labels: Sequence[str] | None = None,
    scale: int = 3,
) -> Path:
    """Save ``images`` ``(rows, cols, C, H, W)`` (uint8 or float in [0, 1]) as one PNG,
    nearest-neighbour upscaled by ``scale``, optionally with a label per row."""
    a = np.asarray(images)
    if a.ndim != 5:
        raise ValueError(f"image_grid expects (rows, cols, C, H, W), got {a.shape}")
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    rows, cols, c, h, w = a.shape
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    grid = a.transpose(0, 3, 1, 4, 2).reshape(rows * h, cols * w, 3)
    grid = np.repeat(np.repeat(grid, scale, 0), scale, 1)
    fig = _figure(grid.shape[1] / 110 + (1.2 if row_labels else 0.1), grid.shape[0] / 110 + 0.1)
    ax = fig.add_axes((0.12 if row_labels else 0.0, 0.0, 0.88 if row_labels else 1.0, 1.0))
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        ax.set_yticks([(i + 0.5) * h * scale for i in range(rows)])
        ax.set_yticklabels(row_labels, fontsize=8)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return save_figure(fig, path)


def _as_hwc(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    a = a.transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a[..., :3]


def learned_range_plot(
    images: np.ndarray,
    a_minus: np.ndarray,
    a_plus: np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    base_angles: np.ndarray | None = None,
    unit: str = "deg",
) -> Path:
    """One panel per input ``images (N, C, H, W)``: the image and, beside it, its learned
    range ``[-a_minus, +a_plus]`` drawn as a wedge (angles in degrees) around the upright
    direction (and the input's own rotation ``base_angles`` as a tick, when given)."""
    n = len(images)
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    fig = _figure(2.4 * cols, 1.35 * rows)
    for i in range(n):
        ax = fig.add_subplot(rows, 2 * cols, 2 * i + 1)
        ax.imshow(_as_hwc(images[i]), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(labels[i]), fontsize=8)
        pol = fig.add_subplot(rows, 2 * cols, 2 * i + 2, projection="polar")
        lo, hi = -float(a_minus[i]), float(a_plus[i])
        theta = np.radians(np.linspace(lo, hi, 64)) + np.pi / 2
        pol.fill_between(theta, 0, 1, color="tab:blue", alpha=0.5)
        if base_angles is not None:
            pol.plot([np.radians(float(base_angles[i])) + np.pi / 2] * 2, [0, 1], color="tab:red", lw=1)
        pol.set_yticks([])
        pol.set_xticks([])
        pol.set_title(f"-{-lo:.0f}/+{hi:.0f} {unit}", fontsize=7)
    return save_figure(fig, path)


def range_bars(
    ranges: dict[str, dict[str, Sequence[float]]],
    classes: Sequence[str],
    path: str | os.PathLike,
    ylabel: str = "learned rotation range (deg)",
) -> Path:
    """Per class, one floating bar ``[-a_minus, +a_plus]`` per series (method)."""
    series = list(ranges)
    fig = _figure(max(6.0, 0.5 * len(classes) * max(1, len(series)) / 2), 3.2)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(series))
    x = np.arange(len(classes))
    for j, name in enumerate(series):
        lo = np.array([-float(ranges[name][c][0]) for c in classes])
        hi = np.array([float(ranges[name][c][1]) for c in classes])
        ax.bar(x + (j - (len(series) - 1) / 2) * width, hi - lo, width, bottom=lo, label=name)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x)
    ax.set_xticklabels(classes, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, ncol=len(series))
    return save_figure(fig, path)


def crop_heatmaps(images: np.ndarray, heat: np.ndarray, path: str | os.PathLike, scale: int = 3) -> Path:
    """Each input ``images (N, C, H, W)`` above its crop heat-map ``heat (N, H, W)`` (the
    probability that a pixel lies inside the sampled crop)."""
    n = len(images)
    fig = _figure(1.1 * n + 0.5, 2.4)
    for i in range(n):
        ax = fig.add_subplot(2, n, i + 1)
        ax.imshow(_as_hwc(images[i]), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax2 = fig.add_subplot(2, n, n + i + 1)
        ax2.imshow(np.asarray(heat[i]), vmin=0, vmax=1, cmap="magma", interpolation="nearest")
        ax2.set_xticks([])
        ax2.set_yticks([])
    return save_figure(fig, path)
