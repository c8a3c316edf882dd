"""Latency and streaming-health summaries over turn tables (per session and overall)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LATENCY_METRICS: tuple[str, ...] = (
    "latency_response_created_ms",
    "latency_first_transcript_ms",
    "latency_first_audio_ms",
    "latency_first_text_ms",
    "latency_response_done_ms",
    "latency_transcription_ms",
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


def metric_stats(values: pd.Series | np.ndarray) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max of the non-NaN values (None when there are none)."""
    array = np.asarray(values, dtype=float)
    array = array[~np.isnan(array)]
    if array.size == 0:
        return {"count": 0, **dict.fromkeys(QUANTILES), "max": None}
    stats: dict[str, float | int | None] = {"count": int(array.size)}
    for name, q in QUANTILES.items():
        stats[name] = round(float(np.quantile(array, q)), 3)
    stats["max"] = round(float(array.max()), 3)
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


def latency_stats(turns: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``latency_dict(latency_summary(turns, per_session=False))``, computed directly."""
    present = [m for m in LATENCY_METRICS if m in turns]
    block = turns[present].to_numpy(dtype=float, na_value=np.nan) if present else None
    out: dict[str, dict[str, Any]] = {}
    for metric in LATENCY_METRICS:
        values: np.ndarray = (
            block[:, present.index(metric)]
            if block is not None and metric in present
            else np.zeros(0, dtype=float)
        )
        out[metric] = metric_stats(values)
    return out


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


def _column(turns: pd.DataFrame, name: str, mask: np.ndarray) -> np.ndarray:
    values: np.ndarray = turns[name].to_numpy(dtype=float, na_value=np.nan)[mask]
    return values


def streaming_stats(turns: pd.DataFrame) -> dict[str, Any]:
    """Streaming health of the replies that had audio: how fast audio came compared with real
    time (``stream_ratio``, > 1 is faster) and whether playback would have run dry."""
    if "reply_audio_deltas" in turns and len(turns):
        deltas = turns["reply_audio_deltas"].to_numpy(dtype=float, na_value=np.nan)
        audio = np.nan_to_num(deltas, nan=0.0) > 0
    else:
        audio = np.zeros(0, dtype=bool)
    count = int(audio.sum())
    if not count:
        return {
            "responses_with_audio": 0,
            "stream_ratio_min": None,
            "stream_ratio_p50": None,
            "would_stall": 0,
            "stall_count": 0,
            "stall_ms_max": None,
        }
    ratio = _column(turns, "stream_ratio", audio)
    ratio = ratio[~np.isnan(ratio)]
    stalls = [
        v
        for v in np.asarray(turns["would_stall"].to_numpy(dtype=object))[audio].tolist()
        if not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
    ]
    stall_ms = _column(turns, "stall_ms", audio)
    stall_ms = stall_ms[~np.isnan(stall_ms)]
    return {
        "responses_with_audio": count,
        "stream_ratio_min": round(float(ratio.min()), 3) if len(ratio) else None,
        "stream_ratio_p50": round(float(np.quantile(ratio, 0.5)), 3) if len(ratio) else None,
        "would_stall": sum(1 for v in stalls if bool(v)),
        "stall_count": int(np.nan_to_num(_column(turns, "stall_count", audio), nan=0.0).sum()),
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
