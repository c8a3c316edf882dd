"""Turns: triggers, response binding, barge-in, timing, streaming health, usage."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analyzer.reader import read_capture
from analyzer.turns import TURN_COLUMNS, build_turns
from tests.capture_factory import (
    BETA_URL,
    T0,
    Event,
    appends,
    b64,
    ga_response,
    ga_session_created,
    ga_vad_user_turn,
    ordered,
    seed_capture,
    usage,
    write_capture,
)


def turns_of(path: Path) -> pd.DataFrame:
    capture = read_capture(path)
    facts = capture.sessions.iloc[0].to_dict()
    return build_turns(capture.frames, facts)


def nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def ga_barge_in_session() -> list[Event]:
    """Three VAD turns; the second reply is cut off by the user (turn_detected + truncate)."""
    turn1 = ga_vad_user_turn(T0 + 1.0, T0 + 2.0, "u1", None, 1000, 2300, "hello there")
    reply1 = ga_response(
        T0 + 2.25,
        "r1",
        "a1",
        "u1",
        "Hi how can I help",
        [(0.05, 4800), (0.10, 4800), (0.15, 4800)],
        0.5,
        tokens=usage(10, 20, 5, 30),
    )
    turn2 = ga_vad_user_turn(T0 + 3.0, T0 + 3.8, "u2", "a1", 3000, 3800, "tell me a story")
    reply2 = ga_response(
        T0 + 4.0,
        "r2",
        "a2",
        "u2",
        "Sure let me",
        [(0.1, 4800), (0.2, 4800)],
        0.52,
        status="cancelled",
        reason="turn_detected",
        tokens=usage(30, 40, 3, 10, cached=20),
        transcript_done=False,
    )
    turn3 = ga_vad_user_turn(T0 + 4.5, T0 + 5.0, "u3", "a2", 4500, 5000, "stop")
    truncate: list[Event] = [
        (
            T0 + 4.53,
            "client",
            {
                "type": "conversation.item.truncate",
                "item_id": "a2",
                "content_index": 0,
                "audio_end_ms": 150,
            },
        ),
        (
            T0 + 4.54,
            "server",
            {"type": "conversation.item.truncated", "item_id": "a2", "audio_end_ms": 150},
        ),
    ]
    reply3 = ga_response(
        T0 + 5.2, "r3", "a3", "u3", "OK", [(0.1, 2400)], 0.3, tokens=usage(50, 60, 2, 8)
    )
    return ordered(
        [ga_session_created(T0, silence_ms=500)],
        appends(T0 + 0.5, 3, 960),
        turn1,
        reply1,
        turn2,
        reply2,
        turn3,
        truncate,
        reply3,
    )


def test_vad_turn_latencies_are_measured_from_speech_stopped(tmp_path: Path) -> None:
    turns = turns_of(write_capture(tmp_path, ga_barge_in_session()))
    assert list(turns.columns) == list(TURN_COLUMNS)
    assert turns["index"].tolist() == [1, 2, 3]
    assert turns["trigger"].tolist() == ["vad", "vad", "vad"]
    first = turns.iloc[0]
    assert (first["user_item_id"], first["response_id"], first["assistant_item_id"]) == (
        "u1",
        "r1",
        "a1",
    )
    assert first["turn_start_s"] == first["speech_stopped_s"] == T0 + 2.0
    assert first["latency_response_created_ms"] == 250.0
    assert first["latency_first_transcript_ms"] == 260.0
    assert first["latency_first_audio_ms"] == 300.0
    assert first["latency_response_done_ms"] == 750.0
    assert first["latency_transcription_ms"] == 300.0
    assert nan(first["latency_first_text_ms"])
    assert first["silence_duration_ms"] == 500.0
    assert first["perceived_first_audio_ms"] == 800.0
    assert first["user_audio_ms"] == 1300.0
    assert first["user_transcript"] == "hello there"
    assert first["assistant_transcript"] == "Hi how can I help"
    assert first["status"] == "completed" and not first["interrupted"]


def test_barge_in_marks_the_cut_reply_interrupted_with_played_ms(tmp_path: Path) -> None:
    turns = turns_of(write_capture(tmp_path, ga_barge_in_session()))
    cut = turns.iloc[1]
    assert cut["status"] == "cancelled" and cut["status_reason"] == "turn_detected"
    assert bool(cut["interrupted"]) is True
    assert cut["played_ms"] == 150.0
    # no transcript .done came: the deltas are joined
    assert cut["assistant_transcript"] == "Sure let me"
    assert cut["user_transcript"] == "tell me a story"
    assert turns.iloc[2]["response_id"] == "r3" and not turns.iloc[2]["interrupted"]
    assert nan(turns.iloc[2]["played_ms"])


def test_usage_comes_from_response_done(tmp_path: Path) -> None:
    turns = turns_of(write_capture(tmp_path, ga_barge_in_session()))
    assert turns["total_tokens"].tolist() == [65.0, 83.0, 120.0]
    assert turns["input_audio_tokens"].tolist() == [20.0, 40.0, 60.0]
    assert turns["input_cached_tokens"].tolist() == [0.0, 20.0, 0.0]
    assert turns["output_audio_tokens"].sum() == 48.0


def test_reply_audio_size_play_time_and_stream_ratio(tmp_path: Path) -> None:
    turns = turns_of(write_capture(tmp_path, ga_barge_in_session()))
    first = turns.iloc[0]
    # 3 deltas of 4800 bytes of 24 kHz pcm16 (48 bytes/ms) = 300 ms, over 100 ms + one delta
    assert first["reply_audio_deltas"] == 3.0
    assert first["reply_audio_bytes"] == 14400.0
    assert first["reply_audio_ms"] == 300.0
    assert first["stream_ratio"] == 1.5
    assert first["would_stall"] is False and first["stall_count"] == 0.0
    assert first["last_audio_s"] == T0 + 2.4


def test_playback_stalls_when_a_delta_comes_after_the_buffer_ran_dry(tmp_path: Path) -> None:
    events = ordered(
        [ga_session_created(T0)],
        ga_vad_user_turn(T0 + 0.5, T0 + 1.0, "u1", None, 0, 500),
        # 100 ms each, arriving at 0, 50, 300 and 320 ms: dry from 200 to 300 ms
        ga_response(
            T0 + 1.1,
            "r1",
            "a1",
            "u1",
            "x",
            [(0.1, 4800), (0.15, 4800), (0.4, 4800), (0.42, 4800)],
            0.6,
        ),
    )
    turn = turns_of(write_capture(tmp_path, events)).iloc[0]
    assert turn["would_stall"] is True
    assert turn["stall_count"] == 1.0
    assert turn["stall_ms"] == 100.0
    assert turn["reply_audio_ms"] == 400.0
    assert turn["stream_ratio"] == round(400 / (320 + 100), 3)


def test_manual_commit_turn_in_beta_with_one_response(tmp_path: Path) -> None:
    session = {
        "type": "session.created",
        "session": {
            "model": "gpt-4o-realtime-preview",
            "modalities": ["audio", "text"],
            "turn_detection": None,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
        },
    }
    events: list[Event] = [
        (T0, "server", session),
        *appends(T0 + 0.1, 5, 4800, gap_s=0.1),  # 500 ms of 24 kHz pcm16
        (T0 + 1.0, "client", {"type": "input_audio_buffer.commit"}),
        (
            T0 + 1.01,
            "server",
            {"type": "input_audio_buffer.committed", "item_id": "u1", "previous_item_id": None},
        ),
        (T0 + 1.02, "client", {"type": "response.create"}),
        (T0 + 1.05, "server", {"type": "response.created", "response": {"id": "r1"}}),
        (
            T0 + 1.1,
            "server",
            {"type": "response.text.delta", "response_id": "r1", "item_id": "a1", "delta": "Hi"},
        ),
        (
            T0 + 1.2,
            "server",
            {
                "type": "response.audio.delta",
                "response_id": "r1",
                "item_id": "a1",
                "delta": b64(480),
            },
        ),
        (
            T0 + 1.3,
            "server",
            {"type": "response.text.done", "response_id": "r1", "item_id": "a1", "text": "Hi!"},
        ),
        (
            T0 + 1.5,
            "server",
            {
                "type": "response.done",
                "response": {"id": "r1", "status": "completed", "output": [], "usage": None},
            },
        ),
    ]
    turns = turns_of(write_capture(tmp_path, events, url=BETA_URL, beta_header=True))
    assert len(turns) == 1
    turn = turns.iloc[0]
    assert turn["trigger"] == "commit" and turn["turn_start_s"] == T0 + 1.0
    assert turn["user_item_id"] == "u1" and turn["response_id"] == "r1"
    assert turn["assistant_item_id"] == "a1"
    assert turn["response_create_s"] == T0 + 1.02
    assert turn["user_audio_ms"] == 500.0
    assert turn["latency_response_created_ms"] == 50.0
    assert turn["latency_first_text_ms"] == 100.0
    assert turn["latency_first_audio_ms"] == 200.0
    assert turn["latency_response_done_ms"] == 500.0
    assert turn["reply_audio_ms"] == 10.0
    assert turn["assistant_text"] == "Hi!"
    assert nan(turn["silence_duration_ms"]) and nan(turn["perceived_first_audio_ms"])
    assert nan(turn["total_tokens"])


def function_call_session() -> list[Event]:
    call = {
        "id": "fc1",
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "call_id": "c1",
        "arguments": '{"city": "Paris"}',
    }
    reply2 = ga_response(T0 + 3.2, "r2", "a2", "fco1", "It is 20 degrees", [(0.1, 480)], 0.3)
    return ordered(
        [ga_session_created(T0)],
        ga_vad_user_turn(T0 + 0.5, T0 + 1.0, "u1", None, 0, 500, "weather in Paris?"),
        [
            (T0 + 1.2, "server", {"type": "response.created", "response": {"id": "r1"}}),
            (
                T0 + 1.21,
                "server",
                {"type": "response.output_item.added", "response_id": "r1", "item": call},
            ),
            (
                T0 + 1.22,
                "server",
                {"type": "conversation.item.added", "previous_item_id": "u1", "item": call},
            ),
            (
                T0 + 1.3,
                "server",
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": "r1",
                    "item_id": "fc1",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
            ),
            (
                T0 + 1.4,
                "server",
                {
                    "type": "response.done",
                    "response": {"id": "r1", "status": "completed", "output": [call]},
                },
            ),
            (
                T0 + 3.0,
                "client",
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": "c1", "output": "20C"},
                },
            ),
            (
                T0 + 3.005,
                "server",
                {
                    "type": "conversation.item.added",
                    "previous_item_id": "fc1",
                    "item": {
                        "id": "fco1",
                        "type": "function_call_output",
                        "call_id": "c1",
                        "output": "20C",
                    },
                },
            ),
            (T0 + 3.01, "client", {"type": "response.create"}),
        ],
        reply2,
    )


def test_function_call_output_and_response_create_make_a_turn(tmp_path: Path) -> None:
    turns = turns_of(write_capture(tmp_path, function_call_session()))
    assert turns["trigger"].tolist() == ["vad", "response.create"]
    first, second = turns.iloc[0], turns.iloc[1]
    assert first["function_calls"] == ["get_weather"]
    assert first["assistant_item_id"] is None or nan(first["assistant_item_id"])
    assert second["user_item_id"] == "fco1"
    assert second["user_item_kind"] == "function_call_output"
    assert second["turn_start_s"] == T0 + 3.01
    assert second["latency_response_created_ms"] == 190.0
    assert second["assistant_transcript"] == "It is 20 degrees"
    assert nan(second["perceived_first_audio_ms"])


def test_a_response_with_no_trigger_seen_is_still_a_turn(tmp_path: Path) -> None:
    events = ordered(
        [ga_session_created(T0)],
        ga_response(T0 + 1.0, "r1", "a1", None, "Welcome", [(0.1, 480)], 0.3),
    )
    turns = turns_of(write_capture(tmp_path, events))
    assert len(turns) == 1
    turn = turns.iloc[0]
    assert turn["trigger"] is None and turn["response_id"] == "r1"
    assert nan(turn["turn_start_s"]) and nan(turn["latency_first_audio_ms"])
    assert turn["assistant_transcript"] == "Welcome"


def test_client_response_create_without_input_is_a_response_create_turn(tmp_path: Path) -> None:
    events = ordered(
        [ga_session_created(T0, silence_ms=None)],
        [(T0 + 0.5, "client", {"type": "response.create", "response": {"instructions": "Greet"}})],
        ga_response(T0 + 0.6, "r1", "a1", None, "Hello", [(0.2, 480)], 0.4),
    )
    turn = turns_of(write_capture(tmp_path, events)).iloc[0]
    assert turn["trigger"] == "response.create" and turn["user_item_id"] is None
    assert turn["latency_first_audio_ms"] == 300.0


def test_the_seed_session_has_one_vad_turn(tmp_path: Path) -> None:
    turns = turns_of(seed_capture(tmp_path))
    assert len(turns) == 1
    turn = turns.iloc[0]
    assert turn["trigger"] == "vad"
    assert turn["user_item_id"] == "item_AhALNEeL5H0wTcgGj1kH2"
    assert turn["response_id"] == "resp_AhALPLU73xVy9fw5b0EZ7"
    assert turn["assistant_item_id"] == "item_AhALPgZlh04us91Q1u1So"
    assert turn["user_transcript"].strip() == "讲一个睡前故事"
    assert turn["assistant_transcript"].startswith("从前在一片茂密的森林里")
    # frames 100 ms apart: speech_stopped is frame 4, the transcript delta 11, the
    # transcription 12, the audio delta 13, response.done 18 (no response.created in the seed)
    assert nan(turn["latency_response_created_ms"])
    assert turn["latency_first_transcript_ms"] == 700.0
    assert turn["latency_transcription_ms"] == 800.0
    assert turn["latency_first_audio_ms"] == 900.0
    assert turn["latency_response_done_ms"] == 1400.0
    assert turn["silence_duration_ms"] == 200.0
    assert turn["perceived_first_audio_ms"] == 1100.0
    assert (turn["total_tokens"], turn["input_tokens"], turn["output_tokens"]) == (
        1606,
        26,
        1580,
    )
    assert (turn["input_text_tokens"], turn["input_audio_tokens"]) == (8, 18)
    assert (turn["output_text_tokens"], turn["output_audio_tokens"]) == (316, 1264)


def test_build_turns_is_pure_and_takes_no_facts(tmp_path: Path) -> None:
    capture = read_capture(write_capture(tmp_path, ga_barge_in_session()))
    frames = capture.frames.copy()
    shuffled = capture.frames.sample(frac=1.0, random_state=1)
    a = build_turns(shuffled, None)
    b = build_turns(capture.frames, capture.sessions.iloc[0].to_dict())
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(frames, capture.frames)


def test_empty_frames_give_an_empty_turn_table() -> None:
    empty = pd.DataFrame(columns=["session_id", "seq", "time_s", "direction", "event_type"])
    assert list(build_turns(empty).columns) == list(TURN_COLUMNS)


@pytest.mark.parametrize("missing", ["speech_stopped", "committed"])
def test_a_commit_without_speech_stopped_is_timed_from_the_commit(
    tmp_path: Path, missing: str
) -> None:
    events = [
        e
        for e in ordered(
            [ga_session_created(T0)],
            ga_vad_user_turn(T0 + 0.5, T0 + 1.0, "u1", None, 0, 500),
            ga_response(T0 + 1.2, "r1", "a1", "u1", "x", [(0.1, 480)], 0.3),
        )
        if not (isinstance(e[2], dict) and e[2]["type"].endswith(missing))
    ]
    turn = turns_of(write_capture(tmp_path, events)).iloc[0]
    assert turn["trigger"] == "vad" and turn["user_item_id"] == "u1"
    # speech_stopped at 1.0 s, committed at 1.001 s, first audio at 1.3 s
    assert turn["latency_first_audio_ms"] == {"speech_stopped": 299.0, "committed": 300.0}[missing]
