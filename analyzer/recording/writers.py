"""The two files of a run: an append-only JSONL journal and a Parquet file written in row groups."""

from __future__ import annotations

import json
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
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


class ParquetSink:
    """Buffers frames and writes a row group every ``max_rows`` rows, ``max_bytes`` bytes or
    ``max_age_s`` seconds, on a worker thread so the proxy's event loop never waits on disk.
    With ``max_pending``, :meth:`flush` waits while that many row groups are still queued for
    the thread: a producer faster than the disk (``convert``) is held to bounded memory, where
    the proxy's recorder must never wait."""

    def __init__(
        self,
        path: Path,
        max_rows: int = 1024,
        max_bytes: int = 4 * 1024 * 1024,
        max_age_s: float = 10.0,
        max_pending: int | None = None,
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_pending = max_pending
        self.rows_written = 0
        self.rows_failed = 0
        self._batch = FrameBatch()
        self._batch_started = time.monotonic()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt-parquet")
        self._pending: list[Future[None]] = []
        fd = open_private(path)
        self._file = os.fdopen(fd, "wb")
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._file,
            FRAME_SCHEMA,
            compression=PARQUET_COMPRESSION,
            use_dictionary=["session_id", "direction", "opcode", "event_type"],
            write_statistics=["session_id", "seq", "time_s", "event_type"],
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
                assert self._writer is not None
                arrow, refused = batch.to_arrow()
                if arrow.num_rows:
                    self._writer.write_table(arrow)
                self.rows_written += arrow.num_rows
                self.rows_failed += refused
                del arrow
                # Arrow's allocator (mimalloc) keeps the pages of freed row groups for reuse and
                # they pile up: 50 MB more peak RSS over a 1 GB ``convert`` (264 -> 213 MB with
                # this). Handing them back once a row group is written costs no measurable CPU.
                pa.default_memory_pool().release_unused()
        except Exception:
            self.rows_failed += batch.rows
            log.exception("rt-analyze: could not write %d frames to %s", batch.rows, self.path)

    def close(self, metadata: dict[bytes, bytes]) -> None:
        """Write what is buffered, then the footer with the run's session facts."""
        self.flush()
        self._pool.shutdown(wait=True)
        self._finish(metadata)

    def abort(self) -> None:
        """Stop, dropping the rows not yet written; the file is left without capture metadata,
        for the caller to delete."""
        self._batch = FrameBatch()
        self._pool.shutdown(wait=True, cancel_futures=True)
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


# Row groups queued for the writer thread at most when a whole capture is written: the thread
# encodes and compresses one (without the GIL) while the next is parsed and built.
WRITE_AHEAD_ROW_GROUPS = 2


def write_frames(
    path: Path,
    frames: Iterable[FrameRecord],
    sessions: Mapping[str, dict[str, Any]],
    metadata: Callable[[], dict[bytes, bytes]],
    ended: list[str] | None = None,
) -> None:
    """Write a whole Parquet capture from ``frames`` as they come, in bounded memory, then the
    footer with ``metadata()``: asked for once the frames are exhausted, so a journal's session
    facts, complete only at its end, can stream with its frames. ``sessions`` holds each
    session's facts by the time its first frame comes (they pick its protocol's decoder).
    ``ended``: ids of sessions that ended, filled in by the producer of ``frames`` and emptied
    here before each frame: their decoders (and voice state) are dropped, as the recorder's are
    at a session's end, so memory is bounded by the sessions open at once, not by all of them."""
    from analyzer.recording.normalize import SessionDecoders

    decoders = SessionDecoders(sessions)
    with _pool_giving_back():
        sink = ParquetSink(path, max_age_s=float("inf"), max_pending=WRITE_AHEAD_ROW_GROUPS)
        _write_all(sink, decoders, frames, ended)
        sink.close(metadata())


@contextmanager
def _pool_giving_back() -> Iterator[None]:
    """Arrow's mimalloc pool while a whole capture is written: with ``release_unused`` after
    each row group it peaks lowest. The CLI sets the C allocator's pool (best for ``report``),
    whose freed row groups fragment: a 1 GB journal's ``convert`` peaked at 250 MB with it,
    213 MB with this. As it was when mimalloc is not built in."""
    try:
        pool = pa.mimalloc_memory_pool()
    except NotImplementedError:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _write_all(
    sink: ParquetSink,
    decoders: SessionDecoders,
    frames: Iterable[FrameRecord],
    ended: list[str] | None,
) -> None:
    try:
        for rec in frames:
            if ended:
                for session_id in ended:
                    decoders.end(session_id)
                ended.clear()
            if rec.events is None:
                rec.events = decoders.events(rec)
            sink.append(rec)
    except BaseException:
        sink.abort()
        raise


def write_parquet(
    path: Path, frames: Iterable[FrameRecord], run_id: str, sessions: list[dict[str, Any]]
) -> None:
    """Write a whole Parquet capture at once (samples, tests, bench)."""
    facts = {str(f["session_id"]): f for f in sessions}
    write_frames(path, frames, facts, lambda: file_metadata(run_id, sessions))
