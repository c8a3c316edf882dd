"""Each recorded frame's normalized events, decoded as it is written (format version 2): the
recorder's writer finds a frame's speech as the frame comes; ``convert`` (``deferred``) a
batch of frames at a time (``analyzer.voice_deferred``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.jsonio import loads_json
from analyzer.protocols import Adapter, Decoder, Event, Frame, adapter_for
from analyzer.recording.frames import FrameRecord
from analyzer.voice_deferred import DeferredVoices
from analyzer.voice_events import SessionVoices


class SessionDecoders:
    """Each session's protocol decoder, fed every frame of the session in order."""

    def __init__(
        self, sessions: Mapping[str, dict[str, Any]] | None = None, deferred: bool = False
    ) -> None:
        """``sessions``: where the facts of a session not started here are found. ``deferred``
        (``convert``): a frame's voice events are added to its events at :meth:`settle` (or
        its session's end), found for many frames at once; the recorder's writer finds them
        as each frame comes."""
        self._decoders: dict[str, tuple[Adapter, Decoder]] = {}
        self._voices: dict[str, SessionVoices] = {}
        self._deferred: dict[str, DeferredVoices] = {}
        self._sessions = sessions if sessions is not None else {}
        self.deferred = deferred

    def start(self, facts: dict[str, Any]) -> None:
        adapter = adapter_for(facts)
        session_id = str(facts["session_id"])
        self._decoders[session_id] = (adapter, adapter.decoder(facts))
        if self.deferred:
            if session_id in self._deferred:  # started again: what it found so far first
                self._deferred[session_id].settle()
            self._voices[session_id] = self._deferred[session_id] = DeferredVoices()
        else:
            self._voices[session_id] = SessionVoices()

    def events(self, rec: FrameRecord) -> list[Event]:
        """The frame's events. Decoded from the redacted ``content`` (what reaches disk), never
        from the raw event, so no secret can reach the events either."""
        if rec.session_id not in self._decoders:
            self.start(self._sessions.get(rec.session_id) or {"session_id": rec.session_id})
        adapter, decoder = self._decoders[rec.session_id]
        event: Any = {}
        if rec.content is not None and adapter.needs_event(rec.event_type):
            try:
                event = loads_json(rec.content)
            except ValueError:
                event = {}
        frame = Frame(
            seq=rec.seq,
            time_s=rec.time_s,
            direction=rec.direction,
            event_type=rec.event_type,
            item_id=rec.item_id,
            response_id=rec.response_id,
            audio_bytes=rec.audio_bytes,
            event=event if isinstance(event, dict) else {},
        )
        events = decoder.feed(frame)
        # Speech in the frame's audio, found before it is written (or its samples dropped).
        audio = rec.audio if rec.audio is not None else rec.dropped_audio
        rec.dropped_audio = None
        events.extend(self._voices[rec.session_id].feed(rec.time_s, events, audio))
        return events

    def settle(self) -> None:
        """Deferred: the voice events of every frame decoded so far added to its events."""
        for voices in self._deferred.values():
            voices.settle()

    def end(self, session_id: str) -> None:
        self._decoders.pop(session_id, None)
        self._voices.pop(session_id, None)
        voices = self._deferred.pop(session_id, None)
        if voices is not None:
            voices.settle()
