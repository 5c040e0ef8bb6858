"""Pictures for robustness and interpretation: heat maps, curves and image grids as PNG files.

matplotlib is optional (the ``plot`` extra: ``pip install "nnscratch[plot]"``). The figures are drawn
with matplotlib's object-oriented API on its Agg canvas, so nothing here touches pyplot's global
state or needs a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def require_matplotlib() -> Any:
    """matplotlib's ``Figure`` class; an ImportError naming the ``plot`` extra when it is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "this plot needs matplotlib, which is not installed: pip install 'nnscratch[plot]' "
            "(the plot extra) or pip install matplotlib"
        ) from err
    return Figure


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def save_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str | os.PathLike,
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> Path:
    """A matrix as a coloured grid with each value written in its cell.

    Shape:
        values: (R, K), one row per ``row_labels`` entry, one column per ``col_labels`` entry.
    """
    Figure = require_matplotlib()
    rows, cols = values.shape
    fig = Figure(figsize=(1.2 + 0.9 * cols, 0.9 + 0.42 * rows))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdYlGn", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(cols), labels=list(col_labels))
    ax.set_yticks(range(rows), labels=list(row_labels))
    for i in range(rows):
        for j in range(cols):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.05)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def save_curves(
    curves: Mapping[str, Mapping[float, float]],
    path: str | os.PathLike,
    title: str = "",
    xlabel: str = "eps",
    ylabel: str = "accuracy",
) -> Path:
    """One line per entry of ``curves`` (name -> {x: y}), markers at the points."""
    Figure = require_matplotlib()
    fig = Figure(figsize=(5, 3.6))
    ax = fig.add_subplot()
    for name, points in curves.items():
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _displayable(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(H, W) grey or (H, W, 3) RGB for imshow from (H, W), (C, H, W) or (H, W, 3)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = image.transpose(1, 2, 0)  # (H, W, C)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]  # (H, W)
    if image.dtype != np.uint8:
        image = np.clip(image, 0.0, 1.0)
    return image, ("gray" if image.ndim == 2 else None)


def save_image_grid(
    cells: Sequence[Sequence[np.ndarray]],
    path: str | os.PathLike,
    row_titles: Sequence[str] = (),
    col_titles: Sequence[str] = (),
    cell_titles: Sequence[Sequence[str]] | None = None,
    scale: float = 1.1,
) -> Path:
    """A grid of images, ``cells[row][col]`` each (H, W), (C, H, W) or (H, W, 3), uint8 or [0, 1].

    Args:
        cells: the images, row by row (rows may be shorter: empty places stay blank).
        path: the PNG to write.
        row_titles, col_titles: labels left of each row and above each column.
        cell_titles: a small title above each image (same nesting as ``cells``).
        scale: inches per image.
    """
    Figure = require_matplotlib()
    rows = len(cells)
    cols = max((len(r) for r in cells), default=0)
    if rows == 0 or cols == 0:
        raise ValueError("cells: expected at least one image")
    fig = Figure(figsize=(scale * cols + (0.9 if row_titles else 0.1), scale * rows + 0.35))
    axes = fig.subplots(rows, cols, squeeze=False)
    for i in range(rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(cells[i]):
                image, cmap = _displayable(cells[i][j])
                ax.imshow(
                    image,
                    cmap=cmap,
                    vmin=0 if cmap else None,
                    vmax=(255 if image.dtype == np.uint8 else 1) if cmap else None,
                )
                if cell_titles is not None and j < len(cell_titles[i]):
                    ax.set_title(cell_titles[i][j], fontsize=7)
            if i == 0 and j < len(col_titles):
                title = col_titles[j] + ("\n" + ax.get_title() if ax.get_title() else "")
                ax.set_title(title, fontsize=8)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return _save(fig, path)
