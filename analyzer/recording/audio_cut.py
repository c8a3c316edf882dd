"""Cut a frame's audio out of its JSON text, and put it back (byte for byte).

An event may hold audio in several fields (an item with two ``input_audio`` parts, a response
with several output items): the adapter says where (``analyzer.protocols.audio_paths``). Each
field whose base64 stands verbatim in the text is cut out; the text between the fields is
redacted on its own, so a secret is never looked for inside a sample (URL-safe base64 can hold
``sk-``-looking runs). The decoded audio of every field, in text order, goes to the ``audio``
column; where it was cut is said by ``audio_offset`` (one standard-base64 field, as captures
have always had) or by ``audio_cuts`` (several fields, or URL-safe ones).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pybase64  # SIMD base64: ~1 us for a 100 ms audio delta, where the stdlib takes ~14 us

from analyzer.protocols.audio_paths import AudioPaths, Field, find_fields
from analyzer.recording.redact import redact_text

if TYPE_CHECKING:
    from analyzer.recording.frames import FrameRecord

URLSAFE = b"-_"
_SPACE = " \t\r\n"


@dataclass(slots=True)
class _Audio:
    """One string found at an audio path."""

    field: Field
    b64: str
    audio: bytes | None  # None: not valid base64
    urlsafe: bool
    start: int = -1  # index of its first base64 character in the text; -1: not found verbatim
    cut: bool = False  # taken out of ``content``


def decode_b64(text: str, urlsafe: bool = False) -> tuple[bytes, bool] | None:
    """The bytes of base64 ``text`` and whether it is URL-safe, or None when it is not base64
    (URL-safe only tried when the path allows it). What pybase64 refuses, the standard library
    is asked again: it accepts padding past a whole quantum ("AAAA=")."""
    for altchars in (None, URLSAFE) if urlsafe else (None,):
        try:
            return pybase64.b64decode(text, altchars=altchars, validate=True), altchars is not None
        except (binascii.Error, ValueError):
            pass
        try:
            return base64.b64decode(text, altchars=altchars, validate=True), altchars is not None
        except (binascii.Error, ValueError):
            pass
    return None


def encode_b64(audio: bytes, urlsafe: bool = False) -> str:
    return pybase64.b64encode(audio, altchars=URLSAFE if urlsafe else None).decode()


def is_canonical(b64: str, audio: bytes, urlsafe: bool = False) -> bool:
    """Whether encoding ``audio`` gives back exactly ``b64`` (checked without re-encoding all:
    only the last quantum can differ, in its unused bits)."""
    n = len(audio)
    if len(b64) != 4 * ((n + 2) // 3):
        return False
    if n == 0:
        return True
    tail = audio[n - (n % 3 or 3) :]
    if not urlsafe:
        return base64.b64encode(tail).decode() == b64[-4:]
    if "+" in b64 or "/" in b64:  # pybase64 reads both alphabets: a mix is not canonical
        return False
    return base64.urlsafe_b64encode(tail).decode() == b64[-4:]


def _under_key(text: str, quote: int, key: str) -> bool:
    """Whether the string opening at ``text[quote]`` is the value of ``"key":``."""
    j = quote - 1
    while j >= 0 and text[j] in _SPACE:
        j -= 1
    if j < 0 or text[j] != ":":
        return False
    j -= 1
    while j >= 0 and text[j] in _SPACE:
        j -= 1
    return text.endswith(f'"{key}"', 0, j + 1)


def find_value(text: str, b64: str, key: str, taken: set[int] | None = None) -> int:
    """Where the base64 of the string ``"key": "<b64>"`` starts in ``text``, or -1; found by
    its head, then checked whole (searching for a 6 KB needle costs more than comparing it
    once). Starts in ``taken`` are skipped (two fields holding the same audio)."""
    start = 0
    head = '"' + b64[:32]
    while (quote := text.find(head, start)) >= 0:
        at = quote + 1
        end = at + len(b64)
        if (
            text.startswith(b64, at)
            and text[end : end + 1] == '"'
            and (taken is None or at not in taken)
            and _under_key(text, quote, key)
        ):
            return at
        start = at
    return -1


def _split_streamed(rec: FrameRecord, text: str, b64: str, key: str, keep_audio: bool) -> bool:
    """:func:`split_audio` of a streaming event (one top-level field, most of the frames of a
    session) when nothing is out of the ordinary; False: let the general way do it."""
    try:
        audio = pybase64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    start = find_value(text, b64, key)
    if start < 0:
        return False
    prefix = redact_text(text[:start])
    suffix = redact_text(text[start + len(b64) :])
    if not keep_audio:
        content = prefix + suffix
        if b64 in content:  # it also stood elsewhere, under a key of that name
            return False
        rec.content = rec.journal_content = content
        rec.dropped_audio = audio  # for the writer's voice detector only
    else:
        rec.audio = audio
        rec.journal_content = prefix + b64 + suffix
        if is_canonical(b64, audio):
            # content[:offset] + b64encode(audio) + content[offset:] rebuilds the frame.
            rec.audio_offset = len(prefix)
            rec.content = prefix + suffix
        else:
            rec.content = rec.journal_content
    rec.audio_b64_bytes = len(b64)
    rec.audio_bytes = len(audio)
    return True


def _may_hold(text: str, paths: AudioPaths) -> bool:
    """False when no key of ``paths`` is in the text, not even escaped, and none is required
    (its absence is a problem to record): most item and response events hold no audio, and
    are then not walked."""
    for path in paths:  # a loop: any() over a generator costs more than the walk
        if not path.optional:
            return True
        for key in path.quoted_keys:
            if key in text:
                return True
    return "\\u" in text


def _found(event: dict[str, Any], paths: AudioPaths, rec: FrameRecord) -> list[Field]:
    """The strings at the audio paths; a required field that is not one is a problem."""
    fields = find_fields(event, paths)
    strings = []
    for field in fields:
        if isinstance(field.value, str):
            strings.append(field)
        else:
            rec.problem = f"'{field.path.text.removesuffix('?')}' is not a base64 string"
    return strings


def split_audio(
    rec: FrameRecord,
    text: str,
    event: dict[str, Any],
    paths: AudioPaths,
    keep_audio: bool,
    known_audio_bytes: int | None,
    known_b64_bytes: int | None = None,
    rewritten: bool = False,
) -> bool:
    """Count and take out the audio of an event whose type has audio ``paths``; True when it
    set ``rec.content`` itself. ``known_*``: sizes recorded when the audio was dropped."""
    key = paths[0].streamed if len(paths) == 1 else None
    if key is not None:
        b64 = event.get(key)
        if isinstance(b64, str) and b64 and _split_streamed(rec, text, b64, key, keep_audio):
            return True
    if not _may_hold(text, paths):
        return False
    fields = _found(event, paths, rec)
    if not fields:
        return False
    # Empty fields with a known size were emptied when recorded (rt_audio=drop journals); with
    # a size of 0 they were empty on the wire and are read below as they were live.
    if (known_audio_bytes or known_b64_bytes) and all(f.value == "" for f in fields):
        rec.audio_bytes = known_audio_bytes
        rec.audio_b64_bytes = known_b64_bytes
        if known_b64_bytes is None and known_audio_bytes is not None:  # a line without it
            rec.audio_b64_bytes = 4 * ((known_audio_bytes + 2) // 3)
        return False
    found: list[_Audio] = []
    b64_bytes = 0
    audio_bytes: int | None = None
    for field in fields:
        b64 = field.value
        b64_bytes += len(b64)
        decoded = decode_b64(b64, field.path.urlsafe)
        if decoded is None:
            rec.problem = "audio is not valid base64"
            found.append(_Audio(field, b64, None, False))
            continue
        found.append(_Audio(field, b64, *decoded))
        audio_bytes = (audio_bytes or 0) + len(decoded[0])
    rec.audio_b64_bytes = b64_bytes
    rec.audio_bytes = audio_bytes
    if not keep_audio:  # for the writer's voice detector only
        rec.dropped_audio = b"".join(a.audio for a in found if a.audio is not None)
    # Where each field stands. Kept audio that is not base64 is no audio: it stays in the text,
    # redacted as the rest; dropped, whatever an audio field holds goes.
    taken: set[int] = set()
    for item in found:
        if item.audio is None and keep_audio:
            continue
        item.start = find_value(text, item.b64, item.field.key, taken)
        if item.start >= 0:  # an empty field is placed (its part of the audio is in order)
            taken.add(item.start)
            item.cut = item.b64 != "" and (
                not keep_audio or is_canonical(item.b64, item.audio or b"", item.urlsafe)
            )
        elif item.b64:  # not verbatim (JSON escapes inside it): it cannot be cut out
            return _rewrite(rec, text, event, paths, keep_audio, found, rewritten)
    _cut(rec, text, found, keep_audio)
    assert rec.content is not None
    if not keep_audio and any(a.b64 and a.b64 in rec.content for a in found):
        # The same base64 also stood under a key of that name outside the paths, and was cut
        # there first: write the event again with its audio fields emptied.
        return _rewrite(rec, text, event, paths, keep_audio, found, rewritten)
    return True


def _cut(rec: FrameRecord, text: str, found: list[_Audio], keep_audio: bool) -> None:
    """Fill ``content`` (cut fields out), ``journal_content`` (whole unless dropped) and the
    audio columns; the text around the fields is redacted, the fields never are."""
    placed = sorted((a for a in found if a.start >= 0), key=lambda a: a.start)
    content: list[str] = []
    journal: list[str] = []
    cuts: list[dict[str, Any]] = []
    length = 0
    at = 0
    for item in placed:
        gap = redact_text(text[at : item.start])
        content.append(gap)
        journal.append(gap)
        length += len(gap)
        if keep_audio:
            journal.append(item.b64)
        if item.cut:
            offset: int | None = length
        else:
            content.append(item.b64)
            length += len(item.b64)
            offset = None
        if keep_audio and item.audio is not None:
            cuts.append(_entry(offset, item))
        at = item.start + len(item.b64)
    tail = redact_text(text[at:])
    content.append(tail)
    journal.append(tail)
    rec.content = "".join(content)
    rec.journal_content = "".join(journal) if keep_audio else rec.content
    if not keep_audio:
        return
    audios = [a.audio for a in placed if a.audio is not None]
    for item in found:  # not placed: an empty field not found verbatim
        if item.start < 0 and item.audio is not None:
            cuts.append(_entry(None, item))
            audios.append(item.audio)
    _set_audio(rec, audios, cuts)


def _entry(offset: int | None, item: _Audio) -> dict[str, Any]:
    """One row of ``audio_cuts`` (analyzer.schema.AUDIO_CUT_STRUCT)."""
    return {"offset": offset, "audio_bytes": len(item.audio or b""), "urlsafe": item.urlsafe}


def _set_audio(rec: FrameRecord, audios: list[bytes], cuts: list[dict[str, Any]]) -> None:
    if not cuts:
        return
    rec.audio = audios[0] if len(audios) == 1 else b"".join(audios)
    if len(cuts) > 1 or cuts[0]["urlsafe"]:
        rec.audio_cuts = cuts
    else:  # one standard field: the format's first way (None: left in the text)
        rec.audio_offset = cuts[0]["offset"]


def _rewrite(
    rec: FrameRecord,
    text: str,
    event: dict[str, Any],
    paths: AudioPaths,
    keep_audio: bool,
    found: list[_Audio],
    rewritten: bool,
) -> bool:
    """Some field is not verbatim in the text. Dropping: the event is written again without its
    audio. Keeping: the text is kept as it came, the audio also decoded beside it, unless
    redaction would reach into URL-safe audio; then the event is written again (verbatim
    fields, cut as usual)."""
    if not keep_audio:
        for item in found:
            item.field.holder[item.field.key] = ""
        rec.content = rec.journal_content = redact_text(json.dumps(event, ensure_ascii=False))
        return True
    redacted = redact_text(text)
    if redacted != text and not rewritten and any(a.urlsafe for a in found):
        again = json.dumps(event, ensure_ascii=False)
        return split_audio(rec, again, event, paths, keep_audio, None, None, rewritten=True)
    rec.content = rec.journal_content = redacted
    audios = [a.audio for a in found if a.audio is not None]
    _set_audio(rec, audios, [_entry(None, a) for a in found if a.audio is not None])
    return True


def restore_frame_text(
    content: str,
    audio_offset: int | None,
    audio: bytes | None,
    audio_cuts: list[dict[str, Any]] | None = None,
) -> str:
    """The frame text as recorded, audio base64 put back where it was cut out."""
    if audio is None:
        return content
    if audio_cuts:
        pieces: list[str] = []
        at = 0
        position = 0
        for cut in audio_cuts:
            size = cut["audio_bytes"]
            offset = cut["offset"]
            if offset is not None:
                pieces.append(content[at:offset])
                pieces.append(encode_b64(audio[position : position + size], cut["urlsafe"]))
                at = offset
            position += size
        pieces.append(content[at:])
        return "".join(pieces)
    if audio_offset is None:
        return content
    return content[:audio_offset] + encode_b64(audio) + content[audio_offset:]
