"""Latency percentiles and streaming health over turn tables."""

from __future__ import annotations

import pandas as pd

from analyzer.latency import (
    LATENCY_METRICS,
    latency_dict,
    latency_summary,
    metric_stats,
    streaming_stats,
    streaming_summary,
)
from analyzer.turns import TURN_COLUMNS


def turn_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    table = pd.DataFrame(rows).reindex(columns=list(TURN_COLUMNS))
    for metric in LATENCY_METRICS:
        table[metric] = table[metric].astype(float)
    return table


def test_metric_stats_use_linear_percentiles_and_ignore_nan() -> None:
    stats = metric_stats(pd.Series([100.0, 200.0, float("nan"), 300.0, 400.0]))
    assert stats == {"count": 4, "p50": 250.0, "p90": 370.0, "p99": 397.0, "max": 400.0}
    assert metric_stats(pd.Series([], dtype=float)) == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


def test_summary_has_each_session_then_all() -> None:
    turns = turn_table(
        [
            {"session_id": "a", "latency_first_audio_ms": 100.0},
            {"session_id": "a", "latency_first_audio_ms": 300.0},
            {"session_id": "b", "latency_first_audio_ms": 500.0},
        ]
    )
    summary = latency_summary(turns)
    assert summary["scope"].drop_duplicates().tolist() == ["a", "b", "all"]
    assert len(summary) == 3 * len(LATENCY_METRICS)
    first_audio = summary[summary["metric"] == "latency_first_audio_ms"].set_index("scope")
    assert first_audio.loc["a", "p50"] == 200.0 and first_audio.loc["a", "count"] == 2
    assert first_audio.loc["b", "max"] == 500.0
    assert first_audio.loc["all", "p50"] == 300.0 and first_audio.loc["all", "count"] == 3
    overall = latency_dict(summary)
    assert overall["latency_first_audio_ms"]["p90"] == 460.0
    assert overall["latency_response_created_ms"] == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


def test_streaming_health_counts_only_replies_with_audio() -> None:
    turns = turn_table(
        [
            {
                "session_id": "a",
                "reply_audio_deltas": 3.0,
                "stream_ratio": 1.5,
                "would_stall": False,
                "stall_count": 0.0,
                "stall_ms": 0.0,
            },
            {
                "session_id": "a",
                "reply_audio_deltas": 4.0,
                "stream_ratio": 0.8,
                "would_stall": True,
                "stall_count": 2.0,
                "stall_ms": 120.0,
            },
            {"session_id": "b", "reply_audio_deltas": 0.0},
        ]
    )
    stats = streaming_stats(turns)
    assert stats == {
        "responses_with_audio": 2,
        "stream_ratio_min": 0.8,
        "stream_ratio_p50": 1.15,
        "would_stall": 1,
        "stall_count": 2,
        "stall_ms_max": 120.0,
    }
    summary = streaming_summary(turns).set_index("scope")
    assert summary.loc["b", "responses_with_audio"] == 0
    assert summary.loc[["b"], "stream_ratio_min"].isna().all()


def test_an_empty_turn_table_summarizes_to_zero_counts() -> None:
    summary = latency_summary(turn_table([]))
    assert summary["scope"].unique().tolist() == ["all"]
    assert summary["count"].sum() == 0
