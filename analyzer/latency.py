"""Latency and streaming-health summaries over turn tables (per session and overall)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

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
    "latency_answer_first_audio_ms",  # a tool call's whole wait (analyzer.tool_turns)
)
# Percentiles use linear interpolation between the closest ranks (numpy's default).
QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
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

# A turn table (pandas, at the edges) or some of its columns (a session's few turns): read one
# way, column by column, as float arrays.
TurnColumns: TypeAlias = "pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray]"
# One column of it.
Column: TypeAlias = "pd.Series | Sequence[Any] | np.ndarray"


def columns_of(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Turn rows (dicts) as ``{column: values}`` for the summaries below."""
    return {name: [row[name] for row in rows] for name in names}


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
    finite = array[~np.isnan(array)]
    if not len(finite):
        return {"count": 0, **dict.fromkeys(QUANTILES), "max": None}
    found = np.quantile(finite, list(QUANTILES.values())).tolist()
    stats: dict[str, float | int | None] = {"count": len(finite)}
    for name, value in zip(QUANTILES, found, strict=True):
        stats[name] = round(value, 3)
    stats["max"] = round(float(finite.max()), 3)
    return stats


def latency_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """One row per (scope, metric): scope is each session id (when ``per_session``), then
    ``"all"`` for every turn together. Columns :data:`SUMMARY_COLUMNS`."""
    import pandas as pd

    scopes: list[tuple[str, pd.DataFrame]] = []
    if per_session and len(turns):
        scopes.extend((str(sid), group) for sid, group in turns.groupby("session_id", sort=False))
    scopes.append((OVERALL, turns))
    rows = []
    for scope, group in scopes:
        for metric in LATENCY_METRICS:
            values = group[metric] if metric in group else pd.Series(dtype=float)
            rows.append({"scope": scope, "metric": metric, **metric_stats(values)})
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    table["count"] = table["count"].astype(int)
    return table


def latency_stats(turns: TurnColumns) -> dict[str, dict[str, Any]]:
    """``latency_dict(latency_summary(turns, per_session=False))``, computed directly; ``turns``
    is a turn table or its columns (:func:`columns_of` turn rows)."""
    empty: list[float] = []
    return {m: metric_stats(turns.get(m, empty)) for m in LATENCY_METRICS}


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


_NO_STREAMING: dict[str, Any] = {
    "responses_with_audio": 0,
    "stream_ratio_min": None,
    "stream_ratio_p50": None,
    "would_stall": 0,
    "stall_count": 0,
    "stall_ms_max": None,
}


def _is_true(value: Any) -> bool:
    return isinstance(value, bool | np.bool_) and bool(value)


def streaming_stats(turns: TurnColumns) -> dict[str, Any]:
    """Streaming health of the replies that had audio: how fast audio came compared with real
    time (``stream_ratio``, > 1 is faster) and whether playback would have run dry."""
    if "reply_audio_deltas" not in turns or not row_count(turns):
        return dict(_NO_STREAMING)
    audio = np.nan_to_num(floats(turns["reply_audio_deltas"]), nan=0.0) > 0
    count = int(audio.sum())
    if not count:
        return dict(_NO_STREAMING)
    ratio = floats(turns["stream_ratio"])[audio]
    ratio = ratio[~np.isnan(ratio)]
    stall_ms = floats(turns["stall_ms"])[audio]
    stall_ms = stall_ms[~np.isnan(stall_ms)]
    stalled = [v for v, a in zip(list(turns["would_stall"]), audio.tolist(), strict=True) if a]
    return {
        "responses_with_audio": count,
        "stream_ratio_min": round(float(ratio.min()), 3) if len(ratio) else None,
        "stream_ratio_p50": round(float(np.quantile(ratio, 0.5)), 3) if len(ratio) else None,
        "would_stall": sum(1 for v in stalled if _is_true(v)),
        "stall_count": int(np.nan_to_num(floats(turns["stall_count"])[audio], nan=0.0).sum()),
        "stall_ms_max": round(float(stall_ms.max()), 3) if len(stall_ms) else None,
    }


def streaming_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """:func:`streaming_stats` per session and overall (columns :data:`STREAMING_COLUMNS`)."""
    import pandas as pd

    rows = []
    if per_session and len(turns):
        for sid, group in turns.groupby("session_id", sort=False):
            rows.append({"scope": str(sid), **streaming_stats(group)})
    rows.append({"scope": OVERALL, **streaming_stats(turns)})
    return pd.DataFrame(rows, columns=list(STREAMING_COLUMNS))
