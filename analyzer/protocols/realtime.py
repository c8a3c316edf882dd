"""OpenAI Realtime (beta and GA dialects, and the providers that copy it) as normalized events."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analyzer.formats import default_formats, formats_in_session, provider_of
from analyzer.kinds import Kind
from analyzer.protocols import Event, Frame
from analyzer.protocols.audio_paths import AudioPaths, declare
from analyzer.protocols.realtime_events import (
    AUDIO_TRANSCRIPT_DELTA_EVENTS,
    AUDIO_TRANSCRIPT_DONE_EVENTS,
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    KNOWN_EVENTS,
    SERVER_AUDIO_EVENTS,
    TEXT_DELTA_EVENTS,
    TEXT_DONE_EVENTS,
)
from analyzer.protocols.realtime_fields import (
    format_name,
    intent_of,
    item_fields,
    logprob_fields,
    non_empty_str,
    number,
    raw_str,
    session_kind_of,
    transcription_config,
    transcription_usage_fields,
    truncation,
    turn_detection,
    usage_fields,
)

TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
TRANSCRIPTION_FAILED = "conversation.item.input_audio_transcription.failed"
OUTPUT_ITEM_STAGES = {"response.output_item.added": "added", "response.output_item.done": "done"}

_NAN = float("nan")

# Every field of the protocol that holds base64 audio: each str field the official SDK's event
# types document as base64 audio (openai 3.60: ``types/realtime/`` with its translation sessions,
# ``types/beta/realtime/``; scripts/sdk_audio_paths.py lists them, tests/test_audio_paths.py
# checks this against its output). Items carry audio in ``content[].audio``: an ``input_audio``
# part the client sends or the server echoes, and the server's ``conversation.item.retrieved``
# holds a whole reply's audio there.
_ITEM_AUDIO = "item.content[*].audio?"
_RESPONSE_AUDIO = "response.output[*].content[*].audio?"
AUDIO_PATHS: dict[str, AudioPaths] = declare(
    {
        # client
        "input_audio_buffer.append": ["audio"],
        "conversation.item.create": [_ITEM_AUDIO],
        "response.create": ["response.input[*].content[*].audio?"],
        "session.input_audio_buffer.append": ["audio"],  # translation sessions
        # server
        "response.audio.delta": ["delta"],  # beta
        "response.output_audio.delta": ["delta"],  # GA
        "session.output_audio.delta": ["delta"],  # translation sessions
        "conversation.item.created": [_ITEM_AUDIO],
        "conversation.item.added": [_ITEM_AUDIO],
        "conversation.item.done": [_ITEM_AUDIO],
        "conversation.item.retrieved": [_ITEM_AUDIO],
        "response.output_item.added": [_ITEM_AUDIO],
        "response.output_item.done": [_ITEM_AUDIO],
        "response.content_part.added": ["part.audio?"],
        "response.content_part.done": ["part.audio?"],
        "response.created": [_RESPONSE_AUDIO],
        "response.done": [_RESPONSE_AUDIO],
    }
)
_NO_AUDIO: AudioPaths = ()


class RealtimeDecoder:
    """One Realtime session: formats in force, the input buffer, the replies seen."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        host, path = facts.get("host"), facts.get("path")
        self.provider = provider_of(
            host if isinstance(host, str) else None, path if isinstance(path, str) else None
        )
        self.input_format, self.output_format = default_formats(self.provider)
        self.appended = 0.0  # input audio bytes appended since the session began
        self.buffer_from = 0.0  # ... at the last commit or clear
        self.user_ms = 0.0  # the user's audio clock
        self.reply_ms = 0.0  # the reply audio clock
        self.replies: set[str] = set()
        # Until a config says, the kind the URL asked for (only transcription can be asked).
        self.session_kind = intent_of(facts.get("url"))

    def _buffer(self) -> Event:
        """Size and play time of the input audio appended since the last commit or clear."""
        size = self.appended - self.buffer_from
        self.buffer_from = self.appended
        rate = float(self.input_format.bytes_per_second or _NAN) / 1000.0
        audio_ms = round(size / rate, 3) if size > 0 else _NAN
        return {"audio_bytes": int(size), "audio_ms": audio_ms}

    def feed(self, frame: Frame) -> list[Event]:
        t = frame.event_type
        if t is None:
            return []
        out: list[Event] = []
        server = frame.direction == "server"
        event = frame.event
        response_id = frame.response_id
        if server and response_id is not None and response_id not in self.replies:
            self.replies.add(response_id)
            created = "created" if t == "response.created" else None
            out.append({"kind": Kind.REPLY_START, "reply_id": response_id, "reason": created})
        elif server and t == "response.created" and response_id is not None:
            out.append({"kind": Kind.REPLY_START, "reply_id": response_id, "reason": "created"})
        if t not in KNOWN_EVENTS:
            out.append({"kind": Kind.UNKNOWN, "name": t})
            return out
        if server:
            self._server(frame, t, event, out)
        else:
            self._client(frame, t, event, out)
        return out

    def _audio(self, frame: Frame, output: bool) -> Event:
        fmt = self.output_format if output else self.input_format
        size = frame.audio_bytes
        rate = fmt.bytes_per_second
        audio_ms = (size or 0) / (rate / 1000.0) if rate else _NAN
        clock = self.reply_ms if output else self.user_ms
        if not math.isnan(audio_ms):
            if output:
                self.reply_ms += audio_ms
            else:
                self.user_ms += audio_ms
        return {"audio_bytes": size, "audio_ms": audio_ms, "stream_ms": clock}

    def _config(self, frame: Frame, event: Mapping[str, Any], server: bool) -> Event | None:
        session = event.get("session")
        if not isinstance(session, dict):
            return None
        new_in, new_out = formats_in_session(session, self.provider)
        self.input_format = new_in or self.input_format
        self.output_format = new_out or self.output_format
        self.session_kind = session_kind_of(session, frame.event_type or "") or self.session_kind
        config: Event = {
            "kind": Kind.CONFIG,
            "input_format": format_name(self.input_format),
            "output_format": format_name(self.output_format),
            "session_kind": self.session_kind,
            **transcription_config(session),
        }
        if server and not (frame.event_type or "").endswith(".update"):
            config.update(turn_detection(session))
        return config

    def _client(self, frame: Frame, t: str, event: Mapping[str, Any], out: list[Event]) -> None:
        if t in CLIENT_AUDIO_EVENTS:
            self.appended += float(frame.audio_bytes or 0)
            out.append({"kind": Kind.USER_AUDIO, **self._audio(frame, output=False)})
        elif t in CONFIG_EVENTS:
            config = self._config(frame, event, server=False)
            if config is not None:
                out.append(config)
        elif t == "input_audio_buffer.commit":
            out.append({"kind": Kind.USER_AUDIO_COMMIT, **self._buffer()})
        elif t == "input_audio_buffer.clear":
            out.append({"kind": Kind.INPUT_CLEARED, **self._buffer()})
        elif t == "conversation.item.create":
            item = event.get("item")
            item = item if isinstance(item, dict) else {}
            fields = item_fields(item)
            fields["item_kind"] = raw_str(item.get("type"))
            out.append(
                {
                    "kind": Kind.ITEM_CREATE,
                    "item_id": non_empty_str(item.get("id")),
                    "previous_item_id": non_empty_str(event.get("previous_item_id")),
                    **fields,
                }
            )
        elif t == "conversation.item.truncate":
            out.append(truncation(Kind.TRUNCATE, frame.item_id, event))
        elif t == "response.create":
            out.append({"kind": Kind.REPLY_REQUEST})

    def _server(self, frame: Frame, t: str, event: Mapping[str, Any], out: list[Event]) -> None:
        item_id = frame.item_id
        reply_id = frame.response_id
        if t in SERVER_AUDIO_EVENTS:
            out.append(
                {
                    "kind": Kind.REPLY_AUDIO,
                    "reply_id": reply_id,
                    "item_id": item_id,
                    **self._audio(frame, output=True),
                }
            )
        elif t in AUDIO_TRANSCRIPT_DELTA_EVENTS or t in TEXT_DELTA_EVENTS:
            kind = Kind.REPLY_TEXT_DELTA if t in TEXT_DELTA_EVENTS else Kind.REPLY_TRANSCRIPT_DELTA
            delta = raw_str(event.get("delta"))
            out.append({"kind": kind, "reply_id": reply_id, "item_id": item_id, "text": delta})
        elif t in CONFIG_EVENTS:
            config = self._config(frame, event, server=True)
            if config is not None:
                out.append(config)
        elif t == "input_audio_buffer.speech_started":
            start = number(event.get("audio_start_ms"))
            out.append({"kind": Kind.SPEECH_START, "stream_ms": start})
        elif t == "input_audio_buffer.speech_stopped":
            end = number(event.get("audio_end_ms"))
            out.append({"kind": Kind.SPEECH_END, "item_id": item_id, "stream_ms": end})
        elif t == "input_audio_buffer.committed":
            out.append(
                {
                    "kind": Kind.INPUT_COMMITTED,
                    "item_id": item_id,
                    "previous_item_id": non_empty_str(event.get("previous_item_id")),
                    **self._buffer(),
                }
            )
        elif t == "input_audio_buffer.cleared":
            out.append({"kind": Kind.INPUT_CLEARED, **self._buffer()})
        elif t in ITEM_CREATED_EVENTS:
            item = event.get("item")
            fields = item_fields(item) if isinstance(item, dict) else {}
            out.append(
                {
                    "kind": Kind.ITEM,
                    "item_id": item_id,
                    "previous_item_id": non_empty_str(event.get("previous_item_id")),
                    "placed": "previous_item_id" in event,
                    **fields,
                }
            )
        elif t in OUTPUT_ITEM_STAGES:
            item = event.get("item")
            fields = item_fields(item) if isinstance(item, dict) else {}
            out.append(
                {
                    "kind": Kind.REPLY_ITEM,
                    "stage": OUTPUT_ITEM_STAGES[t],
                    "reply_id": reply_id,
                    "item_id": item_id,
                    **fields,
                }
            )
        elif t == "response.done":
            self._response_done(event, reply_id, out)
        elif t in AUDIO_TRANSCRIPT_DONE_EVENTS or t in TEXT_DONE_EVENTS:
            is_text = t in TEXT_DONE_EVENTS
            value = raw_str(event.get("text" if is_text else "transcript"))
            out.append(
                {
                    "kind": Kind.REPLY_TEXT if is_text else Kind.REPLY_TRANSCRIPT,
                    "reply_id": non_empty_str(event.get("response_id")),
                    "item_id": item_id,
                    "text" if is_text else "transcript": value,
                }
            )
        elif t == TRANSCRIPTION_DELTA:
            out.append(
                {
                    "kind": Kind.USER_TRANSCRIPT_DELTA,
                    "item_id": item_id,
                    "text": raw_str(event.get("delta")),
                    **logprob_fields(event.get("logprobs")),
                }
            )
        elif t == TRANSCRIPTION_COMPLETED:
            out.append(
                {
                    "kind": Kind.USER_TRANSCRIPT,
                    "item_id": item_id,
                    "transcript": raw_str(event.get("transcript")),
                    **transcription_usage_fields(event.get("usage")),
                    **logprob_fields(event.get("logprobs")),
                }
            )
        elif t == TRANSCRIPTION_FAILED:
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            out.append(
                {"kind": Kind.USER_TRANSCRIPT_FAILED, "item_id": item_id, "text": raw_str(message)}
            )
        elif t == "response.function_call_arguments.done":
            out.append(
                {
                    "kind": Kind.TOOL_CALL,
                    "item_id": item_id,
                    "name": raw_str(event.get("name")),
                    "call_id": raw_str(event.get("call_id")),
                    "arguments": raw_str(event.get("arguments")),
                }
            )
        elif t == "conversation.item.truncated":
            out.append(truncation(Kind.TRUNCATED, item_id, event))
        elif t == "conversation.item.deleted":
            out.append({"kind": Kind.ITEM_DELETED, "item_id": item_id})
        elif t == "error":
            error = event.get("error")
            error = error if isinstance(error, dict) else {}
            out.append(
                {
                    "kind": Kind.ERROR,
                    "text": non_empty_str(error.get("message")),
                    "error_type": non_empty_str(error.get("type")),
                    "error_code": non_empty_str(error.get("code")),
                    "error_param": non_empty_str(error.get("param")),
                    "client_event_id": non_empty_str(error.get("event_id")),
                }
            )

    def _response_done(
        self, event: Mapping[str, Any], reply_id: str | None, out: list[Event]
    ) -> None:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        details = response.get("status_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        out.append(
            {
                "kind": Kind.REPLY_END,
                "reply_id": reply_id,
                "status": raw_str(response.get("status")),
                "reason": raw_str(reason),
                **usage_fields(response.get("usage")),
            }
        )
        output = response.get("output")
        for item in output if isinstance(output, list) else []:
            if isinstance(item, dict):
                out.append(
                    {
                        "kind": Kind.REPLY_ITEM,
                        "stage": "final",
                        "reply_id": reply_id,
                        "item_id": raw_str(item.get("id")),
                        **item_fields(item),
                    }
                )


class RealtimeAdapter:
    name = "realtime"
    # Every Realtime endpoint we know ends its path in /realtime: OpenAI /v1/realtime, Azure
    # /openai/realtime and /openai/v1/realtime, DashScope /api-ws/v1/realtime, Zhipu
    # /api/paas/v4/realtime.
    endpoints: tuple[str, ...] = (r"/realtime($|[?])",)

    def decoder(self, facts: Mapping[str, Any]) -> RealtimeDecoder:
        return RealtimeDecoder(facts)

    def needs_event(self, event_type: str | None) -> bool:
        return event_type not in CLIENT_AUDIO_EVENTS and event_type not in SERVER_AUDIO_EVENTS

    def audio_paths(self, event_type: str) -> AudioPaths:
        return AUDIO_PATHS.get(event_type, _NO_AUDIO)

    session_events = frozenset({"session.created", "transcription_session.created"})

    def provider_session_id(self, event: Mapping[str, Any]) -> str | None:
        session = event.get("session")  # ``sess_...``
        value = session.get("id") if isinstance(session, Mapping) else None
        return value if isinstance(value, str) and value else None


ADAPTER = RealtimeAdapter()
