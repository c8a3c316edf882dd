"""Turn one WebSocket message into a capture record (pure; used live and by ``convert``)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from analyzer.protocol import AUDIO_FIELD_BY_EVENT
from analyzer.recording.redact import redact_text


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
    content: str | None = None  # for Parquet: audio base64 cut out at audio_offset
    binary_content: bytes | None = None
    audio_offset: int | None = None
    audio: bytes | None = None
    journal_content: str | None = None  # for the journal: the whole redacted text
    event: dict[str, Any] | None = None  # the parsed event (not written), for live trackers

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
    return value if isinstance(value, str) else None


def build_frame(
    session_id: str,
    seq: int,
    time_s: float,
    from_client: bool,
    is_text: bool,
    content: bytes,
    keep_audio: bool = True,
) -> FrameRecord:
    """Classify, redact and split one message. Never raises on bad content: it says why in
    ``problem`` and keeps what arrived."""
    rec = FrameRecord(
        session_id=session_id,
        seq=seq,
        time_s=time_s,
        direction="client" if from_client else "server",
        opcode="text" if is_text else "binary",
        frame_bytes=len(content),
    )
    if not is_text:
        rec.binary_content = content
        rec.problem = "binary frame"
        return rec
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        rec.binary_content = content
        rec.problem = "text frame is not valid UTF-8"
        return rec
    apply_text(rec, text, keep_audio)
    return rec


def apply_text(
    rec: FrameRecord, text: str, keep_audio: bool, audio_bytes: int | None = None
) -> None:
    """Fill ``rec`` from a text frame. ``audio_bytes`` is the known decoded size when the text's
    audio was already removed (journals written with audio dropped)."""
    text = redact_text(text)
    rec.content = rec.journal_content = text
    try:
        event = json.loads(text)
    except ValueError:
        rec.problem = "not JSON"
        return
    if not isinstance(event, dict):
        rec.problem = "JSON is not an object"
        return
    rec.event = event
    event_type = event.get("type")
    if not isinstance(event_type, str):
        rec.problem = "JSON has no string 'type'"
        return
    rec.event_type = event_type
    rec.event_id = _str_or_none(event.get("event_id"))
    rec.item_id = _str_or_none(event.get("item_id"))
    rec.response_id = _str_or_none(event.get("response_id"))
    if rec.item_id is None and isinstance(event.get("item"), dict):
        rec.item_id = _str_or_none(event["item"].get("id"))
    if rec.response_id is None and isinstance(event.get("response"), dict):
        rec.response_id = _str_or_none(event["response"].get("id"))
    field = AUDIO_FIELD_BY_EVENT.get(event_type)
    if field is not None:
        _split_audio(rec, text, event, field, keep_audio, audio_bytes)


def _split_audio(
    rec: FrameRecord,
    text: str,
    event: dict[str, Any],
    field: str,
    keep_audio: bool,
    known_audio_bytes: int | None,
) -> None:
    b64 = event.get(field)
    if not isinstance(b64, str):
        rec.problem = f"'{field}' is not a base64 string"
        return
    if b64 == "" and known_audio_bytes is not None:
        rec.audio_bytes = known_audio_bytes  # samples were dropped when recorded
        rec.audio_b64_bytes = 4 * ((known_audio_bytes + 2) // 3)
        return
    rec.audio_b64_bytes = len(b64)
    try:
        audio = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        rec.problem = "audio is not valid base64"
        return
    rec.audio_bytes = len(audio)
    # Cut the base64 text out only where it stands verbatim (no JSON escapes) and re-encodes to
    # the same text, so content[:offset] + b64encode(audio) + content[offset:] is the frame.
    needle = f'"{b64}"'
    offset = text.find(needle) if b64 else -1
    if not keep_audio:
        if offset >= 0:
            text = text[: offset + 1] + text[offset + 1 + len(b64) :]
        else:
            event[field] = ""
            text = json.dumps(event, ensure_ascii=False)
        rec.content = rec.journal_content = text
        return
    rec.audio = audio
    if offset >= 0 and base64.b64encode(audio).decode() == b64:
        rec.audio_offset = offset + 1
        rec.content = text[: offset + 1] + text[offset + 1 + len(b64) :]


def restore_frame_text(content: str, audio_offset: int | None, audio: bytes | None) -> str:
    """The frame text as recorded, audio base64 put back where it was cut out."""
    if audio_offset is None or audio is None:
        return content
    return content[:audio_offset] + base64.b64encode(audio).decode() + content[audio_offset:]
