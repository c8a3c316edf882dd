"""Gemini Live frames into capture records: JSON in binary frames, audio in several blobs.

Kept apart from :mod:`analyzer.recording.frames` (Realtime: one audio field a frame, standard
base64) so it can be unified with the other adapters' audio declarations at merge. Where the
audio sits comes from :data:`analyzer.protocols.gemini_wire.AUDIO_PATHS`.
"""

from __future__ import annotations

import binascii
import json
from typing import TYPE_CHECKING, Any

import orjson

from analyzer.protocols import gemini_wire
from analyzer.recording import audio_cut
from analyzer.recording import frames as _frames
from analyzer.recording.redact import redact_text

if TYPE_CHECKING:
    from analyzer.recording.frames import FrameRecord

_URLSAFE = str.maketrans("-_", "+/")


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


def decode_b64(text: str) -> bytes:
    """Standard or URL-safe base64 (the official client sends URL-safe), strictly checked."""
    if "-" in text or "_" in text:
        if "+" in text or "/" in text:
            raise ValueError("base64 mixes both alphabets")
        text = text.translate(_URLSAFE)
    decoded = audio_cut.decode_b64(text)
    if decoded is None:
        raise ValueError("not base64")
    return decoded[0]


def _find_verbatim(text: str, b64: str) -> int:
    """Where ``"<b64>"`` stands in ``text``, or -1; found by its head, then checked whole."""
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


def _redact_around(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The text between the audio spans (start, end), each redacted on its own: a secret
    pattern can never match inside the samples' base64 (URL-safe base64 holds '-' and '_')."""
    pieces: list[str] = []
    at = 0
    for start, end in spans:
        pieces.append(redact_text(text[at:start]))
        at = end
    pieces.append(redact_text(text[at:]))
    return pieces


def apply_gemini(
    rec: FrameRecord,
    text: str,
    message: dict[str, Any],
    event_type: str,
    keep_audio: bool,
    known_audio_bytes: int | None,
) -> None:
    """Fill ``rec`` from a Gemini message: its event type, its audio cut out (see
    :func:`_cut_audio`) and everything else redacted."""
    rec.event_type = _frames._utf8(redact_text(event_type))
    blobs = gemini_wire.audio_fields(message)
    datas = [blob[key] for blob, key in blobs]
    if not blobs:
        rec.content = rec.journal_content = redact_text(text)
        return
    if not all(isinstance(d, str) for d in datas):
        rec.problem = "audio 'data' is not a base64 string"
        rec.content = rec.journal_content = redact_text(text)
        return
    if all(d == "" for d in datas) and known_audio_bytes:
        rec.audio_bytes = known_audio_bytes  # samples were dropped when recorded
        rec.audio_b64_bytes = 4 * ((known_audio_bytes + 2) // 3)
        rec.content = rec.journal_content = redact_text(text)
        return
    try:
        audios = [decode_b64(d) for d in datas]
    except (binascii.Error, ValueError):
        rec.problem = "audio is not valid base64"
        rec.content = rec.journal_content = redact_text(text)
        return
    rec.audio_b64_bytes = sum(len(d) for d in datas)
    rec.audio_bytes = sum(len(a) for a in audios)
    _cut_audio(rec, text, message, blobs, datas, audios, keep_audio)


def _cut_audio(
    rec: FrameRecord,
    text: str,
    message: dict[str, Any],
    blobs: list[tuple[Any, str]],
    datas: list[str],
    audios: list[bytes],
    keep_audio: bool,
) -> None:
    """One standard-base64 blob standing verbatim is cut out of ``content`` (``audio_offset``,
    restorable byte-exact by ``restore_frame_text``). Otherwise (several blobs, URL-safe
    alphabet, JSON escapes) ``content`` keeps the whole text and ``audio`` the decoded
    samples of every blob, joined: still byte-exact, still analyzable.
    TODO(merge with issue20): cut URL-safe audio too once restoring knows the alphabet."""
    spans: list[tuple[int, int]] = []
    at = 0
    for data in datas:
        offset = _find_verbatim(text[at:], data) if data else -1
        if offset < 0:
            spans = []
            break
        start = at + offset + 1
        spans.append((start, start + len(data)))
        at = start + len(data)
    if not keep_audio:
        rec.dropped_audio = b"".join(audios)  # for the writer's voice detector only
    if not spans:  # not verbatim: rebuilt from the parsed message when samples are dropped
        if keep_audio:
            rec.audio = b"".join(audios)
            rec.content = rec.journal_content = redact_text(text)
        else:
            for blob, key in blobs:
                blob[key] = ""
            rec.content = rec.journal_content = redact_text(json.dumps(message))
        return
    pieces = _redact_around(text, spans)
    if not keep_audio:
        rec.content = rec.journal_content = "".join(pieces)
        return
    rec.audio = b"".join(audios)
    whole = [pieces[0]]
    for data, piece in zip(datas, pieces[1:], strict=True):
        whole += [data, piece]
    rec.journal_content = "".join(whole)
    standard = len(datas) == 1 and "-" not in datas[0] and "_" not in datas[0]
    if standard and audio_cut.is_canonical(datas[0], audios[0]):
        rec.audio_offset = len(pieces[0])
        rec.content = pieces[0] + pieces[1]
    else:
        rec.content = rec.journal_content
