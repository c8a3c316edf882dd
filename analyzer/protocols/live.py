"""OpenAI GPT-Live (``/v1/live/sessions`` and its sideband ``.../{id}/attach``) as normalized
events.

GPT-Live has no speech events, no response or item ids on audio and no turn boundaries; this
decoder derives them:

* **User speech** is a run of input transcript deltas (``session.input_transcript.delta``):
  ``speech_start`` at the first one's ``start_ms``, ``speech_end`` at the run's last ``end_ms``,
  emitted when the reply to it begins. Both are positions on the session timeline, which is the
  user's audio clock (the audio the client appended, or the sideband saw reflected); ``at_s``
  maps them to capture time: when the append holding that millisecond passed the proxy.
* **A reply** is a run of output audio (and output transcript) after user speech; its ids are
  made up (``live_reply_N``). It ends when the user speaks next: **cancelled / turn_detected**
  when the user started before the reply had played out on the timeline (sideband: the
  reflected audio's ``end_ms``; primary socket: each chunk plays after the one before it and
  not before it arrived), else completed; its end is timed at its last audio chunk.
* **Usage**: ``session.usage.updated`` / ``session.closed`` give cumulative audio seconds
  (``usage`` events); the delegated Responses backend's token usage (``response.event``) is
  added to the reply that follows it.

So latency is end of user speech in the audio -> first reply audio at the proxy.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from analyzer.formats import OPENAI_PCM, AudioFormat, parse_format
from analyzer.kinds import Kind
from analyzer.protocols import Event, Frame
from analyzer.protocols.audio_paths import AudioPaths, declare
from analyzer.protocols.realtime_fields import item_fields

# Paths this adapter records and decodes (matched anywhere in the URL, as mitmproxy's ``~u``).
ENDPOINTS: tuple[str, ...] = (r"/live/sessions($|[?])", r"/live/sessions/[^/?]+/attach($|[?])")
_ENDPOINT_RE = re.compile("|".join(ENDPOINTS))
# Events carrying base64 audio, and the field that holds it (the recorder cuts it out).
AUDIO_FIELD_BY_EVENT: dict[str, str] = {
    "session.input_audio.append": "audio",
    "session.output_audio.delta": "delta",
    "session.output_audio.fixture.play": "audio",
}
APPENDS = frozenset(
    {"session.instructions.append", "session.thinking.append", "session.commentary.append"}
)
KNOWN_EVENTS = frozenset(
    {
        *AUDIO_FIELD_BY_EVENT,
        *APPENDS,
        "session.start", "session.started", "session.update", "session.updated",
        "session.close", "session.closed", "session.resumed", "session.paused",
        "session.input_audio.mute", "session.input_audio.unmute",
        "session.input_audio.muted", "session.input_audio.unmuted",
        "session.instructions.appended", "session.thinking.appended", "session.commentary.appended",
        "session.output_audio.fixture.playing", "session.output_audio.fixture.played",
        "session.input_transcript.delta", "session.output_transcript.delta",
        "session.usage.updated", "session.delegation.created", "response.event",
        "response.create", "response.item.create", "decision.create", "decision.event",
        "decision.item.create", "decision.item.created", "decision.item.delete",
        "decision.item.deleted", "info", "error", "transport.dtmf.send", "transport.dtmf.sent",
        "transport.dtmf.received", "transport.ringing", "transport.answered", "transport.failed",
    }
)  # fmt: skip
RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
REPLY_GAP_S = (
    2.0  # output audio after this long a pause, played out, with no user speech: a new reply
)
_NAN = float("nan")


def is_live_path(path: str | None) -> bool:
    return isinstance(path, str) and _ENDPOINT_RE.search(path) is not None


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _NAN


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _format(session: Any) -> AudioFormat | None:
    audio = session.get("audio") if isinstance(session, Mapping) else None
    wire = audio.get("format") if isinstance(audio, Mapping) else None
    return parse_format(dict(wire)) if isinstance(wire, Mapping) else None


def _responses_usage(usage: Any) -> dict[str, float]:
    if not isinstance(usage, Mapping):
        return {}
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    found = {
        "input_tokens": _num(usage.get("input_tokens")),
        "output_tokens": _num(usage.get("output_tokens")),
        "total_tokens": _num(usage.get("total_tokens")),
        "input_cached_tokens": _num(cached),
    }
    return {k: v for k, v in found.items() if not math.isnan(v)}


class LiveDecoder:
    """One GPT-Live socket (primary or sideband): the user's audio clock, the speech and reply
    being heard, and delegated token usage not yet given to a reply."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        path = facts.get("path")
        self.sideband = isinstance(path, str) and "/attach" in path
        self.input_format = self.output_format = OPENAI_PCM
        self.user_ms = 0.0  # the session timeline: user audio so far
        self.user_ends: list[float] = []  # each append's end on that clock ...
        self.user_times: list[float] = []  # ... and when it passed the proxy
        self.reply_ms = 0.0
        self.speech: dict[str, Any] | None = None
        self.reply: dict[str, Any] | None = None
        self.counts = {"user": 0, "reply": 0, "append": 0}
        self.tokens: dict[str, float] = {}

    def at_s(self, timeline_ms: float) -> float | None:
        """When the user audio at ``timeline_ms`` passed the proxy (None: not seen yet)."""
        index = bisect_left(self.user_ends, timeline_ms)
        return self.user_times[index] if index < len(self.user_times) else None

    def feed(self, frame: Frame) -> list[Event]:
        t = frame.event_type
        if t is None:
            return []
        if t not in KNOWN_EVENTS:
            return [{"kind": Kind.UNKNOWN, "name": t}]
        out: list[Event] = []
        event = frame.event
        if t == "session.input_audio.append":
            out.append(self._user_audio(frame))
        elif t in ("session.start", "session.started", "session.updated"):
            fmt = _format(event.get("session"))
            if fmt is not None and not self.sideband:
                self.input_format = self.output_format = fmt
            if t != "session.updated" or fmt is not None:
                out.append(self._config(frame.direction == "server"))
        elif t == "session.input_transcript.delta":
            self._user_transcript(frame, event, out)
        elif t in ("session.output_transcript.delta", "session.output_audio.delta"):
            self._reply_chunk(frame, event, out)
        elif t == "session.output_audio.fixture.play":
            self._close_reply(out, cancelled=True, reason="client_cancelled")
            self._reply_chunk(frame, event, out, fixture=True)
        elif t in APPENDS or t == "response.item.create":
            out.append(self._client_item(t, event))
        elif t in ("session.usage.updated", "session.closed"):
            usage = event.get("usage")
            seconds = _num(usage.get("seconds")) if isinstance(usage, Mapping) else _NAN
            if t == "session.closed":
                self._close_reply(out, cancelled=False, reason=None)
            out.append({"kind": Kind.USAGE, "audio_seconds": seconds})
        elif t == "response.event":
            self._delegated(event.get("event"), out)
        elif t == "error":
            error = event.get("error")
            error = error if isinstance(error, Mapping) else {}
            out.append(
                {
                    "kind": Kind.ERROR,
                    "text": _text(error.get("message")),
                    "error_type": _text(error.get("type")),
                    "error_code": _text(error.get("code")),
                    "error_param": _text(error.get("param")),
                    "client_event_id": _text(error.get("client_event_id")),
                }
            )
        return out

    def _config(self, server: bool) -> Event:
        config: Event = {
            "kind": Kind.CONFIG,
            "input_format": f"{self.input_format.encoding}/{self.input_format.sample_rate}",
            "output_format": f"{self.output_format.encoding}/{self.output_format.sample_rate}",
        }
        if server:
            # Turns start at the end of speech in the audio: no silence window to add.
            config.update(turn_detection="live", silence_ms=0.0)
        return config

    def _ms(self, audio_bytes: int | None, fmt: AudioFormat) -> float:
        rate = fmt.bytes_per_second
        return (audio_bytes or 0) * 1000.0 / rate if rate else _NAN

    def _user_audio(self, frame: Frame) -> Event:
        fmt = OPENAI_PCM if self.sideband else self.input_format
        audio_ms = self._ms(frame.audio_bytes, fmt)
        chunk: Event = {
            "kind": Kind.USER_AUDIO,
            "audio_bytes": frame.audio_bytes,
            "audio_ms": audio_ms,
            "stream_ms": self.user_ms,
        }
        if not math.isnan(audio_ms):
            self.user_ms += audio_ms
            self.user_ends.append(self.user_ms)
            self.user_times.append(frame.time_s)
        return chunk

    def _user_transcript(self, frame: Frame, event: Mapping[str, Any], out: list[Event]) -> None:
        start, end = _num(event.get("start_ms")), _num(event.get("end_ms"))
        if self.speech is None:
            start = start if not math.isnan(start) else self.user_ms
            self._close_reply(out, cancelled=None, reason=None, user_start_ms=start)
            self.counts["user"] += 1
            item_id = f"live_user_{self.counts['user']}"
            self.speech = {"item_id": item_id, "start_ms": start, "end_ms": start, "text": []}
            out.append(
                {"kind": Kind.ITEM, "item_id": item_id, "role": "user", "item_kind": "message",
                 "status": "completed", "placed": False}
            )  # fmt: skip
            out.append({"kind": Kind.SPEECH_START, "stream_ms": start, "at_s": self.at_s(start)})
        if not math.isnan(end):
            self.speech["end_ms"] = max(self.speech["end_ms"], end)
        text = _text(event.get("delta"))
        self.speech["text"].append(text or "")
        self.speech["last_s"] = frame.time_s
        out.append(
            {
                "kind": Kind.USER_TRANSCRIPT_DELTA,
                "item_id": self.speech["item_id"],
                "text": text,
            }
        )

    def _reply_chunk(
        self, frame: Frame, event: Mapping[str, Any], out: list[Event], fixture: bool = False
    ) -> None:
        start = _num(event.get("start_ms"))
        reply = self.reply
        if reply is not None and self.speech is None and not fixture:
            paused = frame.time_s - reply["last_s"] > REPLY_GAP_S
            if paused and self.user_ms >= reply["end_ms"]:
                self._close_reply(out, cancelled=False, reason=None)
        if self.reply is None or fixture:
            self._open_reply(frame, start, out, "fixture" if fixture else None)
        reply = self.reply
        assert reply is not None
        ids = {"reply_id": reply["id"], "item_id": reply["item_id"]}
        if frame.event_type == "session.output_transcript.delta":
            out.append(
                {"kind": Kind.REPLY_TRANSCRIPT_DELTA, **ids, "text": _text(event.get("delta"))}
            )
            return
        fmt = OPENAI_PCM if (self.sideband or fixture) else self.output_format
        audio_ms = self._ms(frame.audio_bytes, fmt)
        out.append(
            {
                "kind": Kind.REPLY_AUDIO,
                **ids,
                "audio_bytes": frame.audio_bytes,
                "audio_ms": audio_ms,
                "stream_ms": self.reply_ms,
            }
        )
        if math.isnan(audio_ms):
            return
        self.reply_ms += audio_ms
        reply["audio_ms"] += audio_ms
        reply["last_s"] = frame.time_s
        end = _num(event.get("end_ms"))
        if not math.isnan(end):  # the sideband says where it plays
            reply["end_ms"] = max(reply["end_ms"], end)
        else:  # it plays after the audio before it, and not before it arrived
            reply["end_ms"] = max(reply["end_ms"], self.user_ms) + audio_ms

    def _open_reply(self, frame: Frame, start: float, out: list[Event], reason: str | None) -> None:
        speech = self.speech
        if speech is not None:
            out.append(
                {
                    "kind": Kind.SPEECH_END,
                    "item_id": speech["item_id"],
                    "stream_ms": speech["end_ms"],
                    "at_s": self.at_s(speech["end_ms"]),
                }
            )
            # The speech's transcript is whole when its reply begins; the speech-to-text
            # latency is to its last delta.
            out.append(
                {"kind": Kind.USER_TRANSCRIPT, "item_id": speech["item_id"],
                 "transcript": "".join(speech["text"]), "at_s": speech["last_s"]}
            )  # fmt: skip
            self.speech = None
        self.counts["reply"] += 1
        n = self.counts["reply"]
        at = start if not math.isnan(start) else self.user_ms  # where it starts on the timeline
        self.reply = {"id": f"live_reply_{n}", "item_id": f"live_item_{n}", "start_ms": at,
                      "end_ms": at, "audio_ms": 0.0, "last_s": frame.time_s}  # fmt: skip
        out.append({"kind": Kind.REPLY_START, "reply_id": self.reply["id"], "reason": reason})
        out.append(
            {"kind": Kind.REPLY_ITEM, "stage": "added", "reply_id": self.reply["id"],
             "item_id": self.reply["item_id"], "role": "assistant", "item_kind": "message",
             "status": "in_progress"}
        )  # fmt: skip

    def _close_reply(
        self,
        out: list[Event],
        cancelled: bool | None,
        reason: str | None,
        user_start_ms: float = _NAN,
    ) -> None:
        """End the open reply; ``cancelled=None``: cut off if the user (from
        ``user_start_ms``) spoke before it had played out."""
        reply = self.reply
        if reply is None:
            return
        self.reply = None
        if cancelled is None:
            cancelled = user_start_ms < reply["end_ms"]
            reason = "turn_detected" if cancelled else None
        status = "cancelled" if cancelled else "completed"
        ids = {"reply_id": reply["id"]}
        out.append(
            {"kind": Kind.REPLY_END, **ids, "status": status, "reason": reason,
             "at_s": reply["last_s"], **self.tokens}
        )  # fmt: skip
        self.tokens = {}
        out.append(
            {"kind": Kind.REPLY_ITEM, "stage": "final", **ids, "item_id": reply["item_id"],
             "role": "assistant", "item_kind": "message",
             "status": "incomplete" if cancelled else "completed"}
        )  # fmt: skip

    def _client_item(self, t: str, event: Mapping[str, Any]) -> Event:
        self.counts["append"] += 1
        made_up = f"live_append_{self.counts['append']}"
        if t in APPENDS:  # instructions, thinking, commentary: shown as such
            kind = t.removeprefix("session.").removesuffix(".append")
            return {"kind": Kind.ITEM_CREATE, "item_id": made_up, "role": "developer",
                    "item_kind": kind, "text": _text(event.get("content"))}  # fmt: skip
        item = event.get("item")
        item = item if isinstance(item, Mapping) else {}
        item_id = item.get("id") if isinstance(item.get("id"), str) else made_up
        return {"kind": Kind.ITEM_CREATE, "item_id": item_id, **item_fields(item)}

    def _delegated(self, nested: Any, out: list[Event]) -> None:
        """The delegated Responses stream: tool calls, the backend's text, token usage."""
        if not isinstance(nested, Mapping):
            return
        t = nested.get("type")
        item = nested.get("item")
        if t == "response.output_item.done" and isinstance(item, Mapping):
            if item.get("type") == "function_call":
                out.append(
                    {"kind": Kind.TOOL_CALL, "item_id": _text(item.get("id")),
                     "name": _text(item.get("name")), "call_id": _text(item.get("call_id")),
                     "arguments": _text(item.get("arguments"))}
                )  # fmt: skip
        elif t == "response.output_text.done":
            out.append(
                {"kind": Kind.ITEM, "item_id": _text(nested.get("item_id")), "role": "assistant",
                 "item_kind": "message", "status": "completed", "placed": False,
                 "text": _text(nested.get("text"))}
            )  # fmt: skip
        elif t in RESPONSE_ENDS:
            response = nested.get("response")
            usage = response.get("usage") if isinstance(response, Mapping) else None
            for name, value in _responses_usage(usage).items():
                self.tokens[name] = self.tokens.get(name, 0.0) + value


# Where GPT-Live carries base64 audio (openai 3.60 ``types/live/``): the client's appends and
# fixtures, the server's output deltas (reflected on the sideband too).
AUDIO_PATHS: dict[str, AudioPaths] = declare(
    {event_type: [field] for event_type, field in AUDIO_FIELD_BY_EVENT.items()}
)


class LiveAdapter:
    name = "live"
    endpoints = ENDPOINTS

    def decoder(self, facts: Mapping[str, Any]) -> LiveDecoder:
        return LiveDecoder(facts)

    def needs_event(self, event_type: str | None) -> bool:
        return event_type != "session.input_audio.append"

    def audio_paths(self, event_type: str) -> AudioPaths:
        return AUDIO_PATHS.get(event_type, ())

    # The sideband socket is never told the session's id: only the primary's session.started.
    session_events = frozenset({"session.started"})

    def provider_session_id(self, event: Mapping[str, Any]) -> str | None:
        session = event.get("session")
        value = session.get("id") if isinstance(session, Mapping) else None
        return value if isinstance(value, str) and value else None


ADAPTER = LiveAdapter()
