"""Latency and streaming-health summaries over turn tables (per session and overall)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from analyzer.lazy import LazyModule, is_frame, is_na, is_series

if TYPE_CHECKING:
    import pandas as pd
pd = LazyModule("pandas")

LATENCY_METRICS: tuple[str, ...] = (
    "latency_response_created_ms",
    "latency_first_transcript_ms",
    "latency_first_audio_ms",
    "latency_first_text_ms",
    "latency_response_done_ms",
    "latency_transcription_ms",
    "latency_transcription_first_delta_ms",
    "perceived_first_audio_ms",
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

# A turn table, or some of its columns as lists (a session's few turns need no DataFrame).
TurnColumns: TypeAlias = "pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray]"


def columns_of(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Turn rows (dicts) as ``{column: values}`` for the summaries below."""
    return {name: [row[name] for row in rows] for name in names}


def row_count(turns: TurnColumns) -> int:
    if is_frame(turns):
        return len(turns)
    return len(next(iter(turns.values()), []))


def floats(values: pd.Series | Sequence[Any] | np.ndarray) -> np.ndarray:
    """A column as floats, missing values (None, NA) as NaN."""
    if is_series(values):
        array: np.ndarray = values.to_numpy(dtype=float, na_value=np.nan)
        return array
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _quantile(ordered: list[float], q: float) -> float:
    """numpy's default ("linear") quantile of sorted values, with numpy's own interpolation
    arithmetic, so the result equals ``np.quantile`` to the bit (without its fixed cost, which
    dominates for a session's handful of turns)."""
    index = (len(ordered) - 1) * q
    if index >= len(ordered) - 1:
        return ordered[-1]
    below = math.floor(index)
    low, high = ordered[below], ordered[below + 1]
    t = index - below
    diff = high - low
    return high - diff * (1 - t) if t >= 0.5 else low + diff * t


def float_list(values: Sequence[Any] | np.ndarray) -> list[float]:
    """:func:`floats` of a short list, in plain Python (a session's few turns)."""
    try:
        return [math.nan if v is None else float(v) for v in values]
    except TypeError:  # pandas' NA (rows of a table with nullable columns)
        return [math.nan if is_na(v) else float(v) for v in values]


def _finite_sorted(values: pd.Series | np.ndarray | Sequence[Any]) -> list[float]:
    if isinstance(values, list):
        return sorted(v for v in float_list(values) if not math.isnan(v))
    if is_series(values):
        array = values.to_numpy(dtype=float, na_value=np.nan)
    else:
        array = np.asarray(values, dtype=float)
    finite: list[float] = np.sort(array[~np.isnan(array)]).tolist()
    return finite


def metric_stats(values: pd.Series | np.ndarray | Sequence[Any]) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max of the non-NaN values (None when there are none)."""
    ordered = _finite_sorted(values)
    if not ordered:
        return {"count": 0, **dict.fromkeys(QUANTILES), "max": None}
    stats: dict[str, float | int | None] = {"count": len(ordered)}
    for name, q in QUANTILES.items():
        stats[name] = round(_quantile(ordered, q), 3)
    stats["max"] = round(ordered[-1], 3)
    return stats


def latency_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """One row per (scope, metric): scope is each session id (when ``per_session``), then
    ``"all"`` for every turn together. Columns :data:`SUMMARY_COLUMNS`."""
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
            k: (None if pd.isna(row[k]) else row[k]) for k in ("count", "p50", "p90", "p99", "max")
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


def _streaming_of_rows(turns: Mapping[str, Sequence[Any] | np.ndarray]) -> dict[str, Any]:
    """:func:`streaming_stats` of a session's turn columns (lists), in plain Python."""
    audio = [not math.isnan(d) and d > 0 for d in float_list(turns.get("reply_audio_deltas", []))]
    count = sum(audio)
    if not count:
        return dict(_NO_STREAMING)

    def with_audio(column: str) -> list[float]:
        values = float_list(turns[column])
        return [v for v, a in zip(values, audio, strict=True) if a and not math.isnan(v)]

    ratio = sorted(with_audio("stream_ratio"))
    stall_ms = with_audio("stall_ms")
    stalls = [v for v, a in zip(turns["would_stall"], audio, strict=True) if a and not is_na(v)]
    return {
        "responses_with_audio": count,
        "stream_ratio_min": round(ratio[0], 3) if ratio else None,
        "stream_ratio_p50": round(_quantile(ratio, 0.5), 3) if ratio else None,
        "would_stall": sum(1 for v in stalls if bool(v)),
        "stall_count": int(sum(with_audio("stall_count"))),
        "stall_ms_max": round(max(stall_ms), 3) if stall_ms else None,
    }


def streaming_stats(turns: TurnColumns) -> dict[str, Any]:
    """Streaming health of the replies that had audio: how fast audio came compared with real
    time (``stream_ratio``, > 1 is faster) and whether playback would have run dry."""
    if not is_frame(turns):
        return _streaming_of_rows(turns)
    if "reply_audio_deltas" in turns and row_count(turns):
        audio = np.nan_to_num(floats(turns["reply_audio_deltas"]), nan=0.0) > 0
    else:
        audio = np.zeros(0, dtype=bool)
    count = int(audio.sum())
    if not count:
        return dict(_NO_STREAMING)
    ratio = floats(turns["stream_ratio"])[audio]
    ratio = ratio[~np.isnan(ratio)]
    stalls = [
        v
        for v, has_audio in zip(list(turns["would_stall"]), audio.tolist(), strict=True)
        if has_audio and not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
    ]
    stall_ms = floats(turns["stall_ms"])[audio]
    stall_ms = stall_ms[~np.isnan(stall_ms)]
    return {
        "responses_with_audio": count,
        "stream_ratio_min": round(float(ratio.min()), 3) if len(ratio) else None,
        "stream_ratio_p50": (
            round(_quantile(sorted(ratio.tolist()), 0.5), 3) if len(ratio) else None
        ),
        "would_stall": sum(1 for v in stalls if bool(v)),
        "stall_count": int(np.nan_to_num(floats(turns["stall_count"])[audio], nan=0.0).sum()),
        "stall_ms_max": round(float(stall_ms.max()), 3) if len(stall_ms) else None,
    }


def streaming_summary(turns: pd.DataFrame, per_session: bool = True) -> pd.DataFrame:
    """:func:`streaming_stats` per session and overall (columns :data:`STREAMING_COLUMNS`)."""
    rows = []
    if per_session and len(turns):
        for sid, group in turns.groupby("session_id", sort=False):
            rows.append({"scope": str(sid), **streaming_stats(group)})
    rows.append({"scope": OVERALL, **streaming_stats(turns)})
    return pd.DataFrame(rows, columns=list(STREAMING_COLUMNS))
