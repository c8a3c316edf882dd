"""Latency and streaming-health summaries over turn tables (per session and overall)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from analyzer.summaries import (
    TurnBlock,
    latency_summaries,
    metric_summaries,
    streaming_summaries,
)

if TYPE_CHECKING:
    import pandas as pd

LATENCY_METRICS: tuple[str, ...] = (
    "latency_response_created_ms",
    "latency_first_transcript_ms",
    "latency_first_audio_ms",
    "latency_first_text_ms",
    "latency_response_done_ms",
    "latency_transcription_ms",
    "latency_transcription_first_delta_ms",
    "perceived_first_audio_ms",
    # as heard in the audio (analyzer.heard)
    "latency_heard_first_audio_ms",
    "latency_heard_first_voice_ms",
    "latency_barge_in_stop_ms",
    "latency_barge_in_cancel_ms",
    "latency_answer_first_audio_ms",  # a tool call's whole wait (analyzer.tool_turns)
)
SUMMARY_COLUMNS: tuple[str, ...] = ("scope", "metric", "count", "p50", "p90", "p99", "max")
STREAMING_COLUMNS: tuple[str, ...] = (
    "scope",
    "responses_with_audio",
    "stream_ratio_min",
    "stream_ratio_p50",
    "would_stall",
    "stall_count",
    "stall_ms_max",
)
OVERALL = "all"
# The turn columns the streaming summary reads.
STREAMING_INPUTS: tuple[str, ...] = (
    "reply_audio_deltas",
    "stream_ratio",
    "would_stall",
    "stall_count",
    "stall_ms",
)

# A turn table (pandas, at the edges) or some of its columns (a session's few turns): read one
# way, column by column, as float arrays.
TurnColumns: TypeAlias = "pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray]"
# One column of it.
Column: TypeAlias = "pd.Series | Sequence[Any] | np.ndarray"


def row_count(turns: TurnColumns) -> int:
    columns: Any = turns
    return len(next((columns[c] for c in columns), []))


def as_float(value: Any) -> float:
    """A number as a float; None and pandas' NA as NaN."""
    try:
        return math.nan if value is None else float(value)
    except TypeError:  # pandas' NA
        return math.nan


def floats(values: Column) -> np.ndarray:
    """A column as floats, missing values (None, NaN, pandas' NA) as NaN."""
    try:
        return np.asarray(values, dtype=float)
    except TypeError:
        return np.asarray([as_float(v) for v in list(values)], dtype=float)


def float_list(values: Column) -> list[float]:
    """:func:`floats` as a list."""
    result: list[float] = floats(values).tolist()
    return result


def metric_stats(values: Column) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max of the non-NaN values (None when there are none); percentiles
    are numpy's linear interpolation."""
    array = floats(values)
    return metric_summaries(array, TurnBlock({}, np.array([0, len(array)])))[0]


def latency_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """One row per (scope, metric): scope is each session id (when ``per_session``), then
    ``"all"`` for every turn together. Columns :data:`SUMMARY_COLUMNS`."""
    import pandas as pd

    scopes: list[str] = []
    found: list[dict[str, dict[str, Any]]] = []
    if per_session and len(turns):  # every session at once (grouped numpy), not one by one
        scopes, block = TurnBlock.by_session(turns, LATENCY_METRICS)
        found = latency_summaries(block, LATENCY_METRICS)
    scopes.append(OVERALL)
    found.append(latency_stats(turns))
    rows = [
        {"scope": scope, "metric": metric, **stats[metric]}
        for scope, stats in zip(scopes, found, strict=True)
        for metric in LATENCY_METRICS
    ]
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    table["count"] = table["count"].astype(int)
    return table


def latency_stats(turns: TurnColumns) -> dict[str, dict[str, Any]]:
    """``latency_dict(latency_summary(turns, per_session=False))``, computed directly; ``turns``
    is a turn table or its columns (lists or arrays by name)."""
    return latency_summaries(TurnBlock.whole(turns, LATENCY_METRICS), LATENCY_METRICS)[0]


def latency_dict(summary: pd.DataFrame, scope: str = OVERALL) -> dict[str, dict[str, Any]]:
    """``{metric: {count, p50, p90, p99, max}}`` of one scope of :func:`latency_summary`."""
    rows = summary[summary["scope"] == scope]
    out: dict[str, dict[str, Any]] = {}
    for row in rows.to_dict("records"):
        out[str(row["metric"])] = {
            k: (None if math.isnan(as_float(row[k])) else row[k])
            for k in ("count", "p50", "p90", "p99", "max")
        }
        out[str(row["metric"])]["count"] = int(row["count"])
    return out


def streaming_stats(turns: TurnColumns) -> dict[str, Any]:
    """Streaming health of the replies that had audio (see
    :func:`analyzer.summaries.streaming_summaries`)."""
    return streaming_summaries(TurnBlock.whole(turns, STREAMING_INPUTS))[0]


def streaming_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """:func:`streaming_stats` per session and overall (columns :data:`STREAMING_COLUMNS`)."""
    import pandas as pd

    rows = []
    if per_session and len(turns):
        scopes, block = TurnBlock.by_session(turns, STREAMING_INPUTS)
        rows = [
            {"scope": scope, **stats}
            for scope, stats in zip(scopes, streaming_summaries(block), strict=True)
        ]
    rows.append({"scope": OVERALL, **streaming_stats(turns)})
    return pd.DataFrame(rows, columns=list(STREAMING_COLUMNS))
