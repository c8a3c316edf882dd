"""Many runs from many proxies as one dataset, read run file by run file.

A dataset is every capture found under some paths: files, directories (searched recursively) and
globs, in a flat directory or in the hive layout ``rt_dir/date=YYYY-MM-DD/host=PROXY/rt-*.parquet``
that ``rt_layout=partitioned`` writes. Partition keys found in a file's path are surfaced on its
sessions: ``date`` and ``proxy_host`` (the partition's ``host``, renamed because a session's
``host`` is the API host it talked to).

Analysis streams: one run file (a run holds whole sessions) is read at a time, its analysis
columns only (never ``audio``), its sessions analyzed, and only the small per-turn rows and size
aggregates are kept. A run file bigger than ``rows_per_read`` frames is read in windows of whole
sessions, each window a filtered read that Parquet's ``time_s`` statistics prune to the row groups
it needs. Filters are applied as early as the data allows: partitions prune files, the session
facts in a file's footer prune files and sessions before any frame is read, and the rest is
pushed into the Parquet read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.discovery import RunFile, discover
from analyzer.events import DECODE_ONLY_COLUMNS
from analyzer.filters import Filters
from analyzer.journal_copies import JournalCopies
from analyzer.reader import (
    CaptureError,
    SessionKey,
    drop_audio_content,
    duplicates_note,
    is_missing,
    read_tables,
    session_rows,
    with_columns,
)
from analyzer.schema import (
    ANALYSIS_COLUMNS,
    FRAME_SCHEMA,
    SESSION_FIELDS,
    events_are_current,
    parse_file_metadata,
)
from analyzer.windows import filtered_windows, session_order, stream_windows, window_filter

if TYPE_CHECKING:
    import pyarrow.dataset as pads


# A piece's sessions: a dict of facts each (SESSION_FIELDS and PARTITION_COLUMNS).
Sessions = list[dict[str, Any]]

# Columns added to sessions (and to turn tables of a dataset) besides SESSION_FIELDS.
PARTITION_COLUMNS: tuple[str, ...] = ("date", "proxy_host")
# A run file with more frames than this is read in windows of whole sessions.
ROWS_PER_READ = 20_000


# --- reading ---------------------------------------------------------------------------------


def _sorted_table(table: pa.Table) -> pa.Table:
    """Frames sorted by session, then seq (stable, in Arrow); a table already in that order (a
    streamed window) is returned as it is, not copied."""
    if "seq" not in table.column_names:
        return table
    order = session_order(table)
    if np.array_equal(order.to_numpy(), np.arange(table.num_rows)):
        return table
    return table.take(order)


def _window_table(table: pa.Table) -> pa.Table:
    return _sorted_table(drop_audio_content(table))


def _window_sessions(
    facts: list[dict[str, Any]], table: pa.Table, run: RunFile, run_id: str | None
) -> list[dict[str, Any]]:
    """The session rows (:func:`analyzer.reader.session_rows`) of a piece's frames, with the
    piece's run id where a session has none and its partitions, in start order, from Arrow and
    numpy (:func:`_sessions_table` makes a table of them). This runs
    in the reading thread while the previous window is analyzed: pandas here held the GIL for
    ~0.3 s over a 1 GB report, which the analysis waited out."""
    ids = pc.dictionary_encode(
        pc.cast(table.column("session_id"), pa.string()), null_encoding="encode"
    ).combine_chunks()  # ids in order of appearance, as pandas' unique
    first = np.full(len(ids.dictionary), np.nan)
    np.fmin.at(first, ids.indices.to_numpy(), table["time_s"].to_numpy().astype(float))
    first_seen = {
        str(session_id): time_s
        for session_id, time_s in zip(ids.dictionary.to_pylist(), first.tolist(), strict=True)
    }
    rows = session_rows(facts, first_seen)
    for row in rows:
        if run_id is not None and is_missing(row["run_id"]):
            row["run_id"] = run_id
        row["date"], row["proxy_host"] = run.date, run.proxy_host
    # In start order, sessions without a start last (pandas' stable ``sort_values``).
    return sorted(rows, key=_start_order)


def _start_order(row: Mapping[str, Any]) -> tuple[bool, Any]:
    missing = is_missing(row["start_s"])
    return missing, 0.0 if missing else row["start_s"]


def _sessions_table(sessions: Sessions) -> pd.DataFrame:
    """A piece's sessions as a table (columns :func:`_session_columns`)."""
    return pd.DataFrame(sessions, columns=[*_session_columns()])


@dataclass
class Dataset:
    """Capture files read as one dataset, with filters; see the module docstring."""

    files: list[RunFile]
    filters: Filters = field(default_factory=Filters)
    rows_per_read: int = ROWS_PER_READ
    warnings: list[str] = field(default_factory=list)
    files_read: list[Path] = field(default_factory=list)
    # Each session (run id, session id) read by the last pass over the dataset -> the file it
    # was read from: a session in two files (a copied capture) is read once, from the first.
    read_from: dict[SessionKey, Path] = field(default_factory=dict)
    journal_copies: JournalCopies = field(default_factory=JournalCopies)

    @property
    def sources(self) -> list[Path]:
        return [f.path for f in self.files]

    def _warn(self, text: str) -> None:
        if text not in self.warnings:  # a second pass over the dataset finds the same
            self.warnings.append(text)

    def _once(self, run: RunFile, table: pa.Table, sessions: Sessions) -> tuple[pa.Table, Sessions]:
        """A piece without the sessions already read from another file (with a warning)."""
        ids = [str(row["session_id"]) for row in sessions]
        by_first: dict[Path, list[str]] = {}
        for session_id, row in zip(ids, sessions, strict=True):
            run_id = row.get("run_id")
            key = (None if is_missing(run_id) else str(run_id), session_id)
            first = self.read_from.setdefault(key, run.path)
            if first != run.path:
                by_first.setdefault(first, []).append(session_id)
        if not by_first:
            return table, sessions
        drop = {i for ids in by_first.values() for i in ids}
        for first, dropped in by_first.items():
            self._warn(duplicates_note(dropped, run.path, first))
        keep = pc.invert(
            pc.is_in(
                pc.cast(table.column("session_id"), pa.string()),
                value_set=_strings(sorted(drop)),
            )
        )
        table = table.filter(keep)
        return table, [row for row in sessions if str(row["session_id"]) not in drop]

    def candidate_files(self) -> list[RunFile]:
        """Files not ruled out by their partitions."""
        return [f for f in self.files if self.filters.keeps_partitions(f.partitions)]

    def footer(self, run: RunFile) -> tuple[str, list[dict[str, Any]]] | None:
        """A Parquet run file's run id and session facts (with ``date`` and ``proxy_host``)
        from its footer alone; None for journals and for files we cannot read that way."""
        if run.path.suffix != ".parquet":
            return None
        try:
            _, run_id, facts = self._parquet_facts(run)
        except _Fallback:
            return None
        return run_id, facts

    def _parquet_facts(self, run: RunFile) -> tuple[pq.ParquetFile, str, list[dict[str, Any]]]:
        """The file to read for ``run`` (a big journal's converted copy), its run id and
        session facts; raises _Fallback to read the run whole."""
        path = run.path
        if path.suffix == ".jsonl":
            copy = self.journal_copies.parquet_of(run.path, self._warn)
            if copy is None:  # small, or it could not be converted
                raise _Fallback
            path = copy
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise _Fallback from exc
        meta = parse_file_metadata(pf.metadata.metadata)
        if meta is None:
            raise _Fallback
        run_id = str(meta.get("run_id") or run.path.stem)
        facts = [
            {
                **f,
                "run_id": f.get("run_id") or run_id,
                "date": run.date,
                "proxy_host": run.proxy_host,
            }
            for f in meta.get("sessions", [])
        ]
        return pf, run_id, facts

    def _select(self, table: pa.Table, sessions: Sessions) -> tuple[pa.Table, Sessions]:
        """Apply the filters to a piece's sessions now that their start is known."""
        if not self.filters.active or not len(sessions):
            return table, sessions
        sessions = [row for row in sessions if self.filters.keeps(row)]
        ids = _strings([str(row["session_id"]) for row in sessions])
        mask = pc.is_in(pc.cast(table.column("session_id"), pa.string()), value_set=ids)
        return table.filter(mask), sessions

    def _read_whole(self, run: RunFile, columns: Sequence[str]) -> tuple[pa.Table, Sessions]:
        """The reader's path (small journals, and Parquet we cannot read: it falls back to the
        journal beside it or says what to do)."""
        table, facts, _, warnings = read_tables([run.path], columns)
        self.warnings.extend(warnings)
        return table, _window_sessions(facts, table, run, None)

    def iter_tables(
        self, columns: Sequence[str] = ANALYSIS_COLUMNS
    ) -> Iterator[tuple[RunFile, pa.Table, pd.DataFrame]]:
        """The dataset a piece at a time, filtered: (file, its frames as Arrow, its sessions),
        one piece per run file or per window of whole sessions of a big one. ``columns`` must
        include ``session_id`` and ``time_s``."""
        for run, table, sessions in self._iter_pieces(columns):
            yield run, table, _sessions_table(sessions)

    def _iter_pieces(
        self,
        columns: Sequence[str] = ANALYSIS_COLUMNS,
        finish: Callable[[pa.Table], pa.Table] = lambda table: table,
    ) -> Iterator[tuple[RunFile, pa.Table, Sessions]]:
        """:meth:`iter_tables`, a Parquet file's sessions as rows (no pandas), each table made
        by ``finish`` here, so the table before it is not kept alive while a piece is used."""
        columns = list(columns)
        schema = pa.schema([FRAME_SCHEMA.field(c) for c in columns])
        self.read_from = {}
        candidates = self.candidate_files()
        failures: list[CaptureError] = []
        for run in candidates:
            try:
                pf, run_id, facts = self._parquet_facts(run)
            except _Fallback:
                try:
                    whole = self._read_whole(run, columns)
                except CaptureError as exc:
                    if len(self.files) == 1:
                        raise
                    # One broken file of many: report the rest, say which file was left out.
                    failures.append(exc)
                    self._warn(f"skipped a file: {exc}")
                    continue
                self.files_read.append(run.path)
                table, sessions = self._once(run, *self._select(*whole))
                if len(sessions):
                    yield run, finish(table), sessions
                continue
            kept = [f for f in facts if self.filters.keeps(f)]
            if facts and not kept:
                continue  # the footer rules the whole file out: not one frame read
            self.files_read.append(run.path)
            present = _columns_to_read(columns, pf.schema_arrow)
            path = self.journal_copies.made.get(run.path, run.path)  # a big journal's copy
            for table, window in self._pieces(path, pf, facts, kept, present, run.path):
                table = with_columns(table, columns).cast(schema)
                sessions = _window_sessions(window, table, run, run_id)
                table, sessions = self._once(run, *self._select(table, sessions))
                if len(sessions):
                    table = finish(table)
                    yield run, table, sessions
        if failures and len(failures) == len(candidates):
            raise CaptureError(
                f"none of the {len(candidates)} capture files could be read; the first: "
                f"{failures[0]}"
            )

    def _pieces(
        self,
        path: Path,
        pf: pq.ParquetFile,
        facts: list[dict[str, Any]],
        kept: list[dict[str, Any]],
        columns: list[str],
        named: Path,
    ) -> Iterator[tuple[pa.Table, list[dict[str, Any]]]]:
        """A Parquet run file's frames of the ``kept`` sessions, whole or in windows of whole
        sessions (:mod:`analyzer.windows`), each with the facts of its sessions; warnings name
        the file ``named``."""
        rows = pf.metadata.num_rows
        if not facts or (len(kept) == len(facts) and rows <= self.rows_per_read):
            yield pf.read(columns=columns), kept  # not pq.read_table: it imports pandas
            return
        streamed = (
            stream_windows(pf, kept, columns, self.rows_per_read, self._warn_about(named))
            if len(kept) == len(facts)
            else None
        )
        if streamed is not None:
            yield from streamed
            return
        per_window = max(1, int(self.rows_per_read // max(rows / len(facts), 1.0)))
        for window in filtered_windows(kept, per_window):
            expr = window_filter(window)
            yield pq.read_table(path, columns=columns, filters=expr, partitioning=None), window

    def _warn_about(self, path: Path) -> Callable[[str], None]:
        return lambda text: self.warnings.append(f"{path}: {text}")

    def iter_windows(
        self, columns: Sequence[str] = ANALYSIS_COLUMNS
    ) -> Iterator[tuple[pa.Table, Sessions]]:
        """:meth:`iter_tables` as (frames sorted by session then seq, sessions) for
        :func:`analyzer.analysis.analyze_window`, the ``content`` of audio appends and deltas
        left out (no analysis parses it, and it is most of the text that would be held in
        memory)."""
        for _, table, sessions in self._iter_pieces(columns, _window_table):
            yield table, sessions

    def sessions(self) -> pd.DataFrame:
        """Every session's facts (with ``date`` and ``proxy_host``) from the files' footers;
        journals and unreadable Parquet files are read to learn theirs."""
        parts = [sessions for _, _, sessions in self.iter_tables(("session_id", "time_s"))]
        if not parts:
            return pd.DataFrame(columns=[*_session_columns()])
        return pd.concat(parts, ignore_index=True)

    def arrow_dataset(self) -> pads.Dataset:
        """The Parquet files as one ``pyarrow.dataset`` with the hive partition columns
        (``date``, ``host``): for your own scans and aggregations pushed into Arrow."""
        files = [str(f.path) for f in self.candidate_files() if f.path.suffix == ".parquet"]
        keys = sorted({k for f in self.files for k in f.partitions})
        partition_schema = pa.schema([(k, pa.string()) for k in keys])
        schema = pa.unify_schemas([FRAME_SCHEMA, partition_schema])
        import pyarrow.dataset as pads  # imports pandas (~0.3 s): only here

        part = pads.partitioning(partition_schema, flavor="hive")
        return pads.dataset(files, schema=schema, format="parquet", partitioning=part)


class _Fallback(Exception):
    """This Parquet file is not readable as ours; let the reader deal with it."""


def _session_columns() -> tuple[str, ...]:
    return (*SESSION_FIELDS, *PARTITION_COLUMNS)


def open_dataset(
    paths: Sequence[Path | str] | Path | str,
    filters: Filters | None = None,
    rows_per_read: int = ROWS_PER_READ,
) -> Dataset:
    """The dataset of captures under ``paths`` (files, directories, globs)."""
    if isinstance(paths, Path | str):
        paths = [paths]
    return Dataset(discover(paths), filters or Filters(), rows_per_read)


def _columns_to_read(columns: Sequence[str], schema: pa.Schema) -> list[str]:
    """The ``columns`` a file has; from a file that carries its events (format 2), not the
    columns that only decoding them needs (the JSON ``content``: most of what is left once
    the audio is cut out). Events recorded before a field was added are decoded again."""
    present = [c for c in columns if c in schema.names]
    if not events_are_current(schema):
        present = [c for c in present if c != "events"]
    if "events" in present:
        present = [c for c in present if c not in DECODE_ONLY_COLUMNS]
    return present


def with_filters(dataset: Dataset, filters: Filters) -> Dataset:
    """The same files with other filters (fresh read state)."""
    return replace(dataset, filters=filters, warnings=[], files_read=[])


def _strings(texts: Sequence[str]) -> pa.Array:
    return pa.array(texts, pa.string())
