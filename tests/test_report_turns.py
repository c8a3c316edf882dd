"""The report's turn dicts from turn rows: missing values, numpy scalars and ints as the JSON
has them (pinned before the turns were built column by column)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analyzer.report import TURN_LATENCIES, turn_dicts
from analyzer.turns import TURN_COLUMNS

NAN = math.nan


def row(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(TURN_COLUMNS, NAN)
    for column in ("trigger", "user_item_id", "user_item_kind", "response_id", "status"):
        base[column] = None
    base.update(
        index=1,
        interrupted=False,
        would_stall=None,
        function_calls=[],
        transcription_model=None,
        transcription_deltas=0.0,
        reply_audio_bytes=0.0,
        false_barge_in=None,
        false_turn=None,
        mic_flag=None,
        echo_suspected=None,
        answer_response_id=None,
    )
    base.update(values)
    return base


def test_missing_values_are_null_and_numbers_keep_their_type() -> None:
    turn = row(
        trigger="vad",
        interrupted=np.bool_(True),
        played_ms=np.float64(150.0),
        user_audio_ms=800,  # an int stays an int
        turn_start_s=1_700_000_000.25,
        latency_first_audio_ms=250.5,
        would_stall=False,
        stall_count=0.0,
        reply_audio_bytes=9600.0,
        total_tokens=30.0,
        input_tokens=10.0,
        function_calls=["get_weather"],
        transcription_model=NAN,  # pandas' missing string
        transcription_deltas=3.0,
        transcription_input_tokens=5.0,
        transcription_audio_seconds=1.5,
        transcription_logprobs=4.0,
        transcription_logprob_mean=-0.25,
        user_rms_dbfs=-20,  # heard levels are floats, whatever the row holds
        false_barge_in=NAN,
        false_turn=np.bool_(False),
        mic_flag=NAN,
        echo_suspected=True,
        echo_score=0.9,
    )
    (found,) = turn_dicts([turn])
    assert list(found)[:16] == [
        "index",
        "trigger",
        "user_item_id",
        "user_item_kind",
        "response_id",
        "assistant_item_id",
        "status",
        "status_reason",
        "interrupted",
        "played_ms",
        "user_transcript",
        "assistant_transcript",
        "assistant_text",
        "turn_start_s",
        "started",
        "latency_ms",
    ]
    assert found["trigger"] == "vad" and found["user_item_id"] is None
    assert found["assistant_item_id"] is None  # NaN
    assert found["interrupted"] is True
    assert found["played_ms"] == 150.0 and type(found["played_ms"]) is float
    assert found["user_audio_ms"] == 800 and type(found["user_audio_ms"]) is int
    assert found["started"] == "2023-11-14T22:13:20.250Z"
    assert found["latency_ms"] == {
        key: (250.5 if key == "first_audio" else None) for key in TURN_LATENCIES
    }
    assert (found["would_stall"], found["stall_count"], found["reply_audio_bytes"]) == (
        False,
        0.0,
        9600,
    )
    assert type(found["reply_audio_bytes"]) is int
    assert found["usage"] == {
        "input_tokens": 10,
        "output_tokens": None,
        "total_tokens": 30,
        **{k: None for k in found["usage"] if k not in ("input_tokens", "total_tokens")},
    }
    assert found["function_calls"] == ["get_weather"]
    assert found["transcription_model"] is None and found["transcription_deltas"] == 3
    assert found["transcription_usage"] == {
        "input_tokens": 5,
        "output_tokens": None,
        "total_tokens": None,
        "input_text_tokens": None,
        "input_audio_tokens": None,
        "audio_seconds": 1.5,
    }
    assert found["transcription_logprobs"] == {"count": 4, "mean": -0.25}
    assert found["levels"]["user_rms_dbfs"] == -20.0
    assert type(found["levels"]["user_rms_dbfs"]) is float
    assert (found["false_barge_in"], found["false_turn"], found["mic_flag"]) == (None, False, None)
    assert (found["echo_suspected"], found["echo_score"], found["echo_delay_ms"]) == (
        True,
        0.9,
        None,
    )
    assert list(found)[-13:] == [
        "user_speech_start_s",
        "user_speech_end_s",
        "first_voice_s",
        "barge_in_s",
        "false_barge_in",
        "false_turn",
        "talk_over_ms",
        "reply_dead_air_ms",
        "levels",
        "mic_flag",
        "echo_suspected",
        "echo_score",
        "echo_delay_ms",
    ]


def test_a_turn_without_usage_or_transcription() -> None:
    (found,) = turn_dicts([row(total_tokens=NAN, input_tokens=3.0)])
    assert found["usage"] is None  # no total: the reply reported no usage
    assert found["transcription_usage"] is None and found["transcription_logprobs"] is None
    assert found["started"] is None and found["turn_start_s"] is None


def test_the_turn_tables_columns_have_their_declared_types_whatever_the_rows_hold() -> None:
    """A text column stays objects (a str or None) when a session misses a value or has all of
    them (inferred, it was pandas' string type or objects by that alone), so the tables of
    many sessions are the same one table however they were cut."""
    import pandas as pd

    from analyzer.turns import TURN_TEXT_COLUMNS, turn_table

    def row(index: int, **values: Any) -> dict[str, Any]:
        return {**dict.fromkeys(TURN_COLUMNS), "index": index, "interrupted": False, **values}

    rows = [
        row(1, session_id="a", response_id="r1", latency_first_audio_ms=250.0),
        row(2, session_id="a", response_id=None, would_stall=math.nan, function_calls=["f"]),
        row(1, session_id="b", response_id="r3", interrupted=True, would_stall=True),
    ]
    table = turn_table(rows)
    assert list(table.columns) == list(TURN_COLUMNS)
    for name in TURN_TEXT_COLUMNS:
        assert table[name].dtype == object, name
    assert table["response_id"].tolist() == ["r1", None, "r3"]
    assert table["index"].dtype == np.int64 and table["interrupted"].tolist() == [0, 0, 1]
    assert table["would_stall"].tolist() == [None, None, True]
    assert table["function_calls"].tolist() == [None, ["f"], None]
    assert table["latency_first_audio_ms"].dtype == float
    assert math.isnan(table["latency_first_audio_ms"][1])
    # Cut per session and put together, or made at once: one table.
    parts = pd.concat([turn_table(rows[:2]), turn_table(rows[2:])], ignore_index=True)
    pd.testing.assert_frame_equal(parts, table)
    assert turn_table([]).dtypes.equals(table.dtypes)
