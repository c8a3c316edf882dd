"""Protocol adapters: the only code that knows a protocol's events.

An adapter turns one session's frames, in arrival order, into normalized events
(:data:`analyzer.schema.EVENT_STRUCT`, kinds :class:`analyzer.kinds.Kind`). It is a per-session
:class:`Decoder` fed one :class:`Frame` at a time: the recorder's writer feeds it live, and the
analyzer folds it over the frames of captures written before events were recorded. Everything
downstream (turns, latency, conversation, sizes, report) reads only normalized events.

See ``docs/architecture.md`` for the contract and how a new protocol plugs in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from analyzer.protocols.audio_paths import AudioPaths

Event = dict[str, Any]  # EVENT_STRUCT's fields that the event uses; the rest are null


@dataclass(slots=True)
class Frame:
    """What an adapter sees of one recorded frame (the capture schema's columns it needs)."""

    seq: int
    time_s: float
    direction: str  # "client" or "server"
    event_type: str | None
    item_id: str | None = None
    response_id: str | None = None
    audio_bytes: int | None = None
    event: Mapping[str, Any] = field(default_factory=dict)  # parsed JSON, {} when not parsed


class Decoder(Protocol):
    """One session's adapter state."""

    def feed(self, frame: Frame) -> list[Event]:
        """The normalized events this frame stands for (often none)."""
        ...


class Adapter(Protocol):
    """What every protocol module provides."""

    name: str
    endpoints: tuple[str, ...]  # URL regexes of its WebSocket endpoints (the recorder's filter)

    def decoder(self, facts: Mapping[str, Any]) -> Decoder:
        """A decoder for the session with these facts (host, path, dialect...)."""
        ...

    def needs_event(self, event_type: str | None) -> bool:
        """Whether :attr:`Frame.event` must be parsed for frames of this type (audio chunks
        are decoded from the capture's columns alone)."""
        ...

    def audio_paths(self, event_type: str) -> AudioPaths:
        """Every place base64 audio can sit in an event of this type, from the protocol's
        official types (see :mod:`analyzer.protocols.audio_paths`); empty when none, and then
        the recorder neither scans nor parses the frame for audio."""
        ...

    session_events: frozenset[str]  # the server event types that can name the session

    def provider_session_id(self, event: Mapping[str, Any]) -> str | None:
        """The provider's own id of the session, from a server event of one of
        :attr:`session_events` (support asks for it); None when it names none."""
        ...


def adapters() -> tuple[Adapter, ...]:
    """Every protocol adapter."""
    from analyzer.protocols import gemini, live, realtime

    return (realtime.ADAPTER, live.ADAPTER, gemini.ADAPTER)


def session_event_types() -> frozenset[str]:
    """Every adapter's :attr:`Adapter.session_events` (a cheap first test per frame)."""
    return frozenset().union(*(a.session_events for a in adapters()))


def adapter_for(facts: Mapping[str, Any]) -> Adapter:
    """The adapter of a session, from its facts (path, dialect)."""
    from analyzer.protocols import gemini, live, realtime

    if gemini.is_gemini(facts):
        return gemini.ADAPTER
    if facts.get("dialect") == "live" or live.is_live_path(facts.get("path")):
        return live.ADAPTER
    return realtime.ADAPTER


def default_filter() -> str:
    """The mitmproxy filter of every endpoint the adapters declare (WebSockets only)."""
    urls = " | ".join(f'~u "{pattern}"' for a in adapters() for pattern in a.endpoints)
    return f"~websocket & ({urls})"


def endpoint_pattern() -> str:
    """One regular expression matching the URL of every endpoint the adapters declare."""
    return "|".join(f"(?:{pattern})" for a in adapters() for pattern in a.endpoints)


AudioPathsOf = Callable[[str], AudioPaths]  # an adapter's ``audio_paths``


def streamed_audio_field(event_type: str) -> str | None:
    """The top-level field holding an audio chunk in events of this type (an append or a
    delta), in any protocol; None when the type carries no such field."""
    for adapter in adapters():
        for path in adapter.audio_paths(event_type):
            if path.streamed is not None:
                return path.streamed
    return None


def audio_paths_for(facts: Mapping[str, Any]) -> AudioPathsOf:
    """Where the recorder looks for audio in the frames of the session with these facts."""
    return adapter_for(facts).audio_paths


def decode_session(facts: Mapping[str, Any], frames: Iterable[Frame]) -> list[list[Event]]:
    """Each frame's events, in order (the adapter folded over a whole session)."""
    decoder = adapter_for(facts).decoder(facts)
    return [decoder.feed(frame) for frame in frames]
