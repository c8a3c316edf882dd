"""Google Gemini Live (BidiGenerateContent) as normalized events.

The protocol has no reply or item ids, and with automatic activity detection no "speech
stopped": this decoder makes them up.

- **Replies**: a model turn is a reply, ``gemini-reply-N``, with one assistant message item
  ``gemini-item-N``. ``reply_start`` at its first ``serverContent`` (model audio/text, output
  transcription or ``turnComplete``) or ``toolCall``; ``reply_audio`` per audio ``inlineData``
  (``audio_ms`` at the rate its ``mimeType`` states, 24 kHz by default); ``reply_end`` at
  ``turnComplete`` (status completed), at ``interrupted`` (cancelled, reason turn_detected) or at
  a ``toolCall`` (completed, reason tool_call: the client answers with a ``toolResponse``, which
  asks for the next reply, as a Realtime function call does).
- **User input**: ``user_audio`` per audio blob (16 kHz by default); its end, ``speech_end`` +
  ``input_committed`` of a made-up item ``gemini-user-N``, comes from the first of: the client's
  ``activityEnd`` (manual activity detection), the server's ``voiceActivity`` ACTIVITY_END, an
  ``inputTranscription`` marked ``finished``, and, when the protocol said nothing of it, the
  first ``serverContent`` of the model turn that answers (then the latency to the first reply
  audio is only what the model took after the service decided the user was done).
  ``speech_start`` from ``activityStart`` or ``voiceActivity`` ACTIVITY_START.
- **Usage**: ``usageMetadata`` (by modality) goes on the ``reply_end`` of its message, or of the
  reply it follows (a second ``reply_end`` of that reply, carrying the tokens).
- Errors are close codes and reasons (session facts), not messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.kinds import Kind
from analyzer.protocols import Event, Frame
from analyzer.protocols.audio_paths import AudioPaths
from analyzer.protocols.gemini_fields import (
    as_dict,
    blob_bytes,
    function_call_fields,
    function_outputs,
    setup_config,
    transcription_text,
    usage_fields,
)
from analyzer.protocols.gemini_wire import (
    DIALECT,
    MESSAGE_FIELDS,
    URL_PATTERN,
    audio_fields,
    audio_paths,
    audio_rate,
    field,
    is_endpoint,
)

__all__ = ["ADAPTER", "is_gemini"]

INPUT_RATE_HZ = 16000
OUTPUT_RATE_HZ = 24000
_NAN = float("nan")


class GeminiDecoder:
    """One Gemini Live session: made-up reply and item ids, the user input in progress."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        self.user_ms = 0.0  # the user's audio clock
        self.reply_ms = 0.0  # the reply audio clock
        self.replies = 0
        self.reply: str | None = None  # the reply in progress
        self.last_reply: dict[str, Any] | None = None  # the last reply ended: id, status, reason
        self.reply_transcript: list[str] = []
        self.reply_text: list[str] = []
        self.users = 0
        self.user_item: str | None = None  # the user input in progress (audio since the last end)
        self.input_bytes = 0.0
        self.input_ms = 0.0
        self.transcript_item: str | None = None  # where input transcription goes
        self.user_transcript: list[str] = []
        self.transcript_last_s: float | None = None  # when its last delta came
        self.manual = False
        self.input_ended = False  # the protocol said where the current input ended
        self.requested = False  # the client asked for the next reply (text, tool response)
        self.reply_calls: list[Event] = []  # function calls of the reply in progress
        self.usage: Event = {}  # token counts not yet put on a reply_end

    # -- ids ---------------------------------------------------------------------------------
    def _user(self) -> str:
        if self.user_item is None:
            self.users += 1
            self.user_item = f"gemini-user-{self.users}"
        return self.user_item

    # -- user input --------------------------------------------------------------------------
    def _end_input(self, out: list[Event]) -> None:
        """The user's input so far is a turn: speech_end + input_committed of its item."""
        if self.user_item is None and self.input_bytes == 0:
            return
        item = self._user()
        if self.transcript_item != item:  # an earlier input's transcript is complete
            self._finish_user_transcript(out)
        out.append({"kind": Kind.SPEECH_END, "item_id": item, "stream_ms": self.user_ms})
        out.append(
            {
                "kind": Kind.INPUT_COMMITTED,
                "item_id": item,
                "audio_bytes": int(self.input_bytes),
                "audio_ms": self.input_ms if self.input_bytes else _NAN,
            }
        )
        self.transcript_item = item
        self.user_item = None
        self.input_bytes = self.input_ms = 0.0
        self.input_ended = True

    def _finish_user_transcript(self, out: list[Event]) -> None:
        """The input's whole transcript, once it is complete (``finished``, the reply's end or
        the next input's), timed at its last delta: the speech-to-text latency."""
        if self.transcript_item is not None and self.user_transcript:
            transcript = "".join(self.user_transcript)
            out.append(
                {
                    "kind": Kind.USER_TRANSCRIPT,
                    "item_id": self.transcript_item,
                    "transcript": transcript,
                    "at_s": self.transcript_last_s,
                }
            )
        self.user_transcript = []

    def _user_audio(self, frame: Frame, message: Mapping[str, Any], out: list[Event]) -> None:
        blobs = audio_fields(message)
        for blob, key in blobs:
            data = blob.get(key)
            size = blob_bytes(data, frame.audio_bytes, len(blobs))
            rate = audio_rate(field(blob, "mimeType"), INPUT_RATE_HZ)
            audio_ms = size / (rate * 2 / 1000.0)
            self._user()
            out.append(
                {
                    "kind": Kind.USER_AUDIO,
                    "audio_bytes": size,
                    "audio_ms": audio_ms,
                    "stream_ms": self.user_ms,
                }
            )
            self.user_ms += audio_ms
            self.input_bytes += size
            self.input_ms += audio_ms

    # -- replies -----------------------------------------------------------------------------
    def _start_reply(self, out: list[Event]) -> str:
        if self.reply is None:
            spoken = self.user_item is not None or self.input_bytes
            if not self.input_ended and not self.requested and spoken:
                self._end_input(out)  # the protocol never said where the input ended
            self.input_ended = self.requested = False
            self.reply_calls = []
            self.replies += 1
            self.reply = f"gemini-reply-{self.replies}"
            self.reply_transcript, self.reply_text = [], []
            out.append({"kind": Kind.REPLY_START, "reply_id": self.reply})
            out.append(self._item("added"))
        return self.reply

    def _item(self, stage: str) -> Event:
        return {
            "kind": Kind.REPLY_ITEM,
            "stage": stage,
            "reply_id": self.reply,
            "item_id": f"gemini-item-{self.replies}",
            "role": "assistant",
            "item_kind": "message",
            "transcript": "".join(self.reply_transcript) or None if stage == "final" else None,
            "text": "".join(self.reply_text) or None if stage == "final" else None,
        }

    def _end_reply(self, out: list[Event], status: str, reason: str | None) -> None:
        usage, self.usage = self.usage, {}
        if self.reply is None:
            if usage and self.last_reply is not None:  # usage after the reply's end
                out.append({"kind": Kind.REPLY_END, **self.last_reply, **usage})
            return
        item = f"gemini-item-{self.replies}"
        if self.reply_transcript:
            transcript = "".join(self.reply_transcript)
            out.append(
                {
                    "kind": Kind.REPLY_TRANSCRIPT,
                    "reply_id": self.reply,
                    "item_id": item,
                    "transcript": transcript,
                }
            )
        if self.reply_text:
            text = "".join(self.reply_text)
            out.append(
                {"kind": Kind.REPLY_TEXT, "reply_id": self.reply, "item_id": item, "text": text}
            )
        self.last_reply = {"reply_id": self.reply, "status": status, "reason": reason}
        out.append({"kind": Kind.REPLY_END, **self.last_reply, **usage})
        out.append(self._item("final"))
        for call in self.reply_calls:
            out.append({**call, "stage": "final"})
        self._finish_user_transcript(out)
        self.reply = None

    # -- frames ------------------------------------------------------------------------------
    def feed(self, frame: Frame) -> list[Event]:
        if frame.event_type is None:
            return []
        out: list[Event] = []
        message = frame.event
        if frame.direction == "server":
            self._server(frame, message, out)
        else:
            self._client(frame, message, out)
        known = {name.split(".", 1)[0] for name in frame.event_type.split(",")}
        for name in sorted(known - set(MESSAGE_FIELDS)):
            out.append({"kind": Kind.UNKNOWN, "name": name})
        return out

    def _client(self, frame: Frame, message: Mapping[str, Any], out: list[Event]) -> None:
        setup = field(message, "setup")
        if isinstance(setup, dict):
            config = setup_config(setup, INPUT_RATE_HZ, OUTPUT_RATE_HZ)
            self.manual = config["turn_detection"] == "none"
            out.append(config)
        realtime = field(message, "realtimeInput")
        if isinstance(realtime, dict):
            if field(realtime, "activityStart") is not None:
                out.append({"kind": Kind.SPEECH_START, "stream_ms": self.user_ms})
            self._user_audio(frame, message, out)
            if field(realtime, "activityEnd") is not None:
                self._end_input(out)
            text = field(realtime, "text")
            if isinstance(text, str):
                self._user_text(text, out, request=True)
        content = field(message, "clientContent")
        if isinstance(content, dict):
            turns = field(content, "turns")
            for turn in turns if isinstance(turns, list) else []:
                parts = field(turn, "parts") if isinstance(turn, dict) else None
                for part in parts if isinstance(parts, list) else []:
                    if isinstance(part, dict) and isinstance(field(part, "text"), str):
                        self._user_text(field(part, "text"), out, request=False)
            if field(content, "turnComplete") is True:
                self._request(out)
        tool = field(message, "toolResponse")
        if isinstance(tool, dict):
            out.extend(function_outputs(tool))
            self._request(out)

    def _request(self, out: list[Event]) -> None:
        self.requested = True
        out.append({"kind": Kind.REPLY_REQUEST})

    def _user_text(self, text: str, out: list[Event], request: bool) -> None:
        out.append({"kind": Kind.ITEM_CREATE, "role": "user", "item_kind": "message", "text": text})
        if request:
            self._request(out)

    def _server(self, frame: Frame, message: Mapping[str, Any], out: list[Event]) -> None:
        usage_raw = field(message, "usageMetadata")
        if isinstance(usage_raw, dict):
            self.usage = usage_fields(usage_raw)
        activity = field(message, "voiceActivity")
        if isinstance(activity, dict):
            kind = field(activity, "voiceActivityType")
            if kind == "ACTIVITY_START":
                out.append({"kind": Kind.SPEECH_START, "stream_ms": self.user_ms})
            elif kind == "ACTIVITY_END":
                self._end_input(out)
        content = field(message, "serverContent")
        if isinstance(content, dict):
            self._content(frame, message, content, out)
        calls = field(as_dict(field(message, "toolCall")), "functionCalls")
        if isinstance(calls, list):
            reply = self._start_reply(out)
            for call in calls:
                if not isinstance(call, dict):
                    continue
                fields = function_call_fields(call)
                added = {"kind": Kind.REPLY_ITEM, "stage": "added", "reply_id": reply, **fields}
                self.reply_calls.append(added)
                out.append(added)
                out.append({"kind": Kind.TOOL_CALL, **fields})
            self._end_reply(out, "completed", "tool_call")
        if self.usage and self.reply is None:
            self._end_reply(out, "completed", None)

    def _content(
        self,
        frame: Frame,
        message: Mapping[str, Any],
        content: Mapping[str, Any],
        out: list[Event],
    ) -> None:
        heard = transcription_text(field(content, "inputTranscription"))
        if heard is not None:
            # After the input's end (told, or a reply began) transcription is still of it.
            ended = self.reply is not None or self.input_ended
            item = self.transcript_item if ended else None
            item = item or self._user()
            self.transcript_item = item
            self.user_transcript.append(heard)
            self.transcript_last_s = frame.time_s
            out.append({"kind": Kind.USER_TRANSCRIPT_DELTA, "item_id": item, "text": heard})
            if field(field(content, "inputTranscription"), "finished") is True:
                if self.reply is None:
                    self._end_input(out)
                self._finish_user_transcript(out)
        turn = field(content, "modelTurn")
        said = transcription_text(field(content, "outputTranscription"))
        starts = (
            isinstance(turn, dict) or said is not None or field(content, "turnComplete") is True
        )
        if starts and self.reply is None and field(content, "interrupted") is not True:
            self._start_reply(out)
        reply, item = self.reply, f"gemini-item-{self.replies}"
        parts = field(turn, "parts") if isinstance(turn, dict) else None
        blobs = audio_fields(message)
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            blob = field(part, "inlineData")
            if any(blob is b for b, _ in blobs):
                size = blob_bytes(blob.get("data"), frame.audio_bytes, len(blobs))
                rate = audio_rate(field(blob, "mimeType"), OUTPUT_RATE_HZ)
                audio_ms = size / (rate * 2 / 1000.0)
                out.append(
                    {
                        "kind": Kind.REPLY_AUDIO,
                        "reply_id": reply,
                        "item_id": item,
                        "audio_bytes": size,
                        "audio_ms": audio_ms,
                        "stream_ms": self.reply_ms,
                    }
                )
                self.reply_ms += audio_ms
            text = field(part, "text")
            if isinstance(text, str) and field(part, "thought") is not True:
                self.reply_text.append(text)
                out.append(
                    {
                        "kind": Kind.REPLY_TEXT_DELTA,
                        "reply_id": reply,
                        "item_id": item,
                        "text": text,
                    }
                )
        if said is not None and reply is not None:
            self.reply_transcript.append(said)
            out.append(
                {
                    "kind": Kind.REPLY_TRANSCRIPT_DELTA,
                    "reply_id": reply,
                    "item_id": item,
                    "text": said,
                }
            )
        if field(content, "interrupted") is True:
            self._end_reply(out, "cancelled", "turn_detected")
        elif field(content, "turnComplete") is True:
            reason = field(content, "turnCompleteReason")
            self._end_reply(out, "completed", reason if isinstance(reason, str) else None)


class GeminiAdapter:
    name = DIALECT
    endpoints: tuple[str, ...] = (URL_PATTERN,)

    def decoder(self, facts: Mapping[str, Any]) -> GeminiDecoder:
        return GeminiDecoder(facts)

    def audio_paths(self, event_type: str) -> AudioPaths:
        return audio_paths(event_type)

    session_events = frozenset({"setupComplete"})

    def provider_session_id(self, event: Mapping[str, Any]) -> str | None:
        done = field(event, "setupComplete")  # its sessionId, where the service sends one
        value = field(done, "sessionId") if isinstance(done, Mapping) else None
        return value if isinstance(value, str) and value else None

    def needs_event(self, event_type: str | None) -> bool:
        # Every message is needed: even an audio chunk's rate is in its blob's mimeType (the
        # samples themselves are cut out, so parsing it is cheap).
        return event_type is not None


ADAPTER = GeminiAdapter()


def is_gemini(facts: Mapping[str, Any]) -> bool:
    """Whether a session is Gemini Live, from its facts."""
    return facts.get("dialect") == DIALECT or is_endpoint(facts.get("path"))
