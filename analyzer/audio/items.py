"""Audio per conversation item, from a session's chunks: user items as the input buffer says
(:mod:`analyzer.audio.input_items`), reply items as their chunks' item ids say. An item's file
holds its samples as sent (G.711 stays G.711), so it is rebuilt from the chunks' bytes, not
from the decoded streams."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from analyzer.audio.input_items import InputItems, Piece, input_items
from analyzer.audio.model import AudioCapture, ItemAudio, SessionAudio
from analyzer.audio.source import Capture, SessionChunks, open_capture
from analyzer.audio.streams import DECODABLE, pcm16_samples
from analyzer.codecs import resample
from analyzer.formats import PCM16, AudioFormat

UNKNOWN_ITEM = "unknown"  # the file name of reply audio that names no item


def _reply_pieces(chunks: SessionChunks) -> dict[str, list[Piece]]:
    """Each reply item's chunks, items in the order of their first chunk."""
    found: dict[str, list[Piece]] = {}
    for k, user in enumerate(chunks.user):
        if not user:
            key = chunks.item[k] or UNKNOWN_ITEM
            found.setdefault(key, []).append((k, 0, len(chunks.data[k])))
    return found


def _item(
    chunks: SessionChunks,
    item_id: str,
    role: str,
    pieces: list[Piece],
    found: InputItems,
    warnings: list[str],
    join: bool,
) -> ItemAudio:
    formats = {chunks.formats[k] for k, _, _ in pieces}
    fmt = chunks.formats[pieces[0][0]]
    parts: list[memoryview | bytes] = [chunks.data[k][a:b] for k, a, b in pieces]
    if len(formats) > 1:
        fmt, parts = _joined_formats(item_id, formats, pieces, chunks, warnings)
    arrivals: list[tuple[float, int]] = []
    offset = 0
    for (k, _, _), part in zip(pieces, parts, strict=True):
        arrivals.append((chunks.time_s[k], offset))
        offset += len(part)
    if fmt.encoding == PCM16 and offset % 2:
        warnings.append(f"item {item_id}: {offset} bytes is not a whole number of 16-bit samples.")
    segment = found.segments.get(item_id, (None, None))
    return ItemAudio(
        session_id=chunks.session_id,
        item_id=item_id,
        role=role,
        index=0,
        format=fmt,
        raw=b"".join(parts) if join else b"",
        arrivals=arrivals,
        played_ms=found.played_ms.get(item_id) if role == "assistant" else None,
        audio_start_ms=segment[0],
        audio_end_ms=segment[1],
        parts=() if join else tuple(parts),
    )


def _joined_formats(
    item_id: str,
    formats: set[AudioFormat],
    pieces: list[Piece],
    chunks: SessionChunks,
    warnings: list[str],
) -> tuple[AudioFormat, list[memoryview | bytes]]:
    """An item whose audio changes format: decoded to pcm16 at the highest rate where it can
    be, else its parts as they are; with a warning."""
    parts: list[memoryview | bytes] = [chunks.data[k][a:b] for k, a, b in pieces]
    if not all(f.encoding in DECODABLE for f in formats):
        warnings.append(
            f"item {item_id}: its audio changes format and cannot be decoded; "
            "its parts were joined as they are."
        )
        return chunks.formats[pieces[0][0]], parts
    rate = max(f.sample_rate for f in formats)
    joined: list[memoryview | bytes] = []
    for (k, _, _), part in zip(pieces, parts, strict=True):
        fmt = chunks.formats[k]
        samples = pcm16_samples(part, fmt)
        assert samples is not None
        joined.append(resample(samples, fmt.sample_rate, rate).astype("<i2").tobytes())
    names = ", ".join(sorted(f"{f.encoding} {f.sample_rate} Hz" for f in formats))
    warnings.append(
        f"item {item_id}: its audio changes format ({names}); written as pcm16 {rate} Hz."
    )
    return AudioFormat(PCM16, rate), joined


def session_audio(chunks: SessionChunks, join: bool = True) -> SessionAudio:
    """A session's items (conversation order: the order each was first named) and chunks.
    ``join=False`` (export): each item's samples are left where they lie, in ``parts``."""
    found = input_items(chunks)
    entries = [(item, "user", p) for item, p in found.pieces.items()]
    entries += [(item, "assistant", p) for item, p in _reply_pieces(chunks).items()]
    first = dict(found.first_seen)
    for item_id, _, pieces in entries[len(found.pieces) :]:  # a reply item: its first chunk too
        first[item_id] = min(first.get(item_id, 2**62), chunks.seq[pieces[0][0]])
    entries.sort(key=lambda e: first.get(e[0], 2**62))
    warnings = list(chunks.warnings)
    items = []
    for item_id, role, pieces in entries:
        if pieces:
            items.append(_item(chunks, item_id, role, pieces, found, warnings, join))
            items[-1].index = len(items)
    return SessionAudio(
        session_id=chunks.session_id,
        start_s=chunks.start_s,
        items=items,
        chunks=chunks,
        samples_dropped=chunks.samples_dropped,
        warnings=warnings,
    )


def scan(
    paths: Sequence[Path], join: bool = True, sessions: Collection[str] | None = None
) -> tuple[Capture, Iterator[SessionAudio]]:
    """The capture (of ``sessions`` only, when given), and its sessions' audio one at a time
    (in any order)."""
    capture = open_capture(list(paths), sessions)
    return capture, (session_audio(chunks, join) for chunks in capture.sessions)


def load_audio(paths: Sequence[Path] | Path) -> AudioCapture:
    """The audio of every session of the captures at ``paths`` (sessions in start order):
    items, chunks, and warnings. Raises :class:`analyzer.reader.CaptureError`."""
    capture, found = scan([paths] if isinstance(paths, Path) else list(paths))
    order = {sid: n for n, sid in enumerate(capture.session_ids)}
    sessions = sorted(found, key=lambda s: order[s.session_id])
    warnings = list(capture.warnings)
    for session in sessions:
        warnings.extend(session.warnings)
    sessions.sort(key=lambda s: s.start_s)
    return AudioCapture(sessions, warnings)


def load_item_audio(paths: Sequence[Path] | Path) -> list[ItemAudio]:
    """One entry per conversation item that carries audio, sessions in start order, items in
    conversation order. Items whose samples were not recorded (rt_audio=drop) are left out;
    :func:`load_audio` says so in its warnings."""
    return [item for session in load_audio(paths).sessions for item in session.items]
