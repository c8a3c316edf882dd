"""Grouped summaries equal the per-group numpy answers they replace, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np

from analyzer.summaries import (
    QUANTILES,
    TurnBlock,
    _grouped_quantile,
    _sorted,
    metric_summaries,
    streaming_summaries,
    token_summaries,
)


def _groups(rng: np.random.Generator) -> list[np.ndarray]:
    groups = []
    for _ in range(300):
        values = rng.choice([0, 1, 2, 3, 5, 8, 40], 1)[0]
        data = rng.lognormal(6.0, 1.0, values) * rng.choice([1.0, 1e-3, 1e6])
        data[rng.random(values) < 0.2] = np.nan
        if rng.random() < 0.1:
            data = np.round(data)  # ties
        groups.append(data)
    return groups


def test_grouped_quantiles_are_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    groups = _groups(rng)
    values = np.concatenate(groups)
    bounds = np.concatenate(([0], np.cumsum([len(g) for g in groups])))
    block = TurnBlock({}, bounds.astype(np.intp))
    s = _sorted(values, block.group_of_rows(), block.groups)
    for q in (*QUANTILES.values(), 0.0, 0.25, 1.0):
        got = _grouped_quantile(s, q)
        for g, data in enumerate(groups):
            finite = data[~np.isnan(data)]
            if len(finite):
                assert got[g] == np.quantile(finite, [q])[0], (g, q)
            else:
                assert np.isnan(got[g])


def test_metric_summary_of_a_group_is_its_own() -> None:
    block = TurnBlock({}, np.array([0, 4, 4, 5], dtype=np.intp))
    values = np.array([100.0, np.nan, 300.0, 200.0, 7.0])
    got = metric_summaries(values, block)
    assert got[0] == {"count": 3, "p50": 200.0, "p90": 280.0, "p99": 298.0, "max": 300.0}
    assert got[1] == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    assert got[2] == {"count": 1, "p50": 7.0, "p90": 7.0, "p99": 7.0, "max": 7.0}


def test_streaming_and_tokens_per_group() -> None:
    rows: list[list[dict[str, Any]]] = [
        [
            {
                "reply_audio_deltas": 3,
                "stream_ratio": 2.0,
                "would_stall": False,
                "stall_count": 0,
                "stall_ms": 0.0,
                "total_tokens": 10,
                "input_tokens": 6,
                "output_tokens": 4,
            },
            {
                "reply_audio_deltas": 0,
                "stream_ratio": None,
                "would_stall": None,
                "stall_count": None,
                "stall_ms": None,
                "total_tokens": None,
                "input_tokens": None,
                "output_tokens": None,
            },
            {
                "reply_audio_deltas": 5,
                "stream_ratio": 0.5,
                "would_stall": True,
                "stall_count": 2,
                "stall_ms": 120.5,
                "total_tokens": 20,
                "input_tokens": 15,
                "output_tokens": 5,
            },
        ],
        [],
    ]
    names = (
        "reply_audio_deltas",
        "stream_ratio",
        "would_stall",
        "stall_count",
        "stall_ms",
        "total_tokens",
        "input_tokens",
        "output_tokens",
    )
    block = TurnBlock.of_groups(rows, names)
    streaming = streaming_summaries(block)
    assert streaming[0] == {
        "responses_with_audio": 2,
        "stream_ratio_min": 0.5,
        "stream_ratio_p50": 1.25,
        "would_stall": 1,
        "stall_count": 2,
        "stall_ms_max": 120.5,
    }
    assert streaming[1]["responses_with_audio"] == 0
    tokens = token_summaries(block)
    assert tokens[0]["responses"] == 2
    assert (tokens[0]["total_tokens"], tokens[0]["input_tokens"]) == (30, 21)
    assert tokens[0]["input_audio_tokens"] is None
    assert tokens[1]["responses"] == 0 and tokens[1]["total_tokens"] is None


def test_a_tables_sessions_are_grouped_in_order_of_first_appearance() -> None:
    """``latency summary`` of every session at once: interleaved rows, a turn without a session
    (counted in the whole only, as pandas' groupby leaves it out), a metric the table lacks."""
    import pandas as pd

    from analyzer.latency import latency_summary, streaming_summary

    turns = pd.DataFrame(
        {
            "session_id": ["b", "a", "b", None, "a"],
            "latency_first_audio_ms": [1.0, 2.0, 3.0, 4.0, np.nan],
            "reply_audio_deltas": [1.0, 1.0, 0.0, 1.0, 1.0],
            "stall_ms": [5.0, np.nan, np.nan, 7.0, 0.0],
            "would_stall": [True, None, False, None, False],
        }
    )
    names = ["latency_first_audio_ms", "stall_ms", "would_stall", "latency_response_done_ms"]
    scopes, block = TurnBlock.by_session(turns, names)
    assert scopes == ["b", "a"] and block.bounds.tolist() == [0, 2, 4]
    assert block.floats("latency_first_audio_ms")[:3].tolist() == [1.0, 3.0, 2.0]
    assert list(block.columns["would_stall"]) == [True, False, None, False]
    assert np.isnan(block.floats("latency_response_done_ms")).all()

    summary = latency_summary(turns)
    first_audio = summary[summary["metric"] == "latency_first_audio_ms"]
    assert first_audio[["scope", "count", "p50", "max"]].to_dict("records") == [
        {"scope": "b", "count": 2, "p50": 2.0, "max": 3.0},
        {"scope": "a", "count": 1, "p50": 2.0, "max": 2.0},
        {"scope": "all", "count": 4, "p50": 2.5, "max": 4.0},
    ]
    streaming = streaming_summary(turns).set_index("scope")
    assert streaming["responses_with_audio"].to_dict() == {"b": 1, "a": 2, "all": 4}
    assert streaming["would_stall"].to_dict() == {"b": 1, "a": 0, "all": 1}
    assert streaming["stall_ms_max"].to_dict() == {"b": 5.0, "a": 0.0, "all": 7.0}
