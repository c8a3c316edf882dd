"""Audio per conversation item, rebuilt from a capture's ``audio`` column.

Audio frames are never JSON-parsed: their decoded samples are in the ``audio`` column already.
Only the few events that say where a turn's audio starts and ends (session config, VAD, commit,
clear, truncate) are parsed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.arrowbuffers import int64_array, number_array, string_scalar, valid
from analyzer.audio.chunks import AudioChunk, ChunkList, Chunks, Index, as_bytes_view
from analyzer.audio.wav import encoded_wav_bytes, is_wav, parse_wav
from analyzer.codecs import alaw_decode, resample_pcm16, ulaw_decode
from analyzer.formats import ALAW, MP3, PCM16, ULAW, AudioFormat, format_changes, provider_of
from analyzer.protocol import (
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    SERVER_AUDIO_EVENTS,
    parse_event,
)
from analyzer.schema import FRAME_SCHEMA, parse_file_metadata

AUDIO_COLUMNS: tuple[str, ...] = (
    "session_id",
    "seq",
    "time_s",
    "direction",
    "event_type",
    "item_id",
    "response_id",
    "audio",
    "audio_bytes",
    "content",
)

# Events whose JSON we parse; every other frame is read from its columns only.
_CONFIG_EVENTS = CONFIG_EVENTS
_SPEECH_STARTED = "input_audio_buffer.speech_started"
_SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
_TIMEOUT_TRIGGERED = "input_audio_buffer.timeout_triggered"
_COMMITTED = "input_audio_buffer.committed"
_CLEARED = "input_audio_buffer.cleared"
_COMMIT = "input_audio_buffer.commit"
_CLEAR = "input_audio_buffer.clear"
_TRUNCATE = "conversation.item.truncate"
_PARSED_EVENTS = _CONFIG_EVENTS | {_SPEECH_STARTED, _SPEECH_STOPPED, _TIMEOUT_TRIGGERED, _TRUNCATE}

DECODABLE = frozenset({PCM16, ULAW, ALAW})


def to_pcm16(data: bytes, audio_format: AudioFormat) -> bytes:
    """16-bit PCM of ``data`` at the format's own rate (G.711 decoded; pcm16 as is)."""
    if audio_format.encoding == ULAW:
        return ulaw_decode(data)
    if audio_format.encoding == ALAW:
        return alaw_decode(data)
    if audio_format.encoding == PCM16:
        return data
    raise ValueError(f"cannot decode {audio_format.encoding} audio to PCM.")


@dataclass(slots=True)
class ItemAudio:
    """The audio of one conversation item, samples as they were on the wire."""

    session_id: str
    item_id: str
    role: str  # "user" or "assistant"
    index: int  # 1-based, in conversation order within the session
    format: AudioFormat  # of ``raw``: pcm16, g711_ulaw, g711_alaw, mp3 (or what was declared)
    raw: bytes  # the samples as sent (WAV payloads' RIFF headers stripped)
    arrivals: list[tuple[float, int]]  # (capture time_s, offset in raw) of each frame's audio
    played_ms: float | None = None  # assistant: the client's truncate audio_end_ms, if any
    audio_start_ms: float | None = None  # user, server VAD: the speech segment on the audio clock
    audio_end_ms: float | None = None

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def pcm16(self) -> bytes | None:
        """Decoded 16-bit PCM at :attr:`sample_rate` (G.711 decoded; None for mp3 and unknown
        formats). An odd trailing byte of pcm16 is left out."""
        if self.format.encoding not in DECODABLE:
            return None
        raw = self.raw
        if self.format.encoding == PCM16 and len(raw) % 2:
            raw = raw[:-1]
        return to_pcm16(raw, self.format)

    @property
    def duration_ms(self) -> float | None:
        return self.format.duration_ms(len(self.raw))

    @property
    def extension(self) -> str:
        if self.format.encoding in DECODABLE:
            return "wav"
        return "mp3" if self.format.encoding == MP3 else "bin"

    def file_bytes(self) -> bytes:
        """The item's file: a WAV holding the samples byte for byte, or the mp3 stream as is."""
        if self.format.encoding in DECODABLE:
            return encoded_wav_bytes(self.raw, self.format)
        return self.raw


@dataclass
class SessionAudio:
    session_id: str
    start_s: float  # time 0 of the session's timeline (its WebSocket opening)
    items: list[ItemAudio] = field(default_factory=list)
    # every append, cleared too (a ChunkList when read from a capture: arrays, objects on demand)
    user_stream: Sequence[AudioChunk] = field(default_factory=list)
    samples_dropped: bool = False  # recorded with rt_audio=drop: sizes known, samples not
    warnings: list[str] = field(default_factory=list)


@dataclass
class AudioCapture:
    sessions: list[SessionAudio]
    warnings: list[str]  # the reader's and the sessions'


@dataclass(slots=True)
class ItemParts:
    """An item's audio where it lies, one chunk a frame (at its arrival), all in ``format``:
    what :class:`ItemAudio` is made of, before the copy that joins it."""

    item_id: str
    role: str
    format: AudioFormat
    chunks: Chunks
    data: list[memoryview]  # the same bytes in as few views as they lie in
    played_ms: float | None = None
    audio_start_ms: float | None = None
    audio_end_ms: float | None = None

    @property
    def size(self) -> int:
        return sum(len(view) for view in self.data)

    def audio(self, session_id: str, index: int) -> ItemAudio:
        sizes = self.chunks.sizes
        offsets = (np.cumsum(sizes) - sizes).tolist()
        return ItemAudio(
            session_id=session_id,
            item_id=self.item_id,
            role=self.role,
            index=index,
            format=self.format,
            raw=bytes(self.data[0]) if len(self.data) == 1 else b"".join(self.data),
            arrivals=list(zip(self.chunks.time_s.tolist(), offsets, strict=True)),
            played_ms=self.played_ms,
            audio_start_ms=self.audio_start_ms,
            audio_end_ms=self.audio_end_ms,
        )


@dataclass
class BuiltSession:
    """A session's audio as read from a capture, nothing copied yet (audio export writes it
    from where it lies); :meth:`audio` is the :class:`SessionAudio`."""

    session_id: str
    start_s: float
    items: list[ItemParts]  # in conversation order
    user: Chunks  # every append with samples, cleared ones too
    samples_dropped: bool
    warnings: list[str]

    def audio(self) -> SessionAudio:
        items = [item.audio(self.session_id, i + 1) for i, item in enumerate(self.items)]
        return SessionAudio(
            self.session_id,
            self.start_s,
            items,
            ChunkList(self.user),
            self.samples_dropped,
            self.warnings,
        )


# --- reading columns -------------------------------------------------------------------------

_META_COLUMNS: tuple[str, ...] = tuple(c for c in AUDIO_COLUMNS if c != "audio")
# What is read of a Parquet capture up front; ``content`` comes a row group at a time.
_FIRST_COLUMNS: tuple[str, ...] = tuple(c for c in _META_COLUMNS if c != "content")


class _Pieces:
    """The ``audio`` column in pieces (row groups) that a scan adds and drops as it goes, each
    covering the rows from its ``start``."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._arrays: list[pa.Array] = []

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> _Pieces:
        pieces = cls()
        start = 0
        for chunk in column.chunks:
            pieces.add(start, chunk)
            start += len(chunk)
        return pieces

    def add(self, start: int, column: pa.ChunkedArray | pa.Array) -> None:
        if isinstance(column, pa.ChunkedArray):
            array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        else:
            array = column
        if len(array) == 0:
            return
        at = bisect_right(self._starts, start)
        self._starts.insert(at, start)
        self._arrays.insert(at, array)

    def drop_before(self, row: int) -> None:
        """Forget the pieces that start before ``row``."""
        while self._starts and self._starts[0] < row:
            del self._starts[0], self._arrays[0]

    def gather(self, rows: Index) -> tuple[Chunks, npt.NDArray[np.bool_]]:
        """The values at ``rows`` as chunks (time and format left blank), copied back to back in
        that order into one buffer per piece (so neighbours join without a copy), and which
        are not null."""
        n = len(rows)
        piece = np.searchsorted(np.array(self._starts, dtype=np.int64), rows, side="right") - 1
        buffer = np.zeros(n, dtype=np.int64)
        start = np.zeros(n, dtype=np.int64)
        end = np.zeros(n, dtype=np.int64)
        present = np.zeros(n, dtype=np.bool_)
        buffers: list[memoryview] = []
        for p in np.unique(piece).tolist():
            where = np.flatnonzero(piece == p)
            taken = self._arrays[p].take(int64_array(rows[where] - self._starts[p]))
            offsets = np.frombuffer(taken.buffers()[1], dtype=np.int64)
            offsets = offsets[taken.offset : taken.offset + len(taken) + 1]
            data = taken.buffers()[2]
            buffer[where] = len(buffers)
            buffers.append(as_bytes_view(data) if data is not None else memoryview(b""))
            start[where] = offsets[:-1]
            end[where] = offsets[1:]
            present[where] = valid(taken)
        none = np.zeros(n, dtype=np.int64)
        return Chunks(buffers, buffer, start, end, np.zeros(n), none, []), present


# What a frame is to the audio: nothing, a user append, an assistant delta, an event that moves
# the input buffer or says what was played (parsed one by one), a session config (formats), or
# one that names an item (only its seq matters: when the item was first seen).
_OTHER, _USER, _ASSISTANT, _CONTROL, _CONFIG, _NAMED = range(6)
_CLIENT_KINDS = {
    **dict.fromkeys(CLIENT_AUDIO_EVENTS, _USER),
    **dict.fromkeys((_COMMIT, _CLEAR, _TRUNCATE), _CONTROL),
}
_SERVER_KINDS = {
    **dict.fromkeys(SERVER_AUDIO_EVENTS, _ASSISTANT),
    **dict.fromkeys(
        (_COMMITTED, _SPEECH_STARTED, _SPEECH_STOPPED, _TIMEOUT_TRIGGERED, _CLEARED), _CONTROL
    ),
    **dict.fromkeys(ITEM_CREATED_EVENTS, _NAMED),
}


def _kind(event_type: str | None, direction: str | None) -> int:
    if event_type in _CONFIG_EVENTS:
        return _CONFIG
    kinds = {"client": _CLIENT_KINDS, "server": _SERVER_KINDS}.get(direction or "", {})
    return kinds.get(event_type or "", _OTHER)


def _codes(column: pa.ChunkedArray) -> tuple[Index, list[Any]]:
    """Each row's code and the values coded (null last)."""
    if pa.types.is_dictionary(column.type):
        array = column.unify_dictionaries().combine_chunks()
    else:
        array = pc.dictionary_encode(column.combine_chunks())
    values = array.dictionary.to_pylist()
    codes = number_array(array.indices, fill=len(values))
    return codes.astype(np.int64), [*values, None]


def _kinds(event_type: pa.ChunkedArray, direction: pa.ChunkedArray) -> npt.NDArray[np.int8]:
    """What each frame is to the audio, worked out once per (event type, direction) seen."""
    type_codes, types = _codes(event_type)
    direction_codes, directions = _codes(direction)
    table = np.array([[_kind(t, d) for d in directions] for t in types], dtype=np.int8)
    return table[type_codes, direction_codes]


def _non_empty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(column, string_scalar("")), string_scalar(None), column)


def _delta_keys(table: pa.Table, rows: Index) -> tuple[Index, list[str]]:
    """Codes of the item each delta at ``rows`` belongs to (its item id, else its response id,
    else "unknown"), and the names of the codes."""
    part = table.select(["item_id", "response_id"]).take(int64_array(rows))
    keys = pc.coalesce(
        _non_empty(_plain(part.column("item_id"))),
        _non_empty(_plain(part.column("response_id"))),
        string_scalar("unknown"),
    )
    encoded = keys.combine_chunks().dictionary_encode()
    codes = number_array(encoded.indices).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # to_pylist of dictionary columns is slow; the columns we read values of are small anyway
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _session_order(table: pa.Table) -> tuple[Index, Index, list[str]]:
    """The rows sorted by session id, then seq (stable, as Arrow sorts them); each sorted row's
    session (its index in the sorted names) and the names."""
    codes, names = _codes(table.column("session_id"))
    names = names[:-1]  # session ids are never null
    rank = np.empty(len(names), dtype=np.int64)
    rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    session = rank[codes]
    seq = number_array(table.column("seq")).astype(np.int64)
    low, high = (int(seq.min()), int(seq.max())) if len(seq) else (0, 0)
    span = high - low + 1
    if span * max(len(names), 1) < 2**62:  # one key, one stable sort
        order = np.argsort(session * span + (seq - low), kind="stable")
    else:
        order = np.lexsort((seq, session))
    return order.astype(np.int64), session[order], sorted(names)


# An event the builder looks at one by one: (row among the sorted frames, kind, seq, direction,
# event_type, item_id), and with its content.
_EventHead = tuple[int, int, int, str | None, str | None, str | None]
_Event = tuple[int, int, int, str | None, str | None, str | None, str | None]


class _Frames:
    """The audio columns of all frames but the samples, rows sorted by session, then seq: numpy
    arrays of what every frame needs, Python values of the few events that are parsed."""

    def __init__(self, table: pa.Table) -> None:
        self.n = table.num_rows
        self.order, session, names = _session_order(table)
        order = self.order
        self.seq: Index = number_array(table.column("seq")).astype(np.int64)[order]
        time_s = number_array(table.column("time_s")).astype(np.float64, copy=False)
        self.time_s: npt.NDArray[np.float64] = time_s[order]
        audio_bytes = number_array(table.column("audio_bytes"), fill=0)
        self.audio_bytes: Index = audio_bytes.astype(np.int64)[order]
        event_type = table.column("event_type")
        direction = table.column("direction")
        self.kind = _kinds(event_type, direction)[order]
        deltas = np.flatnonzero(self.kind == _ASSISTANT)
        codes, self.key_names = _delta_keys(table, order[deltas])
        self.key: Index = np.full(self.n, -1, dtype=np.int64)
        self.key[deltas] = codes
        self._events(table, event_type, direction)
        self.named, self.named_rows = self._named(table)
        cuts = np.flatnonzero(session[1:] != session[:-1]) + 1
        self.bounds: list[int] = [0, *cuts.tolist(), self.n] if self.n else [0]
        self.session_ids: list[str] = [names[int(session[b])] for b in self.bounds[:-1]]
        if "content" in table.column_names:
            self.add_contents(0, table.column("content"))

    def _events(
        self, table: pa.Table, event_type: pa.ChunkedArray, direction: pa.ChunkedArray
    ) -> None:
        """The config and control events, in sorted row order, and their sorted rows. Their
        ``content`` comes with :meth:`add_contents` (a capture's biggest column after the audio,
        read with the samples, a row group at a time)."""
        rows = np.flatnonzero((self.kind == _CONTROL) | (self.kind == _CONFIG))
        self.event_rows = rows
        at = int64_array(self.order[rows])
        columns = (
            _plain(direction.take(at)).to_pylist(),
            _plain(event_type.take(at)).to_pylist(),
            _plain(table.column("item_id")).take(at).to_pylist(),
        )
        kinds, seqs = self.kind[rows].tolist(), self.seq[rows].tolist()
        self.events: list[_EventHead] = list(zip(rows.tolist(), kinds, seqs, *columns, strict=True))
        self.contents: list[str | None] = [None] * len(rows)
        # the events by capture-table row, to find those of a row group
        capture_rows = self.order[rows]
        self._by_capture_row = np.argsort(capture_rows, kind="stable")
        self._capture_rows = capture_rows[self._by_capture_row]

    def add_contents(self, first_row: int, content: pa.ChunkedArray | pa.Array) -> None:
        """Take the events' contents from capture rows ``first_row`` on (a row group's)."""
        lo, hi = np.searchsorted(self._capture_rows, [first_row, first_row + len(content)])
        if lo == hi:
            return
        rows = int64_array(self._capture_rows[lo:hi] - first_row)
        values = content.take(rows).to_pylist()
        for event, value in zip(self._by_capture_row[lo:hi].tolist(), values, strict=True):
            self.contents[event] = value

    def _named(self, table: pa.Table) -> tuple[list[tuple[str | None, int]], Index]:
        """(item id, seq) of the events that name an item, in sorted row order; their rows."""
        rows = np.flatnonzero(self.kind == _NAMED)
        item_ids = _plain(table.column("item_id")).take(int64_array(self.order[rows])).to_pylist()
        return list(zip(item_ids, self.seq[rows].tolist(), strict=True)), rows

    def __len__(self) -> int:
        return len(self.session_ids)

    def session_audio_bytes(self) -> Index:
        """Each session's audio bytes, as sent."""
        if not self.n:
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(self.audio_bytes, self.bounds[:-1])

    def rows(self, index: int) -> _Rows:
        """The frames of the ``index``-th session (in session id order)."""
        start, end = self.bounds[index], self.bounds[index + 1]
        return _Rows(self.session_ids[index], self, start, end)

    def row_range(self, index: int) -> tuple[int, int]:
        """The smallest and biggest capture-table row of the ``index``-th session."""
        rows = self.order[self.bounds[index] : self.bounds[index + 1]]
        return int(rows.min()), int(rows.max())


class _Rows:
    """One session's frames, in seq order: numpy views, and its parsed events."""

    def __init__(self, session_id: str, frames: _Frames, start: int, end: int) -> None:
        self.session_id = session_id
        self.key_names = frames.key_names
        part = slice(start, end)
        self.row = frames.order[part]  # where each frame's audio is in the capture table
        self.seq = frames.seq[part]
        self.time_s = frames.time_s[part]
        self.kind = frames.kind[part]
        self.audio_bytes = frames.audio_bytes[part]
        self.key = frames.key[part]
        first, last = np.searchsorted(frames.named_rows, [start, end]).tolist()
        self.named = frames.named[first:last]  # (item id, seq) of the events naming items
        first, last = np.searchsorted(frames.event_rows, [start, end]).tolist()
        # with rows counted from the session's first
        self.events: list[_Event] = [
            (row - start, kind, seq, direction, event_type, item_id, content)
            for (row, kind, seq, direction, event_type, item_id), content in zip(
                frames.events[first:last], frames.contents[first:last], strict=True
            )
        ]

    def __len__(self) -> int:
        return len(self.seq)


def _ms(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# --- one session's audio frames --------------------------------------------------------------


@dataclass(slots=True)
class _Audio:
    """A session's audio frames as chunks: the user's appends in seq order, then the assistant's
    deltas item by item (each item's in seq order). A frame recorded without its samples
    (rt_audio=drop) is a chunk with no bytes, ``dropped`` and its ``size`` as sent."""

    chunks: Chunks
    size: Index
    duration_ms: npt.NDArray[np.float64]  # 0 where size is not time
    dropped: npt.NDArray[np.bool_]
    position: Index  # of each chunk's frame among the session's rows
    users: int  # chunks[:users] are the user's
    items: list[tuple[str, int, int]]  # (key, first, end): the assistant's deltas by item
    bad_wav: bool  # some WAV payloads could not be read (kept as they are)


def _format_indexes(
    changes: list[tuple[int, AudioFormat, AudioFormat]],
) -> tuple[list[AudioFormat], Index, Index, Index]:
    """The session's formats (each once), the seqs the changes start at and, per change, the
    index of its input and of its output format."""
    formats: dict[AudioFormat, int] = {}
    inputs = [formats.setdefault(inp, len(formats)) for _, inp, _ in changes]
    outputs = [formats.setdefault(out, len(formats)) for _, _, out in changes]
    seqs = np.array([seq for seq, _, _ in changes], dtype=np.int64)
    return list(formats), seqs, np.array(inputs, np.int64), np.array(outputs, np.int64)


def _by_item(codes: Index, names: list[str]) -> tuple[Index, list[tuple[str, int, int]]]:
    """The order that groups deltas (with these item codes) by item, items in the order of their
    first delta, and each item's (name, first, end) in that order."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64), []
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    rank = np.empty(len(unique), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(unique))  # first delta indexes are all different
    group = rank[inverse]
    ends = np.cumsum(np.bincount(group, minlength=len(unique))).tolist()
    codes_by_rank = unique[np.argsort(rank)].tolist()
    starts = [0, *ends[:-1]]
    items = [(names[c], a, e) for c, a, e in zip(codes_by_rank, starts, ends, strict=True)]
    return np.argsort(group, kind="stable"), items


def _unwrap_wavs(chunks: Chunks, valid: npt.NDArray[np.bool_]) -> bool:
    """Point WAV payloads' chunks at their samples, in the format their header gives; whether
    some could not be read (those are kept as they are)."""
    bad = False
    formats = {f: i for i, f in enumerate(chunks.formats)}
    for k in _maybe_wav(chunks, valid).tolist():
        view = chunks.view(k)
        if not is_wav(view):
            continue
        wav = parse_wav(view)
        if wav is None or wav.channels != 1:
            bad = True
            continue
        start = int(chunks.start[k])
        chunks.start[k], chunks.end[k] = start + wav.data_start, start + wav.data_end
        if wav.format not in formats:
            formats[wav.format] = len(chunks.formats)
            chunks.formats.append(wav.format)
        chunks.fmt[k] = formats[wav.format]
    return bad


def _maybe_wav(chunks: Chunks, valid: npt.NDArray[np.bool_]) -> Index:
    """The chunks of 12 bytes or more whose first byte is the R of RIFF (about one in 256 of
    other audio: those are then looked at one by one)."""
    candidates = np.flatnonzero(valid & (chunks.sizes >= 12))
    found = []
    for b, buffer in enumerate(chunks.buffers):
        mine = candidates[chunks.buffer[candidates] == b]
        if len(mine):
            first_bytes = np.frombuffer(buffer, dtype=np.uint8)[chunks.start[mine]]
            found.append(mine[first_bytes == ord("R")])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _durations_ms(chunks: Chunks, size: Index) -> npt.NDArray[np.float64]:
    """``format.duration_ms(size) or 0.0`` of every chunk, in one go."""
    rates = np.array([f.bytes_per_second or 0 for f in chunks.formats], dtype=np.int64)
    rate = rates[chunks.fmt]
    timed = rate > 0
    out = np.zeros(len(size))
    out[timed] = size[timed] * 1000.0 / rate[timed]
    return out


def _session_audio(rows: _Rows, pieces: _Pieces, changes: list[Any]) -> _Audio:
    users = np.flatnonzero(rows.kind == _USER)
    positions = np.concatenate([users, np.flatnonzero(rows.kind == _ASSISTANT)])
    chunks, valid = pieces.gather(rows.row[positions])
    # a frame with no audio is no chunk; one recorded without samples is, with its size
    sent = rows.audio_bytes[positions]
    keep = np.flatnonzero(np.where(valid, chunks.sizes > 0, sent > 0))
    user_count = int(np.searchsorted(keep, len(users)))
    order, items = _by_item(rows.key[positions[keep[user_count:]]], rows.key_names)
    keep = np.concatenate([keep[:user_count], keep[user_count:][order]])
    chunks, valid, sent, positions = chunks.take(keep), valid[keep], sent[keep], positions[keep]
    formats, change_seqs, inputs, outputs = _format_indexes(changes)
    change = np.maximum(np.searchsorted(change_seqs, rows.seq[positions], side="right") - 1, 0)
    is_user = np.arange(len(positions)) < user_count
    chunks.fmt = np.where(is_user, inputs[change], outputs[change])
    chunks.time_s = rows.time_s[positions]
    chunks.formats = formats
    bad_wav = _unwrap_wavs(chunks, valid)
    size = np.where(valid, chunks.sizes, sent)
    return _Audio(
        chunks=chunks,
        size=size,
        duration_ms=_durations_ms(chunks, size),
        dropped=~valid,
        position=positions,
        users=user_count,
        items=[(key, user_count + a, user_count + e) for key, a, e in items],
        bad_wav=bad_wav,
    )


# --- the input audio buffer ------------------------------------------------------------------


class _InputStream:
    """The input audio buffer on the server's audio clock: the user's appends (ids into
    :class:`_Audio`'s chunks) minus cleared audio, as a stack of arrays. Each entry starts where
    the one before ended; a clear pops the entries past the cut and shortens the last."""

    def __init__(self, audio: _Audio) -> None:
        n = audio.users
        self.audio = audio
        self.position = audio.position[:n]
        self.fmt = audio.chunks.fmt[:n]
        self.pushed = 0  # chunks appended so far
        self.top = 0  # entries in the stack
        self.chunk = np.zeros(n, dtype=np.int64)
        self.start_ms = np.zeros(n)
        self.duration_ms = np.zeros(n)
        self.size = np.zeros(n, dtype=np.int64)  # bytes kept of the chunk (from its start)
        self.clock_ms = 0.0

    def append_before(self, position: int) -> None:
        """Append the chunks of the frames before ``position`` not appended yet."""
        first = self.pushed
        last = int(np.searchsorted(self.position, position, side="left"))
        if last <= first:
            return
        durations = self.audio.duration_ms[first:last]
        # cumsum adds left to right, as appending one by one did: the same clock to the bit
        ends = np.cumsum(np.concatenate(([self.clock_ms], durations)))
        at = slice(self.top, self.top + last - first)
        self.chunk[at] = np.arange(first, last)
        self.start_ms[at] = ends[:-1]
        self.duration_ms[at] = durations
        self.size[at] = self.audio.size[first:last]
        self.top += last - first
        self.pushed = last
        self.clock_ms = float(ends[-1])

    def _byte_at(self, entry: int, ms: float) -> int:
        """The byte offset ``ms`` into an entry, on a whole sample."""
        fmt = self.audio.chunks.formats[int(self.fmt[self.chunk[entry]])]
        sample = round(ms * fmt.sample_rate / 1000.0)
        return max(0, min(int(self.size[entry]), sample * fmt.bytes_per_sample))

    def clear(self, cut_ms: float) -> None:
        """Drop the audio past ``cut_ms``: the stream and its clock go back to it."""
        top = int(np.searchsorted(self.start_ms[: self.top], cut_ms, side="left"))
        self.top = top
        if top and float(self.start_ms[top - 1] + self.duration_ms[top - 1]) > cut_ms:
            last = top - 1
            size = self._byte_at(last, cut_ms - float(self.start_ms[last]))
            rate = self.audio.chunks.formats[int(self.fmt[self.chunk[last]])].bytes_per_second
            self.size[last] = size
            self.duration_ms[last] = size * 1000.0 / rate if rate else 0.0
        self.clock_ms = min(self.clock_ms, cut_ms)

    def slice(self, start_ms: float, end_ms: float) -> tuple[Index, Index, Index]:
        """The stream between two points of the audio clock: (chunk ids, first byte, end byte)
        of each piece."""
        starts = self.start_ms[: self.top]
        first = max(0, int(np.searchsorted(starts, start_ms, side="right")) - 1)
        last = max(first, int(np.searchsorted(starts, end_ms, side="left")))
        begin = starts[first:last]
        end = begin + self.duration_ms[first:last]
        a = np.zeros(last - first, dtype=np.int64)
        b = self.size[first:last].copy()
        # only the first entry can start before start_ms (the others start after it)
        if last > first and start_ms > begin[0]:
            a[0] = self._byte_at(first, start_ms - float(begin[0]))
        for k in np.flatnonzero(end_ms < end).tolist():
            b[k] = self._byte_at(first + k, end_ms - float(begin[k]))
        keep = (end > start_ms) & (b > a)
        return self.chunk[first:last][keep], a[keep], b[keep]


# --- one session -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Vad:
    start_ms: float | None = None
    end_ms: float | None = None


# (chunk ids into _Audio's chunks, first byte, end byte) of each piece of an item's audio
_Slices = tuple[Index, Index, Index]


class _SessionAudioBuilder:
    """Follows one session's events in order: the input stream on the server's audio clock,
    commits and clears, VAD segments, assistant deltas by item. Audio frames are handled as
    arrays; only the events that move the input buffer or name items are looked at one by
    one."""

    def __init__(self, rows: _Rows, pieces: _Pieces, facts: dict[str, Any]) -> None:
        self.rows = rows
        self.pieces = pieces
        self.session_id = rows.session_id
        self.provider = provider_of(facts.get("host"), facts.get("path"))
        self.facts = facts
        self.warnings: list[str] = []
        self.commit_ms = 0.0  # where the uncommitted buffer starts
        self.manual_commits: deque[float] = deque()
        self.client_clears = 0
        self.vad: dict[str | None, _Vad] = {}
        self.user_pieces: dict[str, tuple[_Slices, _Vad | None]] = {}
        self.first_seen: dict[str, int] = {}  # item id -> seq of the first frame about it
        for item_id, seq in rows.named:
            if item_id is not None:
                self.first_seen.setdefault(item_id, seq)  # in seq order: the first is the least
        self.played_ms: dict[str, float] = {}

    def build(self) -> BuiltSession:
        rows = self.rows
        audio = _session_audio(rows, self.pieces, self._format_changes())
        self.audio = audio
        self.stream = _InputStream(audio)
        self._follow_events()
        for key, first, _ in audio.items:
            self._seen(key, int(rows.seq[audio.position[first]]))
        start_s = self.facts.get("start_s")
        first_s = float(rows.time_s[0]) if len(rows) else 0.0
        user = audio.chunks.take(slice(0, audio.users))
        dropped = bool(audio.dropped.any())
        items = self._items()
        if dropped:
            self.warnings.insert(
                0,
                f"session {self.session_id} was recorded without audio samples (rt_audio=drop).",
            )
        if audio.bad_wav:
            self.warnings.append(
                f"session {self.session_id}: some WAV payloads could not be read and were kept "
                "as they are."
            )
        return BuiltSession(
            session_id=self.session_id,
            start_s=min(first_s, start_s) if isinstance(start_s, int | float) else first_s,
            items=items,
            user=user.take(~audio.dropped[: audio.users]),
            samples_dropped=dropped,
            warnings=self.warnings,
        )

    def _format_changes(self) -> list[tuple[int, AudioFormat, AudioFormat]]:
        events = [e for e in self.rows.events if e[1] == _CONFIG]
        return format_changes(
            ((seq, name, content) for _, _, seq, _, name, _, content in events), self.provider
        )

    def _follow_events(self) -> None:
        for position, kind, seq, direction, event_type, item_id, content in self.rows.events:
            if kind != _CONTROL:
                continue
            if event_type in _MOVES_STREAM:
                self.stream.append_before(position)
            if direction == "client":
                self._client_event(event_type, content)
            else:
                self._server_event(event_type, item_id, content, seq)

    def _client_event(self, event_type: str | None, content: str | None) -> None:
        if event_type == _COMMIT:
            self.manual_commits.append(self.stream.clock_ms)
        elif event_type == _CLEAR:
            self.stream.clear(self.commit_ms)
            self.client_clears += 1
        elif event_type == _TRUNCATE:
            event = parse_event(content)
            item_id = event.get("item_id")
            played = _ms(event.get("audio_end_ms"))
            if isinstance(item_id, str) and played is not None:
                self.played_ms[item_id] = played

    def _server_event(
        self, event_type: str | None, item_id: str | None, content: str | None, seq: int
    ) -> None:
        if event_type == _COMMITTED:
            self._commit(item_id, seq)
        elif event_type == _SPEECH_STARTED:
            start = _ms(parse_event(content).get("audio_start_ms"))
            self.vad[item_id] = _Vad(start_ms=start)
        elif event_type == _SPEECH_STOPPED:
            end = _ms(parse_event(content).get("audio_end_ms"))
            self.vad.setdefault(item_id, _Vad()).end_ms = end
        elif event_type == _TIMEOUT_TRIGGERED:
            event = parse_event(content)
            start, end = _ms(event.get("audio_start_ms")), _ms(event.get("audio_end_ms"))
            self.vad[item_id] = _Vad(start, end)
        elif event_type == _CLEARED:
            # The client's clear already emptied the buffer when it was sent; a `cleared` with
            # no clear before it was the server's own doing.
            if self.client_clears:
                self.client_clears -= 1
            else:
                self.stream.clear(self.commit_ms)

    def _commit(self, item_id: str | None, seq: int) -> None:
        vad = self.vad.pop(item_id, None) if item_id in self.vad else self.vad.pop(None, None)
        # A commit of an empty buffer gets an error, not a `committed`: skip those.
        while self.manual_commits and self.manual_commits[0] <= self.commit_ms:
            self.manual_commits.popleft()
        if vad is not None and vad.end_ms is not None:
            start = vad.start_ms if vad.start_ms is not None else self.commit_ms
            pieces = self.stream.slice(start, vad.end_ms)
            self.commit_ms = max(self.commit_ms, vad.end_ms)
        else:
            vad = None
            clock = self.stream.clock_ms
            end = self.manual_commits.popleft() if self.manual_commits else clock
            pieces = self.stream.slice(self.commit_ms, end)
            self.commit_ms = end
        if item_id is not None:
            self.user_pieces[item_id] = (pieces, vad)
            self._seen(item_id, seq)

    def _seen(self, item_id: str, seq: int) -> None:
        """Note a frame about the item: items are in the order they were first seen."""
        if seq < self.first_seen.get(item_id, seq + 1):
            self.first_seen[item_id] = seq

    def _entries(self) -> list[tuple[str, str, _Slices, _Vad | None]]:
        """(item id, role, pieces, VAD segment) of the items with audio, in conversation
        order."""
        entries: list[tuple[int, str, str, _Slices, _Vad | None]] = []
        for item_id, (pieces, vad) in self.user_pieces.items():
            entries.append((self.first_seen[item_id], item_id, "user", pieces, vad))
        for key, first, end in self.audio.items:
            ids = np.arange(first, end)
            pieces = (ids, np.zeros(len(ids), np.int64), self.audio.size[first:end])
            entries.append((self.first_seen[key], key, "assistant", pieces, None))
        entries.sort(key=lambda e: e[0])
        dropped = self.audio.dropped if self.audio.dropped.any() else None
        return [
            (item_id, role, pieces, vad)
            for _, item_id, role, pieces, vad in entries
            # no audio, or samples dropped
            if len(pieces[0]) and (dropped is None or not dropped[pieces[0]].any())
        ]

    def _items(self) -> list[ItemParts]:
        entries = self._entries()
        if not entries:
            return []
        # every item's pieces as one table: formats and sizes found for all at once
        pieces = self.audio.chunks.take(np.concatenate([ids for _, _, (ids, _, _), _ in entries]))
        pieces.end = pieces.start + np.concatenate([b for _, _, (_, _, b), _ in entries])
        pieces.start = pieces.start + np.concatenate([a for _, _, (_, a, _), _ in entries])
        bounds = [0, *np.cumsum([len(ids) for _, _, (ids, _, _), _ in entries]).tolist()]
        lowest = np.minimum.reduceat(pieces.fmt, bounds[:-1]).tolist()
        highest = np.maximum.reduceat(pieces.fmt, bounds[:-1]).tolist()
        data = pieces.segments_each(bounds)
        items: list[ItemParts] = []
        for i, (item_id, role, _, vad) in enumerate(entries):
            chunks = pieces.take(slice(bounds[i], bounds[i + 1]))
            fmt = pieces.formats[lowest[i]]
            if lowest[i] != highest[i]:
                fmt, chunks, data[i] = self._join_formats(item_id, chunks, data[i])
            size = sum(len(view) for view in data[i])
            if fmt.encoding == PCM16 and size % 2:
                self.warnings.append(
                    f"item {item_id}: {size} bytes is not a whole number of 16-bit samples."
                )
            items.append(
                ItemParts(
                    item_id=item_id,
                    role=role,
                    format=fmt,
                    chunks=chunks,
                    data=data[i],
                    played_ms=self.played_ms.get(item_id) if role == "assistant" else None,
                    audio_start_ms=vad.start_ms if vad else None,
                    audio_end_ms=vad.end_ms if vad else None,
                )
            )
        return items

    def _join_formats(
        self, item_id: str, pieces: Chunks, data: list[memoryview]
    ) -> tuple[AudioFormat, Chunks, list[memoryview]]:
        """An item whose audio changes format (its pieces and their bytes): decoded to pcm16 at
        the highest rate where it can be, else its parts as they are; with a warning."""
        formats = [pieces.formats[f] for f in np.unique(pieces.fmt).tolist()]
        if not all(f.encoding in DECODABLE for f in formats):
            self.warnings.append(
                f"item {item_id}: its audio changes format and cannot be decoded; "
                "its parts were joined as they are."
            )
            return pieces.formats[int(pieces.fmt[0])], pieces, data
        rate = max(f.sample_rate for f in formats)
        parts = [
            _pcm16_at(pieces.view(k), pieces.formats[f], rate)
            for k, f in enumerate(pieces.fmt.tolist())
        ]
        names = ", ".join(sorted(f"{f.encoding} {f.sample_rate} Hz" for f in formats))
        self.warnings.append(
            f"item {item_id}: its audio changes format ({names}); written as pcm16 {rate} Hz."
        )
        fmt = AudioFormat(PCM16, rate)
        joined = Chunks.back_to_back(parts, pieces.time_s, fmt)
        return fmt, joined, joined.buffers[:1]


# Events that read or move the input buffer: the stream must be up to date before them.
_MOVES_STREAM = frozenset({_COMMIT, _CLEAR, _COMMITTED, _CLEARED})


def _pcm16_at(data: memoryview | bytes | None, fmt: AudioFormat, rate: int) -> bytes:
    raw = bytes(data or b"")
    if fmt.encoding == PCM16 and len(raw) % 2:
        raw = raw[:-1]
    return resample_pcm16(to_pcm16(raw, fmt), fmt.sample_rate, rate)


# --- public ----------------------------------------------------------------------------------


@dataclass
class _Scan:
    """A capture read session by session."""

    warnings: list[str]  # the reader's
    session_ids: list[str]  # every session, in session id order
    sessions: Iterator[tuple[int, BuiltSession]]  # (index in session_ids, audio), in any order
    # a single Parquet capture: the sessions can also be built some at a time (see split)
    by_row_group: _ByRowGroup | None = None


def _facts_by_session(facts_list: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for entry in facts_list:
        facts.setdefault(str(entry.get("session_id")), {}).update(entry)
    return facts


def _cast(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in table.column_names]))


def _capture_files(paths: Sequence[Path]) -> list[Path]:
    """:func:`analyzer.reader.find_capture_files`, which is imported only when there is more to
    find than one file: the reader imports pandas (~0.3 s), which the audio does not use."""
    if len(paths) == 1 and paths[0].is_file():
        return [paths[0]]
    from analyzer.reader import find_capture_files

    return find_capture_files(paths)


def _open_capture(paths: Sequence[Path]) -> tuple[pq.ParquetFile, list[dict[str, Any]]] | None:
    """The one Parquet capture at ``paths``, when it is one that can be read row group by row
    group; None for anything else (journals, several files, unreadable: the reader decides)."""
    files = _capture_files(paths)
    if len(files) != 1 or files[0].suffix != ".parquet":
        return None
    try:
        pf = pq.ParquetFile(files[0])
    except (pa.ArrowInvalid, OSError):
        return None
    meta = parse_file_metadata(pf.metadata.metadata)
    if meta is None or any(c not in pf.schema_arrow.names for c in AUDIO_COLUMNS):
        return None
    return pf, meta["sessions"]


def _scan(paths: Sequence[Path]) -> _Scan:
    """Sessions as soon as their audio is read. A single Parquet capture is read one row group
    of samples at a time (see :class:`_ByRowGroup`)."""
    opened = _open_capture(paths)
    if opened is None:
        from analyzer.reader import read_tables

        table, facts_list, _, warnings = read_tables(list(paths), AUDIO_COLUMNS)
        frames = _Frames(table.select(list(_META_COLUMNS)))
        blobs = _Pieces.of(table.column("audio"))
        return _Scan(warnings, frames.session_ids, _all_at_once(frames, blobs, facts_list))
    pf, facts_list = opened
    frames = _Frames(_cast(pf.read(columns=list(_FIRST_COLUMNS))))
    by_row_group = _ByRowGroup(pf, frames, facts_list)
    return _Scan([], frames.session_ids, by_row_group.sessions(), by_row_group)


def _all_at_once(
    frames: _Frames, blobs: _Pieces, facts_list: list[dict[str, Any]]
) -> Iterator[tuple[int, BuiltSession]]:
    facts = _facts_by_session(facts_list)
    for index, session_id in enumerate(frames.session_ids):
        yield (
            index,
            _SessionAudioBuilder(frames.rows(index), blobs, facts.get(session_id, {})).build(),
        )


class _ByRowGroup:
    """A Parquet capture's sessions, read one row group of samples at a time (the next one in a
    thread while this one is assembled), each session built once its last row group is in and
    the samples forgotten when no session still needs them: memory follows the sessions open at
    one point of the file, not the capture."""

    def __init__(
        self, pf: pq.ParquetFile, frames: _Frames, facts_list: list[dict[str, Any]]
    ) -> None:
        self.pf = pf
        self.frames = frames
        self.facts = _facts_by_session(facts_list)
        groups = pf.metadata.num_row_groups
        self.groups = groups
        sizes = [pf.metadata.row_group(g).num_rows for g in range(groups)]
        self.starts: list[int] = np.cumsum([0, *sizes]).tolist()
        self.first_group: list[int] = []  # per session: the first row group holding its frames
        self.done_group: list[int] = []  # and the last
        for index in range(len(frames)):
            low, high = frames.row_range(index)
            self.first_group.append(bisect_right(self.starts, low) - 1)
            self.done_group.append(bisect_right(self.starts, high) - 1)

    def audio_bytes(self) -> int:
        """The capture's audio, as sent."""
        return int(self.frames.audio_bytes.sum())

    def split(self, parts: int) -> list[list[int]]:
        """The sessions in ``parts`` runs of about equal audio, in the order their last row
        group comes (so each part reads a stretch of the file)."""
        order = sorted(range(len(self.frames)), key=self.done_group.__getitem__)
        audio = self.frames.session_audio_bytes()[order]
        ends = np.cumsum(audio)
        total = int(ends[-1]) if len(ends) else 0
        cuts = np.searchsorted(ends, [total * k / parts for k in range(1, parts)], side="left")
        bounds = [0, *(int(c) + 1 for c in cuts), len(order)]
        return [order[lo:hi] for lo, hi in pairwise(bounds)]

    def sessions(self, wanted: Sequence[int] | None = None) -> Iterator[tuple[int, BuiltSession]]:
        """The sessions (all, or those ``wanted``), each as soon as its row groups are read."""
        indexes = range(len(self.frames)) if wanted is None else wanted
        done_at: dict[int, list[int]] = {}  # row group -> the sessions complete once it is read
        for index in sorted(indexes):
            done_at.setdefault(self.done_group[index], []).append(index)
        if not done_at:
            return
        first = min(self.first_group[i] for i in indexes)
        last = max(done_at)
        # keep_from[g]: the first row group a session not complete after g still needs
        keep_from = dict.fromkeys(range(first, last + 1), last + 1)
        needed = last + 1
        for g in range(last, first - 1, -1):
            keep_from[g] = needed
            needed = min([needed] + [self.first_group[i] for i in done_at.get(g, [])])
        blobs = _Pieces()
        frames, starts = self.frames, self.starts
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(self._read, first)
            for g in range(first, last + 1):
                table = ahead.result()
                if g < last:
                    ahead = pool.submit(self._read, g + 1)
                blobs.add(starts[g], table.column("audio"))
                frames.add_contents(starts[g], table.column("content"))
                del table
                for index in done_at.get(g, []):
                    session_facts = self.facts.get(frames.session_ids[index], {})
                    builder = _SessionAudioBuilder(frames.rows(index), blobs, session_facts)
                    yield index, builder.build()
                blobs.drop_before(starts[min(keep_from[g], g + 1)])

    def _read(self, group: int) -> pa.Table:
        table = self.pf.read_row_group(group, columns=["audio", "content"], use_threads=False)
        audio = table.column("audio")
        audio_type = FRAME_SCHEMA.field("audio").type
        if audio.type == audio_type:
            return table
        return table.set_column(0, "audio", audio.cast(audio_type))


def _collect(scan: _Scan) -> AudioCapture:
    built = sorted(scan.sessions, key=lambda entry: entry[0])
    sessions = [session.audio() for _, session in built]
    warnings = list(scan.warnings)
    for session in sessions:
        warnings.extend(session.warnings)
    sessions.sort(key=lambda s: s.start_s)
    return AudioCapture(sessions, warnings)


def load_audio(paths: Sequence[Path] | Path) -> AudioCapture:
    """The audio of every session of the captures at ``paths``: items, the user's stream, and
    warnings. Raises :class:`analyzer.reader.CaptureError`."""
    if isinstance(paths, Path):
        paths = [paths]
    return _collect(_scan(list(paths)))


def load_item_audio(paths: Sequence[Path] | Path) -> list[ItemAudio]:
    """One entry per conversation item that carries audio, sessions in start order, items in
    conversation order. Items whose samples were not recorded (rt_audio=drop) are left out;
    :func:`load_audio` says so in its warnings."""
    return [item for session in load_audio(paths).sessions for item in session.items]
