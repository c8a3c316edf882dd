"""What every figure shares: colours, an empty figure built without pyplot, PNG output, and
:func:`figure_data`, which reads back what a figure drew (for tests and notebooks)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

COLORS: dict[str, str] = {
    "user": "#4C78A8",
    "reply": "#F58518",
    "interrupted": "#E45756",
    "audio": "#F58518",
    "json": "#54A24B",
    "input text": "#9ECAE9",
    "input audio": "#4C78A8",
    "cached": "#000000",
    "output text": "#FFBF79",
    "output audio": "#F58518",
}
BAR_HEIGHT = 0.34


def figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    return fig, ax


def empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def floats(series: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float)


def short_id(session_id: str, length: int = 8) -> str:
    return session_id[:length]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _bars(container: BarContainer) -> dict[str, Any]:
    patches = list(container.patches)
    return {
        "label": str(container.get_label()),
        "x": [float(p.get_x()) for p in patches],
        "y": [float(p.get_y()) for p in patches],
        "width": [float(p.get_width()) for p in patches],
        "height": [float(p.get_height()) for p in patches],
    }


def _line(line: Line2D) -> dict[str, Any]:
    return {
        "label": str(line.get_label()),
        "x": [float(v) for v in np.asarray(line.get_xdata(), dtype=float)],
        "y": [float(v) for v in np.asarray(line.get_ydata(), dtype=float)],
    }


def figure_data(fig: Figure) -> list[dict[str, Any]]:
    """What each axes of ``fig`` drew, read back from its artists: title, lines (label, x, y)
    and bar containers (label and each bar's x, y, width, height). JSON-ready."""
    return [
        {
            "title": ax.get_title(),
            "lines": [_line(line) for line in ax.lines],
            "bars": [_bars(c) for c in ax.containers if isinstance(c, BarContainer)],
        }
        for ax in fig.axes
    ]
