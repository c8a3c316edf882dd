"""What the proxy prints while recording: one line per finished turn.

Realtime sessions are followed from their event types (as they always were); sessions of every
other protocol (GPT-Live, Gemini Live) from their adapter's normalized events
(:mod:`analyzer.recording.live_events`), which :meth:`LiveTurnLog.start` sets up from the
session's facts. Nothing here loads pyarrow or numpy: the proxy's process imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.protocols.realtime_events import SERVER_AUDIO_EVENTS
from analyzer.recording.frames import FrameRecord
from analyzer.recording.live_events import EventTurnLog

_TURN_STARTS = frozenset({"input_audio_buffer.speech_stopped"})
_MANUAL_TURN_STARTS = frozenset({"input_audio_buffer.commit", "response.create"})


@dataclass(slots=True)
class _SessionTurns:
    turns: int = 0
    turn_start_s: float | None = None
    turn_start_event: str | None = None
    first_audio_s: float | None = None
    audio_bytes: int = 0


class LiveTurnLog:
    """Follows each session's turns and returns a log line when a response is done."""

    def __init__(self) -> None:
        self._sessions: dict[str, _SessionTurns] = {}
        self._by_events = EventTurnLog()

    def start(self, facts: Mapping[str, Any]) -> None:
        """A session begins: one of another protocol than Realtime is followed by its events."""
        self._by_events.start(facts)

    def observe(self, rec: FrameRecord) -> str | None:
        if self._by_events.follows(rec.session_id):
            return self._by_events.observe(rec)
        event_type = rec.event_type
        if event_type is None:
            return None
        state = self._sessions.setdefault(rec.session_id, _SessionTurns())
        if event_type in _TURN_STARTS or (
            event_type in _MANUAL_TURN_STARTS
            and rec.direction == "client"
            and state.turn_start_event not in _TURN_STARTS
        ):
            if state.turn_start_s is None or event_type in _TURN_STARTS:
                state.turn_start_s = rec.time_s
                state.turn_start_event = event_type
        elif event_type in SERVER_AUDIO_EVENTS:
            if state.first_audio_s is None:
                state.first_audio_s = rec.time_s
            state.audio_bytes += rec.audio_bytes or 0
        elif event_type == "response.done":
            return self._finish(rec.session_id, state)
        return None

    def _finish(self, session_id: str, state: _SessionTurns) -> str:
        state.turns += 1
        if state.turn_start_s is not None and state.first_audio_s is not None:
            latency = f"{(state.first_audio_s - state.turn_start_s) * 1000:.0f} ms"
        else:
            latency = "n/a"
        start = (state.turn_start_event or "start").rsplit(".", 1)[-1]
        line = (
            f"rt: session {session_id[:8]} turn {state.turns}: {start} -> first audio {latency}, "
            f"reply audio {state.audio_bytes} bytes"
        )
        state.turn_start_s = state.first_audio_s = state.turn_start_event = None
        state.audio_bytes = 0
        return line

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._by_events.forget(session_id)
