"""Small synthetic captures with exact, known times, written by the real recording code."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from analyzer.replay import frames_from_markdown

# (time_s, "client" | "server", event dict or raw frame text)
Event = tuple[float, str, dict[str, Any] | str]

T0 = 1_700_000_000.0
SEED = Path(__file__).resolve().parents[1] / "samples" / "seed" / "000_9c718be50efc71e4.txt"
GA_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
BETA_URL = "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview-2024-10-01"


def b64(n_bytes: int, fill: int = 0) -> str:
    """Base64 text of ``n_bytes`` of audio."""
    return base64.b64encode(bytes([fill]) * n_bytes).decode()


def record_sessions(
    directory: Path,
    sessions: Mapping[str, Sequence[Event]],
    run_id: str = "rt-test",
    url: str = GA_URL,
    beta_header: bool = False,
    keep_audio: bool = True,
) -> RunRecorder:
    """Record each session's events through a real :class:`RunRecorder` (journal + Parquet)."""
    run = RunRecorder(directory, run_id=run_id)
    headers = [("OpenAI-Beta", "realtime=v1")] if beta_header else []
    for session_id, events in sessions.items():
        start = events[0][0] if events else T0
        run.start_session(handshake_facts(session_id, run_id, url, headers, [], start, keep_audio))
        for seq, (time_s, direction, event) in enumerate(events):
            text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
            rec = build_frame(
                session_id,
                seq,
                time_s,
                direction == "client",
                True,
                text.encode(),
                keep_audio,
                run.audio_paths(session_id),
            )
            run.record_frame(rec)
        end = events[-1][0] + 1.0 if events else start
        run.end_session(session_id, end_s=end, close_code=1000, closed_by_client=True)
    run.close()
    return run


def write_capture(
    directory: Path,
    events: Sequence[Event],
    session_id: str = "sess-1",
    run_id: str = "rt-test",
    url: str = GA_URL,
    beta_header: bool = False,
) -> Path:
    """One session's capture; returns the Parquet path (the journal sits beside it)."""
    run = record_sessions(directory, {session_id: events}, run_id, url, beta_header)
    return run.parquet_path


def seed_events(start_s: float = T0, gap_s: float = 0.1) -> list[Event]:
    """The seed session's frames in order, ``gap_s`` apart, as sent (text kept verbatim)."""
    return [
        (start_s + i * gap_s, frame.direction, frame.text)
        for i, frame in enumerate(frames_from_markdown(SEED))
    ]


def seed_capture(tmp_path: Path) -> Path:
    """The seed (a real beta session) as a capture, frames 100 ms apart."""
    return write_capture(
        tmp_path,
        seed_events(),
        session_id="seed",
        run_id="rt-seed",
        url=BETA_URL,
        beta_header=True,
    )


# --- building blocks for GA sessions --------------------------------------------------------


def ga_session_created(t: float, silence_ms: int | None = 500) -> Event:
    detection = (
        None if silence_ms is None else {"type": "server_vad", "silence_duration_ms": silence_ms}
    )
    return (
        t,
        "server",
        {
            "type": "session.created",
            "event_id": "ev_s",
            "session": {
                "type": "realtime",
                "model": "gpt-realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": detection,
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
                },
            },
        },
    )


def usage(
    input_text: int, input_audio: int, output_text: int, output_audio: int, cached: int = 0
) -> dict[str, Any]:
    inp = input_text + input_audio
    out = output_text + output_audio
    return {
        "total_tokens": inp + out,
        "input_tokens": inp,
        "output_tokens": out,
        "input_token_details": {
            "text_tokens": input_text,
            "audio_tokens": input_audio,
            "cached_tokens": cached,
        },
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def ga_response(
    t: float,
    response_id: str,
    item_id: str,
    previous_item_id: str | None,
    transcript: str,
    audio_deltas: Sequence[tuple[float, int]],
    done_after_s: float,
    status: str = "completed",
    reason: str | None = None,
    tokens: dict[str, Any] | None = None,
    transcript_done: bool = True,
) -> list[Event]:
    """A GA response starting at ``t``: created, item added, one transcript delta per word at
    ``t + 0.01``, audio deltas at ``t + offset`` of ``n`` bytes each, transcript done, done."""
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
    events: list[Event] = [
        (t, "server", {"type": "response.created", "response": {"id": response_id}}),
        (
            t + 0.001,
            "server",
            {"type": "response.output_item.added", "response_id": response_id, "item": item},
        ),
        (
            t + 0.002,
            "server",
            {"type": "conversation.item.added", "previous_item_id": previous_item_id, "item": item},
        ),
    ]
    for i, word in enumerate(transcript.split(" ")):
        delta = word if i == 0 else " " + word
        events.append(
            (
                t + 0.01 + i * 0.001,
                "server",
                {
                    "type": "response.output_audio_transcript.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "delta": delta,
                },
            )
        )
    for offset, n in audio_deltas:
        events.append(
            (
                t + offset,
                "server",
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "delta": b64(n),
                },
            )
        )
    end = t + done_after_s
    if transcript_done:
        events.append(
            (
                end - 0.002,
                "server",
                {
                    "type": "response.output_audio_transcript.done",
                    "response_id": response_id,
                    "item_id": item_id,
                    "transcript": transcript,
                },
            )
        )
    done_item = dict(item, status="completed" if status == "completed" else "incomplete")
    events.append(
        (
            end,
            "server",
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "status": status,
                    "status_details": None
                    if reason is None
                    else {"type": status, "reason": reason},
                    "output": [done_item],
                    "usage": tokens,
                },
            },
        )
    )
    return sorted(events, key=lambda e: e[0])


def ga_vad_user_turn(
    t_started: float,
    t_stopped: float,
    item_id: str,
    previous_item_id: str | None,
    audio_start_ms: int,
    audio_end_ms: int,
    transcript: str | None = None,
    transcript_after_s: float = 0.3,
) -> list[Event]:
    """speech_started, speech_stopped, committed (+1 ms), item added (+2 ms), transcription."""
    events: list[Event] = [
        (
            t_started,
            "server",
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": item_id,
            },
        ),
        (
            t_stopped,
            "server",
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            },
        ),
        (
            t_stopped + 0.001,
            "server",
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous_item_id,
                "item_id": item_id,
            },
        ),
        (
            t_stopped + 0.002,
            "server",
            {
                "type": "conversation.item.added",
                "previous_item_id": previous_item_id,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "status": "completed",
                    "content": [{"type": "input_audio", "transcript": None}],
                },
            },
        ),
    ]
    if transcript is not None:
        events.append(
            (
                t_stopped + transcript_after_s,
                "server",
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": transcript,
                },
            )
        )
    return events


def appends(t: float, count: int, n_bytes: int, gap_s: float = 0.02) -> list[Event]:
    """``count`` client audio appends of ``n_bytes`` each, ``gap_s`` apart from ``t``."""
    return [
        (t + i * gap_s, "client", {"type": "input_audio_buffer.append", "audio": b64(n_bytes)})
        for i in range(count)
    ]


def ordered(*parts: Sequence[Event]) -> list[Event]:
    """All events of ``parts`` in time order (stable)."""
    events = [e for part in parts for e in part]
    return sorted(events, key=lambda e: e[0])
