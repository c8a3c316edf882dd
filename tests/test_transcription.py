"""Transcription: the adapter's events, the turn columns and the report of speech-to-text
sessions (GA ``session.type: "transcription"``, beta ``transcription_session.*``) and of the
input transcription of voice sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analyzer.kinds import Kind
from analyzer.protocols import Frame
from analyzer.protocols.realtime import RealtimeDecoder
from analyzer.reader import read_capture
from analyzer.report import build_report
from tests.capture_factory import T0, Event, appends, write_capture

GA_TRANSCRIPTION_URL = "wss://api.openai.com/v1/realtime?intent=transcription"
LOGPROBS = [
    {"token": "Hello", "logprob": -0.1, "bytes": [72]},
    {"token": " there", "logprob": -0.3, "bytes": [32]},
]


def decode(facts: dict[str, Any], frames: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    decoder = RealtimeDecoder(facts)
    out = []
    for seq, (direction, event) in enumerate(frames):
        frame = Frame(
            seq=seq,
            time_s=T0 + seq,
            direction=direction,
            event_type=event["type"],
            item_id=event.get("item_id"),
            event=event,
        )
        out += decoder.feed(frame)
    return out


def ga_transcription_session(model: str = "gpt-4o-transcribe") -> dict[str, Any]:
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": "sess_1",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": model, "language": "en"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
            }
        },
        "include": ["item.input_audio_transcription.logprobs"],
    }


def test_the_adapter_reads_kind_model_usage_and_logprobs() -> None:
    events = decode(
        {"url": GA_TRANSCRIPTION_URL},
        [
            ("server", {"type": "session.created", "session": ga_transcription_session()}),
            (
                "server",
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": "u1",
                    "delta": "Hello",
                    "logprobs": LOGPROBS[:1],
                },
            ),
            (
                "server",
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "u1",
                    "transcript": "Hello there",
                    "usage": {
                        "type": "tokens",
                        "input_tokens": 14,
                        "output_tokens": 3,
                        "total_tokens": 17,
                        "input_token_details": {"text_tokens": 2, "audio_tokens": 12},
                    },
                    "logprobs": LOGPROBS,
                },
            ),
            (
                "server",
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "u2",
                    "transcript": "Bye",
                    "usage": {"type": "duration", "seconds": 1.5},
                },
            ),
        ],
    )
    config, delta, tokens, duration = events
    assert (config["kind"], config["session_kind"], config["transcription_model"]) == (
        Kind.CONFIG,
        "transcription",
        "gpt-4o-transcribe",
    )
    assert (delta["logprob_count"], delta["logprob_mean"]) == (1, -0.1)
    assert tokens["kind"] == Kind.USER_TRANSCRIPT
    assert (tokens["input_tokens"], tokens["output_tokens"], tokens["total_tokens"]) == (14, 3, 17)
    assert (tokens["input_text_tokens"], tokens["input_audio_tokens"]) == (2, 12)
    assert (tokens["logprob_count"], tokens["logprob_mean"]) == (2, -0.2)
    assert duration["audio_seconds"] == 1.5 and "input_tokens" not in duration


@pytest.mark.parametrize(
    ("url", "frames", "kind"),
    [
        # The URL's intent says so before any config does.
        (
            GA_TRANSCRIPTION_URL,
            [("client", {"type": "session.update", "session": {}})],
            "transcription",
        ),
        # Beta names its transcription events apart.
        (
            "wss://api.openai.com/v1/realtime?intent=transcription",
            [("server", {"type": "transcription_session.updated", "session": {}})],
            "transcription",
        ),
        (
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
            [("server", {"type": "session.created", "session": {"type": "realtime"}})],
            "conversation",
        ),
        # A beta voice session says nothing of its kind.
        (
            "wss://x/v1/realtime?model=m",
            [("server", {"type": "session.created", "session": {}})],
            None,
        ),
    ],
)
def test_the_session_kind_comes_from_type_event_names_or_intent(
    url: str, frames: list[tuple[str, dict[str, Any]]], kind: str | None
) -> None:
    (config,) = decode({"url": url}, frames)
    assert config["session_kind"] == kind


def transcription_events(manual: bool = False) -> list[Event]:
    """Two utterances of a GA transcription session: server VAD (or manual commits), two
    deltas each with log probabilities, then the transcript with token usage."""
    session = ga_transcription_session()
    if manual:
        session["audio"]["input"]["turn_detection"] = None
    events: list[Event] = [(T0, "server", {"type": "session.created", "session": session})]
    for n, start in enumerate((T0 + 1.0, T0 + 3.0), start=1):
        item = f"u{n}"
        events += appends(start, 5, 4800, gap_s=0.1)
        if manual:
            end = start + 0.6
            events.append((end, "client", {"type": "input_audio_buffer.commit"}))
        else:
            end = start + 0.6
            events += [
                (start + 0.1, "server", {"type": "input_audio_buffer.speech_started",
                                         "audio_start_ms": 0, "item_id": item}),
                (end, "server", {"type": "input_audio_buffer.speech_stopped",
                                 "audio_end_ms": 500, "item_id": item}),
            ]  # fmt: skip
        events += [
            (end + 0.01, "server", {"type": "input_audio_buffer.committed", "item_id": item,
                                    "previous_item_id": None}),
            (end + 0.08, "server", {"type": "conversation.item.input_audio_transcription.delta",
                                    "item_id": item, "delta": "Hello", "logprobs": LOGPROBS[:1]}),
            (end + 0.12, "server", {"type": "conversation.item.input_audio_transcription.delta",
                                    "item_id": item, "delta": " there",
                                    "logprobs": LOGPROBS[1:]}),
            (end + 0.2, "server", {"type": "conversation.item.input_audio_transcription.completed",
                                   "item_id": item, "transcript": "Hello there",
                                   "usage": {"type": "tokens", "input_tokens": 10 * n,
                                             "output_tokens": 3, "total_tokens": 10 * n + 3,
                                             "input_token_details": {"text_tokens": 0,
                                                                     "audio_tokens": 10 * n}},
                                   "logprobs": LOGPROBS}),
        ]  # fmt: skip
    return events


@pytest.mark.parametrize("manual", [False, True])
def test_a_transcription_session_report(tmp_path: Path, manual: bool) -> None:
    path = write_capture(tmp_path, transcription_events(manual), url=GA_TRANSCRIPTION_URL)
    report = build_report(read_capture(path))
    (session,) = report["sessions"]
    assert session["kind"] == "transcription"
    assert session["model"] == session["transcription_model"] == "gpt-4o-transcribe"
    turns = session["turns"]
    assert [t["trigger"] for t in turns] == ["commit" if manual else "vad"] * 2
    first = turns[0]
    assert first["user_transcript"] == "Hello there" and first["response_id"] is None
    assert first["latency_ms"]["transcription_first_delta"] == 80.0
    assert first["latency_ms"]["transcription"] == 200.0
    assert first["transcription_deltas"] == 2
    assert first["transcription_usage"] == {
        "input_tokens": 10,
        "output_tokens": 3,
        "total_tokens": 13,
        "input_text_tokens": 0,
        "input_audio_tokens": 10,
        "audio_seconds": None,
    }
    assert first["transcription_logprobs"] == {"count": 2, "mean": -0.2}
    # gpt-4o-transcribe: $6 per 1M audio input tokens, $10 per 1M output tokens.
    assert first["transcription_cost_usd"] == round((10 * 6 + 3 * 10) / 1e6, 6)
    assert turns[1]["transcription_cost_usd"] == round((20 * 6 + 3 * 10) / 1e6, 6)
    assert session["transcription_usage"] == {
        "transcriptions": 2,
        "input_tokens": 30,
        "output_tokens": 6,
        "total_tokens": 36,
        "input_text_tokens": 0,
        "input_audio_tokens": 30,
        "audio_seconds": None,
    }
    assert session["transcription_cost"] == {
        "usd": round((30 * 6 + 6 * 10) / 1e6, 6),
        "priced_as": "gpt-4o-transcribe",
        "note": "estimate from list prices",
    }
    assert session["cost"]["usd"] is None and "transcription session" in session["cost"]["note"]
    summary = report["summary"]
    assert summary["transcription_sessions"] == 1 and summary["cost_unpriced_sessions"] == 0
    assert summary["transcription_cost_usd"] == session["transcription_cost"]["usd"]
    assert summary["latency_ms"]["transcription_first_delta"]["count"] == 2


def test_duration_usage_is_priced_by_the_minute(tmp_path: Path) -> None:
    events = transcription_events()
    for _, _, event in events:
        if isinstance(event, dict) and event.get("type", "").endswith("completed"):
            event["usage"] = {"type": "duration", "seconds": 30.0}
        if isinstance(event, dict) and event.get("type") == "session.created":
            event["session"]["audio"]["input"]["transcription"]["model"] = "gpt-realtime-whisper"
    path = write_capture(tmp_path, events, url=GA_TRANSCRIPTION_URL)
    (session,) = build_report(read_capture(path))["sessions"]
    turn = session["turns"][0]
    assert turn["transcription_usage"]["audio_seconds"] == 30.0
    assert turn["transcription_usage"]["total_tokens"] is None
    assert turn["transcription_cost_usd"] == 0.0085  # half a minute at $0.017
    assert session["transcription_cost"]["usd"] == 0.017
    assert session["transcription_usage"]["audio_seconds"] == 60.0


def test_an_unpriced_transcriber_says_so(tmp_path: Path) -> None:
    events = transcription_events()
    events[0][2]["session"]["audio"]["input"]["transcription"]["model"] = "acme-stt"  # type: ignore[index]
    path = write_capture(tmp_path, events, url=GA_TRANSCRIPTION_URL)
    (session,) = build_report(read_capture(path))["sessions"]
    assert session["model"] == "acme-stt"
    assert session["transcription_cost"]["usd"] is None
    assert (
        session["transcription_cost"]["note"]
        == "no price for model 'acme-stt'; pass --prices FILE."
    )
