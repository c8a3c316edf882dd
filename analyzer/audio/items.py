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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.audio.wav import encoded_wav_bytes, is_wav, parse_wav
from analyzer.codecs import alaw_decode, resample_pcm16, ulaw_decode
from analyzer.formats import (
    ALAW,
    MP3,
    PCM16,
    ULAW,
    AudioFormat,
    format_at,
    format_changes,
    provider_of,
)
from analyzer.protocol import (
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    SERVER_AUDIO_EVENTS,
    parse_event,
)
from analyzer.reader import find_capture_files, read_tables
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


@dataclass(slots=True)
class AudioChunk:
    """One frame's audio where it arrived: a user append or an assistant delta."""

    time_s: float
    format: AudioFormat
    data: memoryview | bytes


@dataclass
class SessionAudio:
    session_id: str
    start_s: float  # time 0 of the session's timeline (its WebSocket opening)
    items: list[ItemAudio] = field(default_factory=list)
    user_stream: list[AudioChunk] = field(default_factory=list)  # every append, cleared too
    samples_dropped: bool = False  # recorded with rt_audio=drop: sizes known, samples not
    warnings: list[str] = field(default_factory=list)


@dataclass
class AudioCapture:
    sessions: list[SessionAudio]
    warnings: list[str]  # the reader's and the sessions'


# --- reading columns -------------------------------------------------------------------------

_META_COLUMNS: tuple[str, ...] = tuple(c for c in AUDIO_COLUMNS if c != "audio")


class _Blobs:
    """Zero-copy views of a binary column's values: one or more pieces (row groups) that a scan
    adds and drops as it goes, each covering the rows from its ``start``."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._pieces: list[tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], memoryview]] = []

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> _Blobs:
        blobs = cls()
        blobs.add(0, column)
        return blobs

    def add(self, start: int, column: pa.ChunkedArray | pa.Array) -> None:
        if isinstance(column, pa.ChunkedArray):
            array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        else:
            array = column
        if len(array) == 0:
            return
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        _, offset_buffer, data = array.buffers()
        offsets = np.frombuffer(offset_buffer, dtype=np.int64)[
            array.offset : array.offset + len(array) + 1
        ]
        at = bisect_right(self._starts, start)
        self._starts.insert(at, start)
        self._pieces.insert(
            # format "B", not pyarrow's "b": comparing a "b" view to bytes goes element by element
            at,
            (valid, offsets, memoryview(data).cast("B") if data is not None else memoryview(b"")),
        )

    def drop_before(self, row: int) -> None:
        """Forget the pieces that start before ``row``."""
        while self._starts and self._starts[0] < row:
            del self._starts[0], self._pieces[0]

    def get(self, row: int) -> memoryview | None:
        at = bisect_right(self._starts, row) - 1 if len(self._starts) > 1 else 0
        valid, offsets, data = self._pieces[at]
        row -= self._starts[at]
        if not valid[row]:
            return None
        return data[int(offsets[row]) : int(offsets[row + 1])]


def _content_to_parse(table: pa.Table) -> pa.ChunkedArray:
    """``content`` where the event is one we parse, null elsewhere."""
    parsed = pc.is_in(
        table.column("event_type").cast(pa.string()),
        value_set=pa.array(sorted(_PARSED_EVENTS)),
    )
    return pc.if_else(
        pc.fill_null(parsed, False),
        table.column("content"),
        pa.scalar(None, pa.large_string()),
    )


@dataclass(slots=True)
class _Rows:
    """One session's frames as Python values, in seq order; ``row`` is each one's row in the
    capture table (where its audio is)."""

    session_id: str
    row: list[int]
    seq: list[int]
    time_s: list[float]
    direction: list[str | None]
    event_type: list[str | None]
    item_id: list[str | None]
    response_id: list[str | None]
    audio_bytes: list[int]
    content: list[str | None]


class _Frames:
    """The audio columns of all frames but the samples, rows sorted by session, then seq."""

    def __init__(self, table: pa.Table) -> None:
        self.n = table.num_rows
        sid = table.column("session_id").cast(pa.string())
        order = pc.sort_indices(
            pa.table({"s": sid, "q": table.column("seq")}),
            sort_keys=[("s", "ascending"), ("q", "ascending")],
        )
        self.order: npt.NDArray[np.int64] = order.to_numpy().astype(np.int64)
        columns = {name: table.column(name) for name in _META_COLUMNS if name != "content"}
        for name, column in columns.items():
            if pa.types.is_dictionary(column.type):  # to_pylist of a slice is slow on these
                columns[name] = column.cast(column.type.value_type)
        columns["session_id"] = sid
        columns["audio_bytes"] = pc.fill_null(columns["audio_bytes"], 0)
        columns["content"] = _content_to_parse(table)
        self.sorted = pa.table(columns).take(order)
        sorted_sid = self.sorted.column("session_id")
        if self.n:
            changed = pc.not_equal(sorted_sid.slice(1), sorted_sid.slice(0, self.n - 1))
            cuts = np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1
            self.bounds: list[int] = [0, *cuts.tolist(), self.n]
        else:
            self.bounds = [0]
        self.session_ids: list[str] = [str(sorted_sid[start].as_py()) for start in self.bounds[:-1]]

    def __len__(self) -> int:
        return len(self.session_ids)

    def rows(self, index: int) -> _Rows:
        """The frames of the ``index``-th session (in session id order)."""
        start, end = self.bounds[index], self.bounds[index + 1]
        part = self.sorted.slice(start, end - start)
        return _Rows(
            session_id=self.session_ids[index],
            row=self.order[start:end].tolist(),
            seq=part.column("seq").to_pylist(),
            time_s=part.column("time_s").to_pylist(),
            direction=part.column("direction").to_pylist(),
            event_type=part.column("event_type").to_pylist(),
            item_id=part.column("item_id").to_pylist(),
            response_id=part.column("response_id").to_pylist(),
            audio_bytes=part.column("audio_bytes").to_pylist(),
            content=part.column("content").to_pylist(),
        )

    def row_range(self, index: int) -> tuple[int, int]:
        """The smallest and biggest capture-table row of the ``index``-th session."""
        rows = self.order[self.bounds[index] : self.bounds[index + 1]]
        return int(rows.min()), int(rows.max())


def _ms(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# Bytes per second of each format met so far (None: size is not time).
_RATES: dict[AudioFormat, int | None] = {}


def _duration_ms(fmt: AudioFormat, size: int) -> float:
    """``fmt.duration_ms(size) or 0.0``, without the property calls (once per frame)."""
    try:
        rate = _RATES[fmt]
    except KeyError:
        rate = _RATES[fmt] = fmt.bytes_per_second
    return size * 1000.0 / rate if rate else 0.0


# --- one session -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Chunk:
    """Audio of one frame, possibly cut; ``data`` None when samples were dropped."""

    time_s: float
    format: AudioFormat
    data: memoryview | None
    size: int
    start_ms: float = 0.0  # on the input audio clock (user stream only)
    duration_ms: float = 0.0  # ``format.duration_ms(size)``, 0 where size is not time

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms

    def byte_at(self, ms: float) -> int:
        """The byte offset ``ms`` into this chunk, on a whole sample."""
        sample = round(ms * self.format.sample_rate / 1000.0)
        return max(0, min(self.size, sample * self.format.bytes_per_sample))

    def cut(self, start: int, end: int) -> _Chunk:
        data = None if self.data is None else self.data[start:end]
        start_ms = self.start_ms + (self.format.duration_ms(start) or 0.0)
        duration = self.format.duration_ms(end - start) or 0.0
        return _Chunk(self.time_s, self.format, data, end - start, start_ms, duration)


@dataclass(slots=True)
class _Vad:
    start_ms: float | None = None
    end_ms: float | None = None


class _SessionAudioBuilder:
    """Follows one session's events in order: the input stream on the server's audio clock,
    commits and clears, VAD segments, assistant deltas by item."""

    def __init__(self, frames: _Rows, blobs: _Blobs, facts: dict[str, Any]) -> None:
        self.f = frames
        self.blobs = blobs
        self.session_id = frames.session_id
        self.provider = provider_of(facts.get("host"), facts.get("path"))
        self.facts = facts
        self.warnings: list[str] = []
        # the input stream: appended audio minus cleared buffers, on the audio clock
        self.stream: list[_Chunk] = []
        self.stream_starts: list[float] = []
        self.clock_ms = 0.0
        self.commit_ms = 0.0  # where the uncommitted buffer starts
        self.manual_commits: deque[float] = deque()
        self.client_clears = 0
        self.vad: dict[str | None, _Vad] = {}
        self.user_pieces: dict[str, tuple[list[_Chunk], _Vad | None]] = {}
        self.assistant_pieces: dict[str, list[_Chunk]] = {}
        self.first_seen: dict[str, int] = {}
        self.played_ms: dict[str, float] = {}
        self.user_stream: list[AudioChunk] = []
        self.dropped = False
        self.bad_wav = False

    def build(self) -> SessionAudio:
        f = self.f
        n = len(f.seq)
        event_types, directions, seqs = f.event_type, f.direction, f.seq
        changes = format_changes(
            (
                (seqs[i], event_types[i], f.content[i])
                for i in range(n)
                if event_types[i] in _CONFIG_EVENTS
            ),
            self.provider,
        )
        fixed = len(changes) == 1
        input_format, output_format = changes[0][1], changes[0][2]
        assistant = self.assistant_pieces
        first_seen = self.first_seen
        for i in range(n):
            event_type = event_types[i]
            direction = directions[i]
            if event_type in CLIENT_AUDIO_EVENTS and direction == "client":
                fmt = input_format if fixed else format_at(changes, seqs[i], "client")
                chunk = self._chunk(i, fmt)
                if chunk is not None:
                    self._append(chunk)
            elif event_type in SERVER_AUDIO_EVENTS and direction == "server":
                fmt = output_format if fixed else format_at(changes, seqs[i], "server")
                chunk = self._chunk(i, fmt)
                if chunk is not None:
                    key = f.item_id[i] or f.response_id[i] or "unknown"
                    pieces = assistant.get(key)
                    if pieces is None:
                        assistant[key] = [chunk]
                        first_seen.setdefault(key, seqs[i])
                    else:
                        pieces.append(chunk)
            elif direction == "client":
                self._client_event(i, event_type)
            elif direction == "server":
                self._server_event(i, event_type)
        start_s = self.facts.get("start_s")
        first_s = f.time_s[0] if n else 0.0
        session = SessionAudio(
            session_id=self.session_id,
            start_s=min(first_s, start_s) if isinstance(start_s, int | float) else first_s,
            user_stream=self.user_stream,
            samples_dropped=self.dropped,
        )
        session.items = self._items()
        if self.dropped:
            self.warnings.insert(
                0,
                f"session {self.session_id} was recorded without audio samples (rt_audio=drop).",
            )
        if self.bad_wav:
            self.warnings.append(
                f"session {self.session_id}: some WAV payloads could not be read and were kept "
                "as they are."
            )
        session.warnings = self.warnings
        return session

    def _chunk(self, row: int, fmt: AudioFormat) -> _Chunk | None:
        data = self.blobs.get(self.f.row[row])
        time_s = self.f.time_s[row]
        if data is None:
            size = self.f.audio_bytes[row]
            if size <= 0:
                return None
            self.dropped = True
            return _Chunk(time_s, fmt, None, size, 0.0, _duration_ms(fmt, size))
        if not data:
            return None
        if data[:4] == b"RIFF" and is_wav(data):
            wav = parse_wav(data)
            if wav is None or wav.channels != 1:
                self.bad_wav = True
            else:
                data = data[wav.data_start : wav.data_end]
                fmt = wav.format
        size = len(data)
        return _Chunk(time_s, fmt, data, size, 0.0, _duration_ms(fmt, size))

    def _append(self, chunk: _Chunk) -> None:
        start = chunk.start_ms = self.clock_ms
        self.stream.append(chunk)
        self.stream_starts.append(start)
        self.clock_ms = start + chunk.duration_ms
        if chunk.data is not None:
            self.user_stream.append(AudioChunk(chunk.time_s, chunk.format, chunk.data))

    def _client_event(self, row: int, event_type: str | None) -> None:
        if event_type == _COMMIT:
            self.manual_commits.append(self.clock_ms)
        elif event_type == _CLEAR:
            self._clear()
            self.client_clears += 1
        elif event_type == _TRUNCATE:
            event = parse_event(self.f.content[row])
            item_id = event.get("item_id")
            played = _ms(event.get("audio_end_ms"))
            if isinstance(item_id, str) and played is not None:
                self.played_ms[item_id] = played

    def _server_event(self, row: int, event_type: str | None) -> None:
        item_id = self.f.item_id[row]
        if event_type == _COMMITTED:
            self._commit(item_id, row)
        elif event_type == _SPEECH_STARTED:
            start = _ms(parse_event(self.f.content[row]).get("audio_start_ms"))
            self.vad[item_id] = _Vad(start_ms=start)
        elif event_type == _SPEECH_STOPPED:
            end = _ms(parse_event(self.f.content[row]).get("audio_end_ms"))
            self.vad.setdefault(item_id, _Vad()).end_ms = end
        elif event_type == _TIMEOUT_TRIGGERED:
            event = parse_event(self.f.content[row])
            start, end = _ms(event.get("audio_start_ms")), _ms(event.get("audio_end_ms"))
            self.vad[item_id] = _Vad(start, end)
        elif event_type == _CLEARED:
            # The client's clear already emptied the buffer when it was sent; a `cleared` with
            # no clear before it was the server's own doing.
            if self.client_clears:
                self.client_clears -= 1
            else:
                self._clear()
        elif event_type in ITEM_CREATED_EVENTS and item_id is not None:
            self.first_seen.setdefault(item_id, self.f.seq[row])

    def _commit(self, item_id: str | None, row: int) -> None:
        vad = self.vad.pop(item_id, None) if item_id in self.vad else self.vad.pop(None, None)
        # A commit of an empty buffer gets an error, not a `committed`: skip those.
        while self.manual_commits and self.manual_commits[0] <= self.commit_ms:
            self.manual_commits.popleft()
        if vad is not None and vad.end_ms is not None:
            start = vad.start_ms if vad.start_ms is not None else self.commit_ms
            pieces = self._slice(start, vad.end_ms)
            self.commit_ms = max(self.commit_ms, vad.end_ms)
        else:
            vad = None
            end = self.manual_commits.popleft() if self.manual_commits else self.clock_ms
            pieces = self._slice(self.commit_ms, end)
            self.commit_ms = end
        if item_id is not None:
            self.user_pieces[item_id] = (pieces, vad)
            self.first_seen.setdefault(item_id, self.f.seq[row])

    def _slice(self, start_ms: float, end_ms: float) -> list[_Chunk]:
        """The input stream between two points of the audio clock."""
        pieces: list[_Chunk] = []
        first = max(0, bisect_right(self.stream_starts, start_ms) - 1)
        for chunk in self.stream[first:]:
            if chunk.start_ms >= end_ms:
                break
            if chunk.end_ms <= start_ms:
                continue
            a = chunk.byte_at(start_ms - chunk.start_ms) if start_ms > chunk.start_ms else 0
            b = chunk.byte_at(end_ms - chunk.start_ms) if end_ms < chunk.end_ms else chunk.size
            if b > a:
                pieces.append(chunk if (a, b) == (0, chunk.size) else chunk.cut(a, b))
        return pieces

    def _clear(self) -> None:
        """Drop the uncommitted audio: the stream and its clock go back to the last commit."""
        cut = self.commit_ms
        while self.stream and self.stream[-1].start_ms >= cut:
            self.stream.pop()
            self.stream_starts.pop()
        if self.stream and self.stream[-1].end_ms > cut:
            last = self.stream[-1]
            self.stream[-1] = last.cut(0, last.byte_at(cut - last.start_ms))
        self.clock_ms = min(self.clock_ms, cut)

    def _items(self) -> list[ItemAudio]:
        entries: list[tuple[int, str, str, list[_Chunk], _Vad | None]] = []
        for item_id, (pieces, vad) in self.user_pieces.items():
            entries.append((self.first_seen[item_id], item_id, "user", pieces, vad))
        for item_id, pieces in self.assistant_pieces.items():
            entries.append((self.first_seen[item_id], item_id, "assistant", pieces, None))
        entries.sort(key=lambda e: e[0])
        items: list[ItemAudio] = []
        for _, item_id, role, pieces, vad in entries:
            if not pieces or any(p.data is None for p in pieces):
                continue  # no audio, or samples dropped
            fmt, raw, arrivals = self._join(item_id, pieces)
            items.append(
                ItemAudio(
                    session_id=self.session_id,
                    item_id=item_id,
                    role=role,
                    index=len(items) + 1,
                    format=fmt,
                    raw=raw,
                    arrivals=arrivals,
                    played_ms=self.played_ms.get(item_id) if role == "assistant" else None,
                    audio_start_ms=vad.start_ms if vad else None,
                    audio_end_ms=vad.end_ms if vad else None,
                )
            )
        return items

    def _join(
        self, item_id: str, pieces: list[_Chunk]
    ) -> tuple[AudioFormat, bytes, list[tuple[float, int]]]:
        formats = {p.format for p in pieces}
        if len(formats) == 1:
            fmt = pieces[0].format
            parts: list[memoryview | bytes] = [p.data for p in pieces if p.data is not None]
        elif all(f.encoding in DECODABLE for f in formats):
            rate = max(f.sample_rate for f in formats)
            fmt = AudioFormat(PCM16, rate)
            parts = [_pcm16_at(p.data, p.format, rate) for p in pieces if p.data is not None]
            names = ", ".join(sorted(f"{f.encoding} {f.sample_rate} Hz" for f in formats))
            self.warnings.append(
                f"item {item_id}: its audio changes format ({names}); written as pcm16 {rate} Hz."
            )
        else:
            fmt = pieces[0].format
            parts = [p.data for p in pieces if p.data is not None]
            self.warnings.append(
                f"item {item_id}: its audio changes format and cannot be decoded; "
                "its parts were joined as they are."
            )
        arrivals: list[tuple[float, int]] = []
        offset = 0
        for piece, part in zip(pieces, parts, strict=True):
            arrivals.append((piece.time_s, offset))
            offset += len(part)
        raw = b"".join(parts)
        if fmt.encoding == PCM16 and len(raw) % 2:
            self.warnings.append(
                f"item {item_id}: {len(raw)} bytes is not a whole number of 16-bit samples."
            )
        return fmt, raw, arrivals


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
    sessions: Iterator[tuple[int, SessionAudio]]  # (index in session_ids, audio), in any order


def _facts_by_session(facts_list: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for entry in facts_list:
        facts.setdefault(str(entry.get("session_id")), {}).update(entry)
    return facts


def _cast(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in table.column_names]))


def _open_capture(paths: Sequence[Path]) -> tuple[pq.ParquetFile, list[dict[str, Any]]] | None:
    """The one Parquet capture at ``paths``, when it is one that can be read row group by row
    group; None for anything else (journals, several files, unreadable: the reader decides)."""
    files = find_capture_files(paths)
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
    of samples at a time (the next one in a thread while this one is assembled), each session
    built once its last row group is in and the samples forgotten when no session still needs
    them: memory follows the sessions open at one point of the file, not the capture."""
    opened = _open_capture(paths)
    if opened is None:
        table, facts_list, _, warnings = read_tables(list(paths), AUDIO_COLUMNS)
        frames = _Frames(table.select(list(_META_COLUMNS)))
        blobs = _Blobs.of(table.column("audio"))
        return _Scan(warnings, frames.session_ids, _all_at_once(frames, blobs, facts_list))
    pf, facts_list = opened
    frames = _Frames(_cast(pf.read(columns=list(_META_COLUMNS))))
    return _Scan([], frames.session_ids, _by_row_group(pf, frames, facts_list))


def _all_at_once(
    frames: _Frames, blobs: _Blobs, facts_list: list[dict[str, Any]]
) -> Iterator[tuple[int, SessionAudio]]:
    facts = _facts_by_session(facts_list)
    for index, session_id in enumerate(frames.session_ids):
        yield (
            index,
            _SessionAudioBuilder(frames.rows(index), blobs, facts.get(session_id, {})).build(),
        )


def _by_row_group(
    pf: pq.ParquetFile, frames: _Frames, facts_list: list[dict[str, Any]]
) -> Iterator[tuple[int, SessionAudio]]:
    facts = _facts_by_session(facts_list)
    groups = pf.metadata.num_row_groups
    starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(groups)]).tolist()
    first_group: list[int] = []
    done_at: dict[int, list[int]] = {}  # row group -> the sessions complete once it is read
    for index in range(len(frames)):
        low, high = frames.row_range(index)
        first_group.append(bisect_right(starts, low) - 1)
        done_at.setdefault(bisect_right(starts, high) - 1, []).append(index)
    # keep_from[g]: the first row group a session not complete after g still needs
    keep_from = [groups] * groups
    needed = groups
    for g in range(groups - 1, -1, -1):
        keep_from[g] = needed
        needed = min([needed] + [first_group[i] for i in done_at.get(g, [])])
    audio_type = FRAME_SCHEMA.field("audio").type

    def read(g: int) -> pa.ChunkedArray:
        column = pf.read_row_group(g, columns=["audio"], use_threads=False).column("audio")
        return column.cast(audio_type) if column.type != audio_type else column

    blobs = _Blobs()
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(read, 0) if groups else None
        for g in range(groups):
            assert ahead is not None
            column = ahead.result()
            ahead = pool.submit(read, g + 1) if g + 1 < groups else None
            blobs.add(starts[g], column)
            del column
            for index in done_at.get(g, []):
                session_facts = facts.get(frames.session_ids[index], {})
                yield index, _SessionAudioBuilder(frames.rows(index), blobs, session_facts).build()
            blobs.drop_before(starts[min(keep_from[g], g + 1)])


def _collect(scan: _Scan) -> AudioCapture:
    built = sorted(scan.sessions, key=lambda entry: entry[0])
    sessions = [session for _, session in built]
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
