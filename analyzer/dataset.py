"""Many runs from many proxies as one dataset: discovery, filters, and streaming run by run.

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

import datetime as dt
import glob
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.arrowbuffers import index_array, number_array, string_array
from analyzer.collector import bulk_allocation
from analyzer.events import DECODE_ONLY_COLUMNS
from analyzer.jsonio import dumps_json, loads_json
from analyzer.latency import float_list
from analyzer.lazy import LazyModule, is_frame
from analyzer.prefetch import prefetched
from analyzer.pricing import Prices
from analyzer.reader import (
    Capture,
    CaptureError,
    SessionKey,
    Sessions,
    drop_audio_content,
    duplicates_note,
    is_missing,
    read_capture,
    session_rows,
    with_columns,
)
from analyzer.report import (
    SUMMARY_TURN_COLUMNS,
    SessionAnalysis,
    all_turns,
    analyze_window,
    jsonable,
    session_dict,
    summary_of,
)
from analyzer.schema import (
    ANALYSIS_COLUMNS,
    FRAME_SCHEMA,
    REPORT_COLUMNS,
    SESSION_FIELDS,
    events_are_current,
    parse_file_metadata,
)
from analyzer.sizes import (
    BY_EVENT_COLUMNS,
    SIZE_COLUMNS,
    SIZE_INPUT_COLUMNS,
    column_sums,
    sizes_of_frames,
)
from analyzer.turns import rows_of
from analyzer.windows import filtered_windows, number, stream_windows, window_filter

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.dataset as pads
pd = LazyModule("pandas")

# Columns added to sessions (and to turn tables of a dataset) besides SESSION_FIELDS.
PARTITION_COLUMNS: tuple[str, ...] = ("date", "proxy_host")
# Turn-table columns that tell runs and machines apart; prepended by :func:`dataset_turns`.
DATASET_TURN_KEYS: tuple[str, ...] = ("run_id", "date", "proxy_host")
# A run file with more frames than this is read in windows of whole sessions.
ROWS_PER_READ = 20_000
_PARTITION_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
_GLOB_CHARS = frozenset("*?[")


# --- filters ---------------------------------------------------------------------------------


def parse_time(text: str) -> float:
    """Epoch seconds from ``2025-01-31``, ``2025-01-31T12:00``, ISO with offset, or a number.
    Times without an offset are UTC."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CaptureError(
            f"cannot read the time {text!r}; write a date (2025-01-31), an ISO time "
            "(2025-01-31T12:00:00Z) or epoch seconds."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Filters:
    """Which sessions a dataset holds. Empty tuples / None mean "any".

    ``since_s`` / ``until_s`` bound the session's start (``since_s <= start_s < until_s``);
    ``hosts`` are proxy hosts (the ``host=`` partition); ``sessions`` are ids or id prefixes.
    Model and dialect are matched against the session facts the recorder stored.
    """

    since_s: float | None = None
    until_s: float | None = None
    hosts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self != Filters()

    def keeps_partitions(self, partitions: Mapping[str, str]) -> bool:
        """False when a file's partitions rule out every session in it."""
        if self.hosts and partitions.get("host") not in self.hosts:
            return False
        day = partitions.get("date")
        if self.until_s is not None and day is not None:
            try:
                run_day = dt.date.fromisoformat(day)
            except ValueError:
                return True
            # The partition is the UTC day the run started; its sessions start that day or later.
            if run_day > dt.datetime.fromtimestamp(self.until_s, dt.UTC).date():
                return False
        return True

    def keeps(self, facts: Mapping[str, Any]) -> bool:
        """Whether a session (its facts, with ``proxy_host``) is in the dataset. An unknown
        start time passes the time filter here; :meth:`keeps` runs again once it is known."""
        start = number(facts.get("start_s"))
        if start is not None:
            if self.since_s is not None and start < self.since_s:
                return False
            if self.until_s is not None and start >= self.until_s:
                return False
        if self.hosts and facts.get("proxy_host") not in self.hosts:
            return False
        if self.models and facts.get("model") not in self.models:
            return False
        if self.dialects and facts.get("dialect") not in self.dialects:
            return False
        sid = str(facts.get("session_id"))
        return not self.sessions or any(sid.startswith(s) for s in self.sessions)


# --- discovery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFile:
    """One capture file of a dataset and the ``key=value`` partitions in its path."""

    path: Path
    partitions: dict[str, str] = field(default_factory=dict)

    @property
    def proxy_host(self) -> str | None:
        return self.partitions.get("host")

    @property
    def date(self) -> str | None:
        return self.partitions.get("date")


def partitions_of(path: Path) -> dict[str, str]:
    """The hive partitions (``key=value`` directories) in ``path``, innermost last."""
    found: dict[str, str] = {}
    for part in path.parent.parts:
        match = _PARTITION_PART.match(part)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _expand(spec: Path | str) -> list[Path]:
    text = str(spec)
    if any(c in text for c in _GLOB_CHARS) and not Path(text).exists():
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        if not matches:
            raise CaptureError(
                f"no files match {text}; check the pattern (quote it for the shell)."
            )
        return matches
    path = Path(text)
    if not path.exists():
        raise CaptureError(
            f"{path} does not exist; pass a .parquet, a .jsonl, a directory or a glob."
        )
    return [path]


def discover(paths: Sequence[Path | str]) -> list[RunFile]:
    """The capture files under ``paths`` (files, directories, globs), each once: Parquet files,
    plus journals with no Parquet file beside them, sorted by path."""
    candidates: set[Path] = set()
    for spec in paths:
        for path in _expand(spec):
            if path.is_dir():
                candidates.update(path.rglob("*.parquet"))
                candidates.update(path.rglob("*.jsonl"))
            elif path.suffix in (".parquet", ".jsonl"):
                candidates.add(path)
            else:
                raise CaptureError(f"{path} is neither a .parquet capture nor a .jsonl journal.")
    resolved = {p.resolve(): p for p in sorted(candidates)}
    stems = {p.with_suffix("") for p in resolved if p.suffix == ".parquet"}
    files = [
        RunFile(path, partitions_of(path))
        for real, path in sorted(resolved.items())
        if real.suffix == ".parquet" or real.with_suffix("") not in stems
    ]
    if not files:
        raise CaptureError(
            "no .parquet or .jsonl capture files found in " + ", ".join(map(str, paths))
        )
    return files


# --- reading ---------------------------------------------------------------------------------


def _sorted_table(table: pa.Table) -> pa.Table:
    """Frames sorted by session, then seq (stable, in Arrow)."""
    if "seq" not in table.column_names:
        return table
    keys = pa.table(
        {"s": pc.cast(table.column("session_id"), pa.string()), "q": table.column("seq")}
    )
    return table.take(pc.sort_indices(keys, [("s", "ascending"), ("q", "ascending")]))


def frames_of(table: pa.Table) -> pd.DataFrame:
    """Frames in Arrow as pandas code takes them: dictionary columns (direction, event type)
    as categories, other text as Python strings (``object``)."""
    import pandas as pd

    frames = table.to_pandas()
    text = {
        str(c): object
        for c, dtype in frames.dtypes.items()
        if isinstance(dtype, pd.StringDtype) or c == "session_id"
    }
    return frames.astype(text)


def _tidy_frames(table: pa.Table) -> pd.DataFrame:
    """Frames sorted by session, then seq (sorted in Arrow), for analysis (:func:`frames_of`)."""
    return frames_of(_sorted_table(table))


def _window_sessions(
    facts: list[dict[str, Any]], table: pa.Table, run: RunFile, run_id: str | None
) -> list[dict[str, Any]]:
    """The rows of ``_with_partitions(sessions_frame(facts, frames), run, run_id)`` of a window's
    frames, from Arrow and numpy (:func:`_sessions_table` makes that table of them). This runs
    in the reading thread while the previous window is analyzed: pandas here held the GIL for
    ~0.3 s over a 1 GB report, which the analysis waited out; and the report imports no pandas
    at all (Arrow's ``group_by`` would: it loads ``pyarrow.dataset``)."""
    ids = pc.dictionary_encode(
        pc.cast(table.column("session_id"), pa.string()), null_encoding="encode"
    ).combine_chunks()  # ids in order of appearance, as pandas' unique
    first = np.full(len(ids.dictionary), np.nan)
    np.fmin.at(first, index_array(ids.indices), number_array(table["time_s"]).astype(float))
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
    if not isinstance(sessions, list):
        return sessions
    return pd.DataFrame(sessions, columns=[*_session_columns()])


def _with_partitions(sessions: pd.DataFrame, run: RunFile, run_id: str | None) -> pd.DataFrame:
    sessions = sessions.copy()
    if run_id is not None:
        sessions["run_id"] = sessions["run_id"].where(sessions["run_id"].notna(), run_id)
    sessions["date"] = run.date
    sessions["proxy_host"] = run.proxy_host
    return sessions


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

    @property
    def sources(self) -> list[Path]:
        return [f.path for f in self.files]

    def _warn(self, text: str) -> None:
        if text not in self.warnings:  # a second pass over the dataset finds the same
            self.warnings.append(text)

    def _once(self, run: RunFile, table: pa.Table, sessions: Sessions) -> tuple[pa.Table, Sessions]:
        """A piece without the sessions already read from another file (with a warning)."""
        rows: Sequence[Mapping[Any, Any]] = (
            sessions if isinstance(sessions, list) else sessions.to_dict("records")
        )
        ids = [str(row["session_id"]) for row in rows]
        by_first: dict[Path, list[str]] = {}
        for session_id, row in zip(ids, rows, strict=True):
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
                value_set=string_array(sorted(drop)),
            )
        )
        table = table.filter(keep)
        if isinstance(sessions, list):
            return table, [row for row in sessions if str(row["session_id"]) not in drop]
        kept = [i not in drop for i in ids]
        return table, sessions[kept].reset_index(drop=True)

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
        try:
            pf = pq.ParquetFile(run.path)
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
        if isinstance(sessions, list):
            sessions = [row for row in sessions if self.filters.keeps(row)]
            ids = string_array([str(row["session_id"]) for row in sessions])
        else:
            keep = [
                self.filters.keeps({str(k): v for k, v in f.items()})
                for f in sessions.to_dict("records")
            ]
            sessions = sessions[keep].reset_index(drop=True)
            ids = string_array([str(s) for s in sessions["session_id"]])
        mask = pc.is_in(pc.cast(table.column("session_id"), pa.string()), value_set=ids)
        return table.filter(mask), sessions

    def _read_whole(self, run: RunFile, columns: Sequence[str]) -> tuple[pa.Table, pd.DataFrame]:
        """The reader's path (journals, and Parquet we cannot read: it falls back to the
        journal beside it or says what to do)."""
        capture = read_capture([run.path], columns)
        self.warnings.extend(capture.warnings)
        schema = pa.schema([FRAME_SCHEMA.field(c) for c in columns])
        table = pa.Table.from_pandas(capture.frames[list(columns)], preserve_index=False)
        return table.cast(schema), _with_partitions(capture.sessions, run, None)

    def iter_tables(
        self, columns: Sequence[str] = ANALYSIS_COLUMNS
    ) -> Iterator[tuple[RunFile, pa.Table, pd.DataFrame]]:
        """The dataset a piece at a time, filtered: (file, its frames as Arrow, its sessions),
        one piece per run file or per window of whole sessions of a big one. ``columns`` must
        include ``session_id`` and ``time_s``."""
        for run, table, sessions in self._iter_pieces(columns):
            yield run, table, _sessions_table(sessions)

    def _iter_pieces(
        self, columns: Sequence[str] = ANALYSIS_COLUMNS
    ) -> Iterator[tuple[RunFile, pa.Table, Sessions]]:
        """:meth:`iter_tables`, a Parquet file's sessions as rows (no pandas)."""
        columns = list(columns)
        schema = pa.schema([FRAME_SCHEMA.field(c) for c in columns])
        self.read_from = {}
        candidates = self.candidate_files()
        failures: list[CaptureError] = []
        for run in candidates:
            try:
                if run.path.suffix == ".jsonl":
                    raise _Fallback
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
                    yield run, table, sessions
                continue
            kept = [f for f in facts if self.filters.keeps(f)]
            if facts and not kept:
                continue  # the footer rules the whole file out: not one frame read
            self.files_read.append(run.path)
            present = _columns_to_read(columns, pf.schema_arrow)
            for table, window in self._pieces(run.path, pf, facts, kept, present):
                table = with_columns(table, columns).cast(schema)
                sessions = _window_sessions(window, table, run, run_id)
                table, sessions = self._once(run, *self._select(table, sessions))
                if len(sessions):
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
    ) -> Iterator[tuple[pa.Table, list[dict[str, Any]]]]:
        """A Parquet run file's frames of the ``kept`` sessions, whole or in windows of whole
        sessions (:mod:`analyzer.windows`), each with the facts of its sessions."""
        rows = pf.metadata.num_rows
        if not facts or (len(kept) == len(facts) and rows <= self.rows_per_read):
            yield pf.read(columns=columns), kept  # not pq.read_table: it imports pandas
            return
        streamed = (
            stream_windows(pf, kept, columns, self.rows_per_read, self._warn_about(path))
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
        :func:`analyzer.report.analyze_window`, the ``content`` of audio appends and deltas
        left out as in :meth:`iter_captures`."""
        for _, table, sessions in self._iter_pieces(columns):
            yield _sorted_table(drop_audio_content(table)), sessions

    def iter_captures(self, columns: Sequence[str] = ANALYSIS_COLUMNS) -> Iterator[Capture]:
        """:meth:`iter_tables` as :class:`~analyzer.reader.Capture` pieces (pandas frames),
        for analysis: the ``content`` of audio appends and deltas is left out (no analysis
        parses it, and it is most of the text that would be held in memory)."""
        for run, table, sessions in self.iter_tables(columns):
            yield Capture(_tidy_frames(drop_audio_content(table)), sessions, [run.path], [])

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


# --- analysis, streaming ---------------------------------------------------------------------


def iter_analyses(dataset: Dataset) -> Iterator[SessionAnalysis]:
    """:func:`analyzer.report.analyze_session` of every session, one run file at a time."""
    for table, sessions in dataset.iter_windows(REPORT_COLUMNS):
        yield from analyze_window(table, sessions)


def _with_keys(turns: pd.DataFrame, facts: Mapping[str, Any]) -> pd.DataFrame:
    keyed = turns.copy()
    for position, key in enumerate(DATASET_TURN_KEYS):
        keyed.insert(position, key, facts.get(key))
    return keyed


def dataset_turns(dataset: Dataset) -> pd.DataFrame:
    """The turn table of every session (:data:`analyzer.turns.TURN_COLUMNS`), preceded by
    ``run_id``, ``date`` and ``proxy_host`` so that sessions of different runs never clash."""
    parts: list[pd.DataFrame] = []
    for table, sessions in dataset.iter_windows(REPORT_COLUMNS):
        analyses = analyze_window(table, sessions)
        tables = [_with_keys(a.turns, a.facts) for a in analyses if a.turn_rows]
        if tables:
            parts.append(pd.concat(tables, ignore_index=True))
    if not parts:
        empty = all_turns([])
        return _with_keys(empty, {})
    return pd.concat(parts, ignore_index=True)


def dataset_sizes(dataset: Dataset) -> pd.DataFrame:
    """:func:`analyzer.sizes.sizes_by_event` of the whole dataset, aggregated in Arrow one run
    file at a time from the size columns only."""
    parts = [sizes_of_frames(table) for _, table, _ in dataset.iter_tables(SIZE_INPUT_COLUMNS)]
    if not parts:
        return pd.DataFrame(columns=list(BY_EVENT_COLUMNS)).astype(
            {c: "int64" for c in SIZE_COLUMNS}
        )
    result = pa.concat_tables(parts).to_pandas()
    result = result.sort_values(["session_id", "direction", "event_type"], kind="stable")
    for column in SIZE_COLUMNS:
        result[column] = result[column].astype("int64")
    return result[list(BY_EVENT_COLUMNS)].reset_index(drop=True)


# How ReportParts keeps each session's JSON (pyarrow's codecs: no extra dependency).
_CODEC = pa.Codec("lz4")
# What ReportParts takes of a turn row and of a size row.
_summary_columns = itemgetter(*SUMMARY_TURN_COLUMNS)
_size_columns = itemgetter("direction", "event_type", *SIZE_COLUMNS)

# Turns gathered before they are merged into one block: a pandas DataFrame per session would
# cost kilobytes of overhead, and Python values cost ~10x a block's memory.
_MERGE_EVERY = 2_000
# Size rows gathered before they are summed: summing a column at a time is ~3x faster than
# adding row by row.
_MERGE_SIZES_EVERY = 20_000


def _turn_block(rows: Sequence[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Turn rows of ``SUMMARY_TURN_COLUMNS`` as arrays: floats (NaN when missing), except
    ``interrupted`` (bools) and ``would_stall`` (True, False or None)."""
    block: dict[str, np.ndarray] = {}
    for name, values in zip(SUMMARY_TURN_COLUMNS, zip(*rows, strict=True), strict=True):
        if name == "interrupted":
            block[name] = np.array([bool(v) for v in values], dtype=bool)
        elif name == "would_stall":
            block[name] = np.empty(len(values), dtype=object)
            block[name][:] = values
        else:
            block[name] = np.array(float_list(values), dtype=float)
    return block


@dataclass
class ReportParts:
    """What a report keeps of sessions already analyzed: each session's report as compact JSON,
    the turn columns the summary needs (merged into blocks) and the size aggregates (rolled up
    over sessions as they come). Memory grows with the report, not the dataset."""

    # Each session's report as the indented JSON the report file holds, LZ4-compressed (with
    # its size): ~10 kB of JSON a session would make the report of a fleet of 100,000 sessions
    # hold 1 GB. Kept as written, so writing the report decodes nothing; LZ4 is ~6x faster
    # than zlib, for ~1.4x the bytes.
    sessions: list[tuple[int, bytes]] = field(default_factory=list)
    # Per session: what ``summarize`` reads of it (start, cost, dialect, errors), kept apart so
    # the summary can be written without decoding every session again.
    briefs: list[dict[str, Any]] = field(default_factory=list)
    # The summary's turn columns (``SUMMARY_TURN_COLUMNS``) in blocks of arrays.
    turns: list[dict[str, np.ndarray]] = field(default_factory=list)
    sizes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    _pending_turns: list[tuple[Any, ...]] = field(default_factory=list)  # SUMMARY_TURN_COLUMNS
    # Size rows by (direction, event type) not yet added into ``sizes``.
    _pending_sizes: dict[tuple[str, str], list[Sequence[Any]]] = field(default_factory=dict)
    _pending_size_rows: int = 0

    def add(
        self,
        session: dict[str, Any] | str,
        turns: Sequence[Mapping[str, Any]] | pd.DataFrame,
        sizes: Sequence[Mapping[str, Any]] | pd.DataFrame = (),
        size_sums: Sequence[tuple[str, str, Sequence[int]]] = (),
    ) -> None:
        """One session: its report dict (or its JSON), turn rows and size rows (or tables), or
        instead of size rows their (direction, event type, SIZE_COLUMNS) sums."""
        data = session if isinstance(session, dict) else loads_json(session)
        text = dumps_json(data, indent=True)
        self.sessions.append((len(text), _CODEC.compress(text, asbytes=True)))
        self.briefs.append(
            {
                "start_s": data.get("start_s"),
                "cost": {"usd": (data.get("cost") or {}).get("usd")},
                "kind": data.get("kind"),
                "transcription_cost": {"usd": (data.get("transcription_cost") or {}).get("usd")},
                "dialect": data.get("dialect"),
                "errors": [None] * len(data.get("errors") or []),
            }
        )
        # The summary's columns only: the rows themselves hold transcripts and ids.
        self._pending_turns.extend(
            map(_summary_columns, rows_of(turns) if is_frame(turns) else turns)
        )
        pending = self._pending_sizes
        for direction, event_type, *values in map(
            _size_columns, rows_of(sizes) if is_frame(sizes) else sizes
        ):
            pending.setdefault((str(direction), str(event_type)), []).append(values)
        for direction, event_type, sums in size_sums:
            pending.setdefault((direction, event_type), []).append(sums)
        self._pending_size_rows += len(sizes) + len(size_sums)
        if self._pending_size_rows >= _MERGE_SIZES_EVERY:
            self._merge_sizes()
        if len(self._pending_turns) >= _MERGE_EVERY:
            self._merge()

    def _merge_sizes(self) -> None:
        for key, sums in column_sums(self._pending_sizes).items():
            if key in self.sizes:
                sums = [a + b for a, b in zip(self.sizes[key], sums, strict=True)]
            self.sizes[key] = sums
        self._pending_sizes, self._pending_size_rows = {}, 0

    def _merge(self) -> None:
        self._merge_sizes()
        if self._pending_turns:
            self.turns.append(_turn_block(self._pending_turns))
            self._pending_turns = []

    def _session_text(self, i: int) -> bytes:
        size, packed = self.sessions[i]
        text: bytes = _CODEC.decompress(packed, decompressed_size=size, asbytes=True)
        return text

    def _session(self, i: int) -> Any:
        return loads_json(self._session_text(i))

    def _order(self) -> list[int]:
        starts = [b["start_s"] for b in self.briefs]
        return sorted(range(len(starts)), key=lambda i: (starts[i] is None, starts[i] or 0.0))

    def summary(self, sources: Sequence[Path], warnings: Sequence[str]) -> dict[str, Any]:
        """The report's ``summary``."""
        self._merge()
        turns = {
            c: np.concatenate([block[c] for block in self.turns])
            if self.turns
            else np.zeros(0, dtype=bool if c == "interrupted" else float)
            for c in SUMMARY_TURN_COLUMNS
        }
        size_rows = [
            {"direction": d, "event_type": t, **dict(zip(SIZE_COLUMNS, sums, strict=True))}
            for (d, t), sums in self.sizes.items()
        ]
        summary: dict[str, Any] = jsonable(
            summary_of(turns, size_rows, self.briefs, sources, warnings)
        )
        return summary

    def write_json(self, out: TextIO, sources: Sequence[Path], warnings: Sequence[str]) -> None:
        """Write the report as ``json.dumps(report, indent=2, ensure_ascii=False)`` would (but
        floats below 1e-4 without an exponent), one session at a time: a fleet's report can be
        bigger than memory as Python objects."""
        pad = "  "
        out.write("{\n" + pad + '"sessions": [')
        order = self._order()
        for n, i in enumerate(order):
            # Indented JSON has no empty lines and no raw newline inside strings.
            text = self._session_text(i).replace(b"\n", b"\n" + pad.encode() * 2).decode()
            out.write(("," if n else "") + "\n" + pad * 2 + text)
        out.write(("\n" + pad if order else "") + "],\n" + pad + '"summary": ')
        summary = dumps_json(self.summary(sources, warnings), indent=True).decode()
        out.write(summary.replace("\n", "\n" + pad) + "\n}")

    def report(self, sources: Sequence[Path], warnings: Sequence[str]) -> dict[str, Any]:
        """``{"sessions": [...] (in start order), "summary": {...}}`` as ``build_report``."""
        summary = self.summary(sources, warnings)
        sessions = [self._session(i) for i in self._order()]
        return {"sessions": sessions, "summary": summary}


def session_report(
    analysis: SessionAnalysis, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """:func:`analyzer.report.session_dict` plus the session's ``date`` and ``proxy_host``."""
    session = session_dict(analysis, prices)
    session["date"] = analysis.facts.get("date")
    session["proxy_host"] = analysis.facts.get("proxy_host")
    return session


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


def report_parts(dataset: Dataset, prices: Mapping[str, Prices] | None = None) -> ReportParts:
    """Analyze the dataset run file by run file, keeping only what the report needs."""
    parts = ReportParts()
    with bulk_allocation():
        for table, sessions in prefetched(dataset.iter_windows(REPORT_COLUMNS)):
            for analysis in analyze_window(table, sessions):
                parts.add(
                    session_report(analysis, prices),
                    analysis.turn_rows,
                    size_sums=analysis.size_sums,
                )
    return parts


def dataset_report(dataset: Dataset, prices: Mapping[str, Prices] | None = None) -> dict[str, Any]:
    """The report of ``rt-analyze report`` (:func:`analyzer.report.build_report`'s shape, each
    session with ``date`` and ``proxy_host``), computed run file by run file in bounded memory:
    only per-session results, turn rows and size aggregates are kept. For fleets whose report
    itself is big, :meth:`ReportParts.write_json` of :func:`report_parts` writes it streaming."""
    return report_parts(dataset, prices).report(dataset.files_read, dataset.warnings)


def with_filters(dataset: Dataset, filters: Filters) -> Dataset:
    """The same files with other filters (fresh read state)."""
    return replace(dataset, filters=filters, warnings=[], files_read=[])
