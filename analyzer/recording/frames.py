"""Turn one WebSocket message into a capture record (pure; used live and by ``convert``)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import orjson

from analyzer.protocols import AudioPathsOf, audio_paths_for, gemini_wire
from analyzer.recording.audio_cut import restore_frame_text, split_audio
from analyzer.recording.redact import redact_text

__all__ = ["FrameRecord", "apply_text", "build_frame", "restore_frame_text"]


@dataclass(slots=True)
class FrameRecord:
    """One row of :data:`analyzer.schema.FRAME_SCHEMA`, plus the journal's full content."""

    session_id: str
    seq: int
    time_s: float
    direction: str
    opcode: str
    frame_bytes: int
    event_type: str | None = None
    event_id: str | None = None
    item_id: str | None = None
    response_id: str | None = None
    audio_b64_bytes: int | None = None
    audio_bytes: int | None = None
    problem: str | None = None
    content: str | None = None  # for Parquet: audio base64 cut out (audio_offset, audio_cuts)
    binary_content: bytes | None = None
    audio_offset: int | None = None
    audio: bytes | None = None
    audio_cuts: list[dict[str, Any]] | None = None  # see analyzer.recording.audio_cut
    journal_content: str | None = None  # for the journal: the whole redacted text
    event: dict[str, Any] | None = None  # the parsed event (not written), for live trackers
    events: list[dict[str, Any]] | None = None  # normalized events (Parquet only)
    # The decoded samples of audio dropped (rt_audio=drop), never written: the writer's voice
    # detector reads them before the frame is recorded, so speech is found in dropped audio too.
    dropped_audio: bytes | None = None

    def journal_line(self) -> dict[str, Any]:
        """The journal's JSON object for this frame."""
        line: dict[str, Any] = {
            "record": "frame",
            "session_id": self.session_id,
            "seq": self.seq,
            "time_s": self.time_s,
            "direction": self.direction,
            "opcode": self.opcode,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "item_id": self.item_id,
            "response_id": self.response_id,
            "frame_bytes": self.frame_bytes,
            "audio_b64_bytes": self.audio_b64_bytes,
            "audio_bytes": self.audio_bytes,
            "problem": self.problem,
            "content": self.journal_content,
        }
        if self.binary_content is not None:
            line["binary_content_b64"] = base64.b64encode(self.binary_content).decode()
        return line


def _str_or_none(value: Any) -> str | None:
    return _utf8(redact_text(value)) if isinstance(value, str) else None


def _utf8(value: str) -> str:
    """``value`` without lone surrogates (a JSON "\\ud800" escape), which Parquet cannot hold."""
    if value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def build_frame(
    session_id: str,
    seq: int,
    time_s: float,
    from_client: bool,
    is_text: bool,
    content: bytes,
    keep_audio: bool = True,
    audio_paths: AudioPathsOf | None = None,
) -> FrameRecord:
    """Classify, redact and split one message. Never raises on bad content: it says why in
    ``problem`` and keeps what arrived. ``audio_paths``: where the session's protocol carries
    audio (``analyzer.protocols.audio_paths_for(facts)``; default: the Realtime protocol's)."""
    rec = FrameRecord(
        session_id=session_id,
        seq=seq,
        time_s=time_s,
        direction="client" if from_client else "server",
        opcode="text" if is_text else "binary",
        frame_bytes=len(content),
    )
    if not is_text:
        found = gemini_binary_message(content)
        if found is not None:  # Gemini sends its JSON in binary frames: decoded like text
            rec.event = found[1]
            _apply_gemini(rec, *found, keep_audio, None, None)
            return rec
        rec.binary_content = content
        rec.problem = "binary frame"
        return rec
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        rec.binary_content = content
        rec.problem = "text frame is not valid UTF-8"
        return rec
    apply_text(rec, text, keep_audio, audio_paths=audio_paths)
    return rec


def gemini_binary_message(content: bytes) -> tuple[str, dict[str, Any], str] | None:
    """(text, message, event type) of a binary frame holding a Gemini JSON message, else None
    (the frame is then kept as binary, as before)."""
    if content[:64].lstrip()[:1] != b"{":
        return None
    try:
        text = content.decode("utf-8")
        message = orjson.loads(content)
    except (UnicodeDecodeError, orjson.JSONDecodeError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    event_type = gemini_wire.event_type(message)
    return None if event_type is None else (text, message, event_type)


def _apply_gemini(
    rec: FrameRecord,
    text: str,
    message: dict[str, Any],
    event_type: str,
    keep_audio: bool,
    audio_bytes: int | None,
    audio_b64_bytes: int | None,
) -> None:
    """A Gemini message (no ``type``: its top-level fields name it), its audio where the
    adapter declares it (``gemini_wire.AUDIO_PATHS``), whatever the session's adapter."""
    rec.event_type = _utf8(redact_text(event_type))
    paths = gemini_wire.audio_paths(event_type)
    if not paths or not split_audio(
        rec, text, message, paths, keep_audio, audio_bytes, audio_b64_bytes
    ):
        rec.content = rec.journal_content = redact_text(text)


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson refuses but Python accepts (NaN, huge ints)


_default_audio_paths: AudioPathsOf | None = None


def _realtime_audio_paths() -> AudioPathsOf:
    """The Realtime adapter's (imported on first use: the proxy process never needs it)."""
    global _default_audio_paths
    if _default_audio_paths is None:
        _default_audio_paths = audio_paths_for({})
    return _default_audio_paths


def apply_text(
    rec: FrameRecord,
    text: str,
    keep_audio: bool,
    audio_bytes: int | None = None,
    audio_b64_bytes: int | None = None,
    audio_paths: AudioPathsOf | None = None,
) -> None:
    """Fill ``rec`` from a text frame. ``audio_bytes`` and ``audio_b64_bytes`` are the known
    sizes when the text's audio was already removed (journals written with audio dropped).
    Secrets are redacted from everything that will be written; the parsed ``rec.event`` stays
    in memory only."""
    try:
        event = _loads(text)
    except (ValueError, RecursionError):
        rec.problem = "not JSON"
        event = None
    if not isinstance(event, dict):
        rec.problem = rec.problem or "JSON is not an object"
        rec.content = rec.journal_content = redact_text(text)
        return
    rec.event = event
    event_type = event.get("type")
    if event_type is None and (gemini_type := gemini_wire.event_type(event)) is not None:
        _apply_gemini(rec, text, event, gemini_type, keep_audio, audio_bytes, audio_b64_bytes)
        return
    if not isinstance(event_type, str):
        rec.problem = "JSON has no string 'type'"
        rec.content = rec.journal_content = redact_text(text)
        return
    rec.event_type = _utf8(redact_text(event_type))
    rec.event_id = _str_or_none(event.get("event_id"))
    rec.item_id = _str_or_none(event.get("item_id"))
    rec.response_id = _str_or_none(event.get("response_id"))
    if rec.item_id is None and isinstance(event.get("item"), dict):
        rec.item_id = _str_or_none(event["item"].get("id"))
    if rec.response_id is None and isinstance(event.get("response"), dict):
        rec.response_id = _str_or_none(event["response"].get("id"))
    paths = (audio_paths or _default_audio_paths or _realtime_audio_paths())(event_type)
    if not paths or not split_audio(
        rec, text, event, paths, keep_audio, audio_bytes, audio_b64_bytes
    ):
        rec.content = rec.journal_content = redact_text(text)
