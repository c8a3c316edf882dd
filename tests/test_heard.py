"""Turns as heard (analyzer.heard) from planted spans of speech: exact columns."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.heard import HEARD_COLUMNS, HEARD_INPUTS, Span, Voices, heard_columns, turn_heard

CLEAN = (-20.0, -3.0, 0.0)  # rms, peak dBFS, clipped share


def span(start_s: float, end_s: float, levels: tuple[float, float, float] = CLEAN) -> Span:
    return Span(start_s, end_s, (end_s - start_s) * 1000, levels)


def turn(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "response_id": "r1",
        "first_audio_s": 10.5,
        "last_audio_s": 11.0,
        "reply_audio_ms": 3000.0,
        "interrupted": False,
        "played_ms": math.nan,
        "status_reason": None,
        "response_done_s": 11.2,
    }
    row.update(fields)
    return row


def test_heard_latency_from_the_end_of_speech() -> None:
    voices = Voices(user=[span(8.0, 10.0)], first_voice={"r1": 10.75})
    heard = turn_heard(turn(), voices, set())
    assert set(heard) == set(HEARD_COLUMNS)
    assert heard["user_speech_end_s"] == 10.0
    assert heard["latency_heard_first_audio_ms"] == 500.0
    assert heard["latency_heard_first_voice_ms"] == 750.0
    assert heard["talk_over_ms"] == 0.0 and heard["false_barge_in"] is None
    assert heard["mic_flag"] is None


def test_a_span_is_heard_once_a_tool_calls_reply_after_the_same_speech() -> None:
    voices = Voices(user=[span(8.0, 10.0)])
    claimed: set[int] = set()
    first = turn_heard(turn(first_audio_s=math.nan), voices, claimed)  # the tool call
    second = turn_heard(turn(first_audio_s=11.0), voices, claimed)
    third = turn_heard(turn(first_audio_s=12.0), voices, claimed)  # no new speech
    assert math.isnan(first["user_speech_end_s"])
    assert second["latency_heard_first_audio_ms"] == 1000.0
    assert math.isnan(third["user_speech_end_s"])


def test_barge_in_reaction_and_talk_over() -> None:
    """The user speaks from 11.2 s over a reply playing from 10.5 s; the server stopped
    sending at 11.0 (before) and cancelled at 11.3; the client played 900 ms."""
    voices = Voices(user=[span(8.0, 10.0), span(11.2, 12.0)])
    row = turn(
        interrupted=True, played_ms=900.0, status_reason="turn_detected", response_done_s=11.3
    )
    heard = turn_heard(row, voices, set())
    assert heard["barge_in_s"] == 11.2
    assert round(heard["latency_barge_in_stop_ms"], 3) == -200.0
    assert round(heard["latency_barge_in_cancel_ms"], 3) == 100.0
    assert round(heard["talk_over_ms"], 3) == 200.0  # 11.2 .. 11.4, where playback stopped
    assert heard["false_barge_in"] is False


def test_planted_false_barge_ins_are_flagged() -> None:
    """The server cut the reply for a cough (100 ms) or for nothing at all."""
    row = turn(interrupted=True, played_ms=900.0, status_reason="turn_detected")
    cough = Voices(user=[span(8.0, 10.0), span(11.0, 11.1)])
    assert turn_heard(row, cough, set())["false_barge_in"] is True
    nothing = Voices(user=[span(8.0, 10.0)])
    assert turn_heard(row, nothing, set())["false_barge_in"] is True
    # a session without any user speech found: its audio is not there to judge
    assert turn_heard(row, Voices(), set())["false_barge_in"] is None
    # a client's own cancel is no barge-in to judge
    cancelled = turn(interrupted=True, status_reason="client_cancelled")
    assert turn_heard(cancelled, nothing, set())["false_barge_in"] is None


def test_planted_microphone_faults_are_flagged() -> None:
    clipping = Voices(user=[span(8.0, 10.0, (-6.0, 0.0, 0.02))])
    quiet = Voices(user=[span(8.0, 10.0, (-48.0, -30.0, 0.0))])
    assert turn_heard(turn(), clipping, set())["mic_flag"] == "clipping"
    assert turn_heard(turn(), quiet, set())["mic_flag"] == "quiet"
    assert turn_heard(turn(), quiet, set())["user_rms_dbfs"] == -48.0


def test_planted_dead_air_inside_a_reply() -> None:
    """The reply's audio is silent for 1.5 s between two spans of speech."""
    reply = [
        Span(10.5, 10.6, 1000.0, (-20.0, -3.0, 0.0), 0.0, 1000.0),
        Span(10.7, 10.8, 1000.0, (-20.0, -2.0, 0.0), 2500.0, 3500.0),
    ]
    voices = Voices(user=[span(8.0, 10.0)], replies={"r1": reply}, first_voice={"r1": 10.5})
    heard = turn_heard(turn(), voices, set())
    assert heard["reply_dead_air_ms"] == 1500.0
    assert heard["reply_rms_dbfs"] == -20.0 and heard["reply_peak_dbfs"] == -2.0


def test_a_format_1_capture_has_the_columns_through_read_time_decoding() -> None:
    """samples/seed-beta.parquet (format 1: no recorded events) decoded at read time; its audio
    is a few bytes holding no speech, so nothing is heard."""
    seed = Path(__file__).resolve().parents[1] / "samples" / "seed-beta.parquet"
    answer = CliRunner().invoke(cli, ["report", str(seed), "--format", "json"])
    assert answer.exit_code == 0, answer.output
    (turn_dict,) = json.loads(answer.stdout)["sessions"][0]["turns"]
    assert turn_dict["user_speech_end_s"] is None and turn_dict["false_barge_in"] is None
    assert turn_dict["latency_ms"]["heard_first_audio"] is None
    assert set(turn_dict["levels"]) == {
        "user_rms_dbfs",
        "user_peak_dbfs",
        "user_clipped_share",
        "reply_rms_dbfs",
        "reply_peak_dbfs",
    }


def test_planted_false_turn_the_server_vad_heard_nothing() -> None:
    """The server declared speech from 20.0 to 21.0 s; the audio holds none there (noise the
    server took for speech), or only a 100 ms click."""
    row = turn(trigger="vad", speech_started_s=20.0, speech_stopped_s=21.0, first_audio_s=21.5)
    assert turn_heard(row, Voices(user=[span(8.0, 10.0)]), set())["false_turn"] is True
    click = Voices(user=[span(8.0, 10.0), span(20.2, 20.3)])
    assert turn_heard(row, click, set())["false_turn"] is True
    # Speech that began before the server said so (its VAD needs some audio) counts.
    spoken = Voices(user=[span(19.7, 20.9)])
    assert turn_heard(row, spoken, set())["false_turn"] is False
    assert turn_heard(turn(trigger="commit"), spoken, set())["false_turn"] is None
    assert turn_heard(row, Voices(), set())["false_turn"] is None


def test_turns_of_several_sessions_at_once_each_hear_their_own_session() -> None:
    """heard_columns over a window: a session's turns pair only with its own spans, and a span
    heard by one turn is not heard again by the next turn of the same session."""
    a = Voices(user=[span(8.0, 10.0), span(11.2, 12.0)], first_voice={"r1": 10.75})
    b = Voices(user=[span(9.0, 10.2)])
    rows = [
        {**turn(), "session_id": "a"},
        {**turn(first_audio_s=13.0, response_id="r2"), "session_id": "a"},
        {**turn(), "session_id": "b"},
        {**turn(), "session_id": "c"},  # no speech found in this session
    ]
    turns = {c: [r.get(c) for r in rows] for c in HEARD_INPUTS}
    found = heard_columns(turns, {"a": a, "b": b})
    assert found["user_speech_end_s"][:3] == [10.0, 12.0, 10.2]
    assert math.isnan(found["user_speech_end_s"][3])
    assert found["latency_heard_first_audio_ms"][:3] == [500.0, 1000.0, 300.0]
    assert found["first_voice_s"][0] == 10.75 and math.isnan(found["first_voice_s"][2])
    assert found["barge_in_s"][0] == 11.2 and math.isnan(found["barge_in_s"][2])
    assert found["talk_over_ms"] == [800.0, 0.0, 0.0, 0.0]  # 11.2 .. 12.0 over a's first reply
