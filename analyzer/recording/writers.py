"""The two files of a run: an append-only JSONL journal and a Parquet file written in row groups."""

from __future__ import annotations

import json
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas  # noqa: F401  # pyarrow imports it on the first batch: do it now, not mid-session
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.private_files import open_private
from analyzer.recording.frames import FrameRecord
from analyzer.schema import FRAME_COLUMNS, FRAME_SCHEMA, PARQUET_COMPRESSION, file_metadata

if TYPE_CHECKING:
    from analyzer.recording.normalize import SessionDecoders

# How every rt-analyze Parquet capture is encoded (the recorder, ``convert``, bench captures).
PARQUET_WRITER_OPTIONS: dict[str, Any] = {
    "compression": PARQUET_COMPRESSION,
    "use_dictionary": ["session_id", "direction", "opcode", "event_type"],
    "write_statistics": ["session_id", "seq", "time_s", "event_type"],
}


log = logging.getLogger(__name__)


def journal_bytes(record: dict[str, Any]) -> bytes:
    """One journal line."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # lone surrogates from a "\ud800" escape: only json can write them
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()


class JournalWriter:
    """One JSON object a line, written with a single ``write`` each, so a crash tears at most the
    last line and everything written before survives in the OS even on ``kill -9``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = open_private(path, append=True)

    def write_lines(self, data: bytes) -> None:
        """Whole lines, in one ``write`` (a batch of them tears at most at its end). An OSError
        says in ``bytes_written`` how much of ``data`` was written before it."""
        if self._fd is None:
            raise ValueError(f"journal {self.path} is closed")
        view = memoryview(data)
        done = 0
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                done += written
        except OSError as exc:
            exc.bytes_written = done  # type: ignore[attr-defined]
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class FrameBatch:
    """Column lists of frame rows waiting to become a Parquet row group."""

    _values = operator.attrgetter(*FRAME_COLUMNS)

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {c: [] for c in FRAME_COLUMNS}
        self._lists = list(self.columns.values())
        self.rows = 0
        self.approx_bytes = 0

    def append(self, rec: FrameRecord) -> None:
        for column, value in zip(self._lists, FrameBatch._values(rec), strict=True):
            column.append(value)
        self.rows += 1
        self.approx_bytes += rec.frame_bytes

    def to_arrow(self) -> tuple[pa.Table, int]:
        """The rows as Arrow, and how many rows Arrow refused (they stay in the journal)."""
        try:
            return pa.Table.from_pydict(self.columns, schema=FRAME_SCHEMA), 0
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            pass
        # One bad value must not cost the whole row group: keep every row that converts.
        good: list[pa.Table] = []
        for i in range(self.rows):
            row = {name: column[i : i + 1] for name, column in self.columns.items()}
            try:
                good.append(pa.Table.from_pydict(row, schema=FRAME_SCHEMA))
            except (pa.ArrowException, UnicodeError, TypeError, ValueError):
                log.error(
                    "rt-analyze: a frame of session %s cannot go to Parquet", row["session_id"]
                )
        table = pa.concat_tables(good) if good else FRAME_SCHEMA.empty_table()
        return table.combine_chunks(), self.rows - len(good)


@dataclass(frozen=True)
class RowGroupPolicy:
    """When the writer closes a Parquet row group: at ``max_bytes`` of Arrow data (the frames
    with their audio) or ``max_rows`` rows, whichever comes first.

    The footer holds a description of every column chunk (row groups x 65 leaf columns): a
    reader parses all of it before the first row, ~10 times its thrift size in memory (a 1 GB
    capture in row groups of ~3,000 frames: 4.2 MB of footer, +41 MB of reader RSS). Row groups
    of tens of MB make it ~10 times smaller. The file is unreadable until its footer is written
    at close anyway (the JSONL journal is the crash-safe record), so a row group is held as
    Arrow (compact, off the Python heap) until it is full, however long that takes: the bytes
    bound the writer's memory, the rows bound what a reader decodes of a row group without
    audio (~1 KB a frame at most)."""

    max_bytes: int = 32 * 1024 * 1024
    max_rows: int = 32 * 1024

    def full(self, rows: int, nbytes: int) -> bool:
        return rows >= self.max_rows or nbytes >= self.max_bytes


ROW_GROUPS = RowGroupPolicy()


class ParquetSink:
    """Buffers frames and hands them to a worker thread every ``max_rows`` rows, ``max_bytes``
    bytes or ``max_age_s`` seconds, so the proxy's event loop never waits on disk; the thread
    turns them into Arrow and writes a row group whenever ``row_groups`` says one is full (see
    :class:`RowGroupPolicy`). With ``max_pending``, :meth:`flush` waits while that many batches
    are still queued for the thread: a producer faster than the disk (``convert``) is held to
    bounded memory, where the proxy's recorder must never wait."""

    def __init__(
        self,
        path: Path,
        max_rows: int = 1024,
        max_bytes: int = 4 * 1024 * 1024,
        max_age_s: float = 10.0,
        max_pending: int | None = None,
        row_groups: RowGroupPolicy | None = None,
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_pending = max_pending
        self.row_groups = row_groups or ROW_GROUPS
        self.rows_written = 0
        self.rows_failed = 0
        self._batch = FrameBatch()
        self._batch_started = time.monotonic()
        self._group = _RowGroup()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt-parquet")
        self._pending: list[Future[None]] = []
        fd = open_private(path)
        self._file = os.fdopen(fd, "wb")
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._file, FRAME_SCHEMA, **PARQUET_WRITER_OPTIONS
        )

    def append(self, rec: FrameRecord) -> None:
        self._batch.append(rec)
        if (
            self._batch.rows >= self.max_rows
            or self._batch.approx_bytes >= self.max_bytes
            or time.monotonic() - self._batch_started >= self.max_age_s
        ):
            self.flush()

    def flush(self) -> None:
        """Hand the buffered rows to the worker thread."""
        if not self._batch.rows:
            return
        batch, self._batch = self._batch, FrameBatch()
        self._batch_started = time.monotonic()
        self._pending = [f for f in self._pending if not f.done()]
        if self.max_pending is not None:
            while len(self._pending) >= self.max_pending:
                self._pending.pop(0).result()  # _write logs its own errors: this never raises
        self._pending.append(self._pool.submit(self._write, batch))

    def _write(self, batch: FrameBatch) -> None:
        try:
            with self._lock:
                arrow, refused = batch.to_arrow()
                self.rows_failed += refused
                if arrow.num_rows:
                    self._group.add(arrow)
                if self.row_groups.full(self._group.rows, self._group.nbytes):
                    self._write_group()
        except Exception:
            self.rows_failed += batch.rows
            log.exception("rt-analyze: could not write %d frames to %s", batch.rows, self.path)

    def _write_group(self) -> None:
        """Write the rows held as one row group (under the lock)."""
        group, self._group = self._group, _RowGroup()
        if not group.rows:
            return
        assert self._writer is not None
        rows = group.rows
        try:
            self._writer.write_table(group.table(), row_group_size=rows)
        except Exception:
            self.rows_failed += rows
            log.exception("rt-analyze: could not write %d frames to %s", rows, self.path)
        else:
            self.rows_written += rows
        finally:
            del group
            # The allocator keeps a written row group's pages for reuse and they pile up over a
            # long run or a 1 GB ``convert`` (~50 MB); handing them back costs no measurable CPU.
            pa.default_memory_pool().release_unused()

    def close(self, metadata: dict[bytes, bytes]) -> None:
        """Write what is buffered, then the footer with the run's session facts."""
        self.flush()
        self._pool.shutdown(wait=True)
        with self._lock:
            if self._writer is not None:
                self._write_group()
        self._finish(metadata)

    def abort(self) -> None:
        """Stop, dropping the rows not yet written; the file is left without capture metadata,
        for the caller to delete."""
        self._batch = FrameBatch()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._group = _RowGroup()
        self._finish(None)

    def _finish(self, metadata: dict[bytes, bytes] | None) -> None:
        with self._lock:
            if self._writer is None:
                return
            try:
                if metadata is not None:
                    self._writer.add_key_value_metadata(
                        {k.decode(): v.decode() for k, v in metadata.items()}
                    )
                self._writer.close()
            finally:
                self._writer = None
                self._file.close()


class _RowGroup:
    """Arrow tables waiting to be written as one row group."""

    # Small tables (a live recorder hands one over every 10 s) are merged past this many, so a
    # slow run does not hold thousands of tiny buffers per column.
    MAX_PIECES = 64

    def __init__(self) -> None:
        self.pieces: list[pa.Table] = []
        self.rows = 0
        self.nbytes = 0

    def add(self, table: pa.Table) -> None:
        self.pieces.append(table)
        self.rows += table.num_rows
        self.nbytes += table.nbytes
        if len(self.pieces) > self.MAX_PIECES:
            self.pieces = [self.table().combine_chunks()]

    def table(self) -> pa.Table:
        return pa.concat_tables(self.pieces)


# Batches queued for the writer thread at most when a whole capture is written: the thread
# converts and writes one (without the GIL) while the next is parsed and built.
WRITE_AHEAD_BATCHES = 2
# Frames held when a whole capture is written, their speech found at once per stream
# (``analyzer.voice_deferred``) before they go to the sink: the detector run over many chunks
# at a time instead of one call per chunk. None: found frame by frame, as the recorder does
# (the same events). 2,048 frames of ~8 sessions at once is ~5 s of each stream's audio: the
# CPU of 8,192 (~40% of convert's), for +2 MB of peak RSS instead of +20 MB.
VOICE_BATCH: RowGroupPolicy | None = RowGroupPolicy(max_bytes=2 * 1024 * 1024, max_rows=2048)


def write_frames(
    path: Path,
    frames: Iterable[FrameRecord],
    sessions: Mapping[str, dict[str, Any]],
    metadata: Callable[[], dict[bytes, bytes]],
    row_groups: RowGroupPolicy | None = None,
    ended: list[str] | None = None,
) -> None:
    """Write a whole Parquet capture from ``frames`` as they come, in bounded memory, then the
    footer with ``metadata()``: asked for once the frames are exhausted, so a journal's session
    facts, complete only at its end, can stream with its frames. ``sessions`` holds each
    session's facts by the time its first frame comes (they pick its protocol's decoder).
    ``ended``: ids of sessions that ended, filled in by the producer of ``frames`` and emptied
    here before each frame: their decoders (and voice state) are dropped, as the recorder's are
    at a session's end, so memory is bounded by the sessions open at once, not by all of them.
    Frames are held up to :data:`VOICE_BATCH` before they go to the sink, their speech found at
    once (the same events as found frame by frame)."""
    from analyzer.recording.normalize import SessionDecoders

    voice_batch = VOICE_BATCH
    decoders = SessionDecoders(sessions, deferred=voice_batch is not None)
    sink = ParquetSink(
        path, max_age_s=float("inf"), max_pending=WRITE_AHEAD_BATCHES, row_groups=row_groups
    )
    held: list[FrameRecord] = []
    held_bytes = 0
    try:
        for rec in frames:
            if ended:
                for session_id in ended:
                    decoders.end(session_id)  # its held frames get their voice events
                ended.clear()
            if rec.events is None:
                rec.events = decoders.events(rec)
            if voice_batch is None:
                sink.append(rec)
                continue
            held.append(rec)
            held_bytes += rec.frame_bytes
            if voice_batch.full(len(held), held_bytes):
                _settle(decoders, held, sink)
                held_bytes = 0
        _settle(decoders, held, sink)
    except BaseException:
        sink.abort()
        raise
    sink.close(metadata())


def _settle(decoders: SessionDecoders, held: list[FrameRecord], sink: ParquetSink) -> None:
    """The held frames, their voice events found, to the sink (``held`` emptied)."""
    decoders.settle()
    for rec in held:
        sink.append(rec)
    held.clear()


def write_parquet(
    path: Path,
    frames: Iterable[FrameRecord],
    run_id: str,
    sessions: list[dict[str, Any]],
    row_groups: RowGroupPolicy | None = None,
) -> None:
    """Write a whole Parquet capture at once (samples, tests, bench)."""
    facts = {str(f["session_id"]): f for f in sessions}
    write_frames(path, frames, facts, lambda: file_metadata(run_id, sessions), row_groups)
