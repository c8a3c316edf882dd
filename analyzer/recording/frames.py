"""Turn one WebSocket message into a capture record (pure; used live and by ``convert``)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64  # SIMD base64: ~1 us for a 100 ms audio delta, where the stdlib takes ~14 us

from analyzer.protocol import AUDIO_FIELD_BY_EVENT
from analyzer.protocols import gemini_wire
from analyzer.protocols.live import AUDIO_FIELD_BY_EVENT as LIVE_AUDIO_FIELDS
from analyzer.recording.gemini_frames import apply_gemini, gemini_binary_message
from analyzer.recording.redact import redact_text

# Where each protocol's audio sits (event types never collide across protocols).
_AUDIO_FIELDS = {**AUDIO_FIELD_BY_EVENT, **LIVE_AUDIO_FIELDS}


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
    events: list[dict[str, Any]] | None = None  # normalized events (Parquet only)

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
        found = gemini_binary_message(content)
        if found is not None:  # Gemini sends its JSON in binary frames: decoded like text
            rec.event = found[1]
            apply_gemini(rec, *found, keep_audio, None)
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
    apply_text(rec, text, keep_audio)
    return rec


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson refuses but Python accepts (NaN, huge ints)


def apply_text(
    rec: FrameRecord, text: str, keep_audio: bool, audio_bytes: int | None = None
) -> None:
    """Fill ``rec`` from a text frame. ``audio_bytes`` is the known decoded size when the text's
    audio was already removed (journals written with audio dropped). Secrets are redacted from
    everything that will be written; the parsed ``rec.event`` stays in memory only."""
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
        apply_gemini(rec, text, event, gemini_type, keep_audio, audio_bytes)
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
    field = _AUDIO_FIELDS.get(event_type)
    if field is None or not _split_audio(rec, text, event, field, keep_audio, audio_bytes):
        rec.content = rec.journal_content = redact_text(text)


def _is_canonical(b64: str, audio: bytes) -> bool:
    """Whether ``b64encode(audio)`` gives back exactly ``b64`` (checked without re-encoding all:
    only the last quantum can differ, in its unused bits)."""
    n = len(audio)
    if len(b64) != 4 * ((n + 2) // 3):
        return False
    return n == 0 or base64.b64encode(audio[n - (n % 3 or 3) :]).decode() == b64[-4:]


def _find_verbatim(text: str, b64: str) -> int:
    """Where ``"<b64>"`` stands in ``text``, or -1; found by its head, then checked whole
    (searching for a 6 KB needle costs more than comparing it once)."""
    if not b64:
        return -1
    start = 0
    head = '"' + b64[:32]
    while (offset := text.find(head, start)) >= 0:
        end = offset + 1 + len(b64)
        if text.startswith(b64, offset + 1) and text[end : end + 1] == '"':
            return offset
        start = offset + 1
    return -1


def _split_audio(
    rec: FrameRecord,
    text: str,
    event: dict[str, Any],
    field: str,
    keep_audio: bool,
    known_audio_bytes: int | None,
) -> bool:
    """Take the audio out of an audio event; True when it set ``rec.content`` itself."""
    b64 = event.get(field)
    if not isinstance(b64, str):
        rec.problem = f"'{field}' is not a base64 string"
        return False
    # An empty field with a known size of 0 was empty on the wire: decoded below as it was live.
    if b64 == "" and known_audio_bytes:
        rec.audio_bytes = known_audio_bytes  # samples were dropped when recorded
        rec.audio_b64_bytes = 4 * ((known_audio_bytes + 2) // 3)
        return False
    rec.audio_b64_bytes = len(b64)
    try:
        audio = _b64decode(b64)
    except (binascii.Error, ValueError):
        rec.problem = "audio is not valid base64"
        return False
    rec.audio_bytes = len(audio)
    # The base64 text is cut out only where it stands verbatim (no JSON escapes); the text around
    # it is redacted apart, so secrets are handled without scanning the samples.
    offset = _find_verbatim(text, b64)
    if offset < 0:
        if keep_audio:
            rec.audio = audio
            return False
        event[field] = ""
        rec.content = rec.journal_content = redact_text(json.dumps(event, ensure_ascii=False))
        return True
    prefix = redact_text(text[: offset + 1])
    suffix = redact_text(text[offset + 1 + len(b64) :])
    if not keep_audio:
        rec.content = rec.journal_content = prefix + suffix
        return True
    rec.audio = audio
    rec.journal_content = prefix + b64 + suffix
    if _is_canonical(b64, audio):
        # content[:offset] + b64encode(audio) + content[offset:] rebuilds the frame.
        rec.audio_offset = len(prefix)
        rec.content = prefix + suffix
    else:
        rec.content = rec.journal_content
    return True


def _b64decode(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``, with pybase64's speed. What pybase64 refuses,
    the standard library is asked again: it accepts padding past a whole quantum ("AAAA=")."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64decode(text, validate=True)


def restore_frame_text(content: str, audio_offset: int | None, audio: bytes | None) -> str:
    """The frame text as recorded, audio base64 put back where it was cut out."""
    if audio_offset is None or audio is None:
        return content
    return content[:audio_offset] + pybase64.b64encode(audio).decode() + content[audio_offset:]
