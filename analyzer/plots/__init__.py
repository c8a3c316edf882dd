"""Matplotlib figures of turn tables and payload sizes, shared by the notebooks and the HTML report.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
no GUI backend; PNG and SVG go through Agg), so it can be saved, embedded or displayed by a
notebook. :func:`figure_data` reads back what a figure drew, for tests and notebooks.
"""

from analyzer.plots.figures import BAR_HEIGHT, COLORS, figure_data, figure_png
from analyzer.plots.latency import (
    DEFAULT_METRICS,
    METRIC_LABELS,
    TIMELINE_MARKERS,
    busiest_session,
    ecdf,
    plot_latency_distribution,
    plot_turn_timeline,
    reply_play_ms,
    session_time_zero,
)
from analyzer.plots.payload import (
    OUTPUT_SEGMENTS,
    TOKEN_SEGMENTS,
    payload_breakdown,
    plot_payload_breakdown,
    plot_tokens_per_turn,
)

__all__ = [
    "BAR_HEIGHT",
    "COLORS",
    "DEFAULT_METRICS",
    "METRIC_LABELS",
    "OUTPUT_SEGMENTS",
    "TIMELINE_MARKERS",
    "TOKEN_SEGMENTS",
    "busiest_session",
    "ecdf",
    "figure_data",
    "figure_png",
    "payload_breakdown",
    "plot_latency_distribution",
    "plot_payload_breakdown",
    "plot_tokens_per_turn",
    "plot_turn_timeline",
    "reply_play_ms",
    "session_time_zero",
]
