"""A Parquet capture's columns as the audio rebuilding reads them: the ``audio`` column in
pieces, each frame's kind, and sessions' rows in order."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.arrowbuffers import int64_array, number_array, string_scalar, valid
from analyzer.audio.chunks import Chunks, Index, as_bytes_view
from analyzer.protocol import (
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    SERVER_AUDIO_EVENTS,
)

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

# Events that move the input buffer or mark the user's speech (parsed when a session is built).
SPEECH_STARTED = "input_audio_buffer.speech_started"
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"
TIMEOUT_TRIGGERED = "input_audio_buffer.timeout_triggered"
COMMITTED = "input_audio_buffer.committed"
CLEARED = "input_audio_buffer.cleared"
COMMIT = "input_audio_buffer.commit"
CLEAR = "input_audio_buffer.clear"
TRUNCATE = "conversation.item.truncate"

META_COLUMNS: tuple[str, ...] = tuple(c for c in AUDIO_COLUMNS if c != "audio")
# What is read of a Parquet capture up front; ``content`` comes a row group at a time.
FIRST_COLUMNS: tuple[str, ...] = tuple(c for c in META_COLUMNS if c != "content")


class Pieces:
    """The ``audio`` column in pieces (row groups) that a scan adds and drops as it goes, each
    covering the rows from its ``start``."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._arrays: list[pa.Array] = []

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> Pieces:
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
        """The values at ``rows`` as chunks (time and format left blank), where they lie in
        the pieces' own buffers (nothing copied: the export writes from there), and which are
        not null."""
        n = len(rows)
        piece = np.searchsorted(np.array(self._starts, dtype=np.int64), rows, side="right") - 1
        buffer = np.zeros(n, dtype=np.int64)
        start = np.zeros(n, dtype=np.int64)
        end = np.zeros(n, dtype=np.int64)
        present = np.zeros(n, dtype=np.bool_)
        buffers: list[memoryview] = []
        for p in np.unique(piece).tolist():
            where = np.flatnonzero(piece == p)
            array = self._arrays[p]
            local = rows[where] - self._starts[p]
            offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)  # large_binary
            offsets = offsets[array.offset : array.offset + len(array) + 1]
            data = array.buffers()[2]
            buffer[where] = len(buffers)
            buffers.append(as_bytes_view(data) if data is not None else memoryview(b""))
            start[where] = offsets[local]
            end[where] = offsets[local + 1]
            present[where] = valid(array)[local]
        none = np.zeros(n, dtype=np.int64)
        return Chunks(buffers, buffer, start, end, np.zeros(n), none, []), present


# What a frame is to the audio: nothing, a user append, an assistant delta, an event that moves
# the input buffer or says what was played (parsed one by one), a session config (formats), or
# one that names an item (only its seq matters: when the item was first seen).
_OTHER, USER, ASSISTANT, CONTROL, CONFIG, NAMED = range(6)
_CLIENT_KINDS = {
    **dict.fromkeys(CLIENT_AUDIO_EVENTS, USER),
    **dict.fromkeys((COMMIT, CLEAR, TRUNCATE), CONTROL),
}
_SERVER_KINDS = {
    **dict.fromkeys(SERVER_AUDIO_EVENTS, ASSISTANT),
    **dict.fromkeys(
        (COMMITTED, SPEECH_STARTED, SPEECH_STOPPED, TIMEOUT_TRIGGERED, CLEARED), CONTROL
    ),
    **dict.fromkeys(ITEM_CREATED_EVENTS, NAMED),
}


def _kind(event_type: str | None, direction: str | None) -> int:
    if event_type in CONFIG_EVENTS:
        return CONFIG
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


class Frames:
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
        deltas = np.flatnonzero(self.kind == ASSISTANT)
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
        rows = np.flatnonzero((self.kind == CONTROL) | (self.kind == CONFIG))
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
        rows = np.flatnonzero(self.kind == NAMED)
        item_ids = _plain(table.column("item_id")).take(int64_array(self.order[rows])).to_pylist()
        return list(zip(item_ids, self.seq[rows].tolist(), strict=True)), rows

    def __len__(self) -> int:
        return len(self.session_ids)

    def session_audio_bytes(self) -> Index:
        """Each session's audio bytes, as sent."""
        if not self.n:
            return np.zeros(0, dtype=np.int64)
        return np.add.reduceat(self.audio_bytes, self.bounds[:-1])

    def rows(self, index: int) -> Rows:
        """The frames of the ``index``-th session (in session id order)."""
        start, end = self.bounds[index], self.bounds[index + 1]
        return Rows(self.session_ids[index], self, start, end)

    def row_range(self, index: int) -> tuple[int, int]:
        """The smallest and biggest capture-table row of the ``index``-th session."""
        rows = self.order[self.bounds[index] : self.bounds[index + 1]]
        return int(rows.min()), int(rows.max())


class Rows:
    """One session's frames, in seq order: numpy views, and its parsed events."""

    def __init__(self, session_id: str, frames: Frames, start: int, end: int) -> None:
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


def milliseconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
