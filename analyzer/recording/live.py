"""What the proxy prints while recording: one line per finished reply, from the events the
recorder has just decoded for the frame (every protocol through its adapter), so the line says
what the report will say.

A turn starts at the end of the user's speech (``speech_end``, at the time the adapter places
it: Realtime's ``speech_stopped``; GPT-Live's input transcript ``end_ms`` mapped to when that
audio passed the proxy) or, without one, at the client's commit / reply request; its line is
printed at the reply's end, with the time to its first audio and the reply audio's bytes.
Nothing here loads pyarrow or numpy: the proxy's process imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.kinds import Kind
from analyzer.recording.frames import FrameRecord

_MANUAL_STARTS = {Kind.USER_AUDIO_COMMIT.value: "commit", Kind.REPLY_REQUEST.value: "request"}


@dataclass(slots=True)
class _Turn:
    turns: int = 0
    start_s: float | None = None
    start: str | None = None
    first_audio_s: float | None = None
    audio_bytes: int = 0


class LiveTurnLog:
    """Follows each session's turns through its frames' normalized events (``rec.events``)."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    def observe(self, rec: FrameRecord) -> str | None:
        """The line of the reply this frame ends, if it ends one."""
        state = self._turns.setdefault(rec.session_id, _Turn())
        line = None
        for event in rec.events or ():
            kind = event.get("kind")
            if kind == Kind.SPEECH_END:
                state.start_s, state.start = _at(event, rec.time_s), "speech_end"
            elif kind in _MANUAL_STARTS and state.start is None:
                state.start_s, state.start = rec.time_s, _MANUAL_STARTS[str(kind)]
            elif kind == Kind.REPLY_AUDIO:
                if state.first_audio_s is None:
                    state.first_audio_s = rec.time_s
                state.audio_bytes += _int(event.get("audio_bytes"), rec.audio_bytes)
            elif kind == Kind.REPLY_END and (state.start or state.first_audio_s is not None):
                line = _finish(rec.session_id, state)  # a late usage-only end finds neither
        return line

    def forget(self, session_id: str) -> None:
        self._turns.pop(session_id, None)


def _at(event: Mapping[str, Any], default: float) -> float:
    at = event.get("at_s")
    return float(at) if isinstance(at, int | float) and math.isfinite(at) else default


def _int(value: Any, default: int | None) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return default or 0


def _finish(session_id: str, state: _Turn) -> str:
    state.turns += 1
    if state.start_s is not None and state.first_audio_s is not None:
        latency = f"{(state.first_audio_s - state.start_s) * 1000:.0f} ms"
    else:
        latency = "n/a"
    line = (
        f"rt: session {session_id[:8]} turn {state.turns}: {state.start or 'start'} -> first "
        f"audio {latency}, reply audio {state.audio_bytes} bytes"
    )
    state.start_s = state.first_audio_s = state.start = None
    state.audio_bytes = 0
    return line
