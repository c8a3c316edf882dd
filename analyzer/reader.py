"""Read captures: Parquet files, JSONL journals, or directories of them, as one set of frames."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.journal_copies import journal_warnings
from analyzer.protocols.realtime_events import CLIENT_AUDIO_EVENTS, SERVER_AUDIO_EVENTS
from analyzer.recording.convert import (
    RECORDING_RECENT_S,
    FrameRecord,
    JournalError,
    read_journal,
)
from analyzer.schema import (
    ANALYSIS_COLUMNS,
    FRAME_SCHEMA,
    SESSION_FIELDS,
    events_are_current,
    parse_file_metadata,
)


class CaptureError(Exception):
    """A capture cannot be read; the message is one sentence a user can act on."""


# Sessions of a piece of a dataset: rows (dicts of the session columns, in start order; how a
# Parquet capture's are read, without pandas) or a table of them.
Sessions: TypeAlias = "list[dict[str, Any]] | pd.DataFrame"


@dataclass
class Capture:
    """Frames of one or more runs (``frames`` sorted by session, then seq) and their sessions."""

    frames: pd.DataFrame
    sessions: pd.DataFrame
    sources: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def session_frames(self, session_id: str) -> pd.DataFrame:
        return self.frames[self.frames["session_id"] == session_id]


def find_capture_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: Parquet files, plus journals that have no Parquet file beside them."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise CaptureError(f"{path} does not exist; pass a .parquet, a .jsonl or a directory.")
        if path.is_dir():
            parquet = sorted(path.rglob("*.parquet"))
            stems = {p.with_suffix("") for p in parquet}
            journals = [j for j in sorted(path.rglob("*.jsonl")) if j.with_suffix("") not in stems]
            found.extend(sorted(parquet + journals))
        else:
            found.append(path)
    if not found:
        raise CaptureError(
            "no .parquet or .jsonl capture files found in " + ", ".join(map(str, paths))
        )
    return found


def _frames_from_records(records: list[FrameRecord], columns: Sequence[str]) -> pa.Table:
    data = {c: [getattr(r, c) for r in records] for c in columns}
    return pa.Table.from_pydict(data, schema=pa.schema([FRAME_SCHEMA.field(c) for c in columns]))


def _read_journal(
    path: Path, columns: Sequence[str], warnings: list[str]
) -> tuple[pa.Table, list[dict[str, Any]], bool]:
    """A journal's frames, its session facts, and whether the recorder finished it."""
    try:
        journal = read_journal(path)
    except JournalError as exc:
        raise CaptureError(str(exc)) from exc
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror}.") from exc
    warnings.extend(journal_warnings(path, journal))
    table = _frames_from_records(journal.frames, columns)
    return table, list(journal.sessions.values()), journal.run_end is not None


def unfinished_parquet_note(parquet: Path, journal: Path, finished: bool) -> str:
    """Why ``parquet`` could not be read while its ``journal`` could, in one sentence."""
    if finished:
        why = (
            "is unreadable though its journal is complete (the recorder could not finish it, "
            f"or it was damaged since); read {journal.name}"
        )
    else:
        try:
            age = max(0.0, time.time() - journal.stat().st_mtime)
        except OSError:
            age = math.inf
        if age < RECORDING_RECENT_S:
            return (
                f"{parquet.name} is still being recorded (its journal was written {age:.0f} s "
                f"ago and the run has not ended); read {journal.name} as far as it goes."
            )
        why = (
            "was never finished: the recorder stopped without closing it (killed?); "
            f"read {journal.name}"
        )
    return f"{parquet.name} {why} instead. `rt-analyze convert {journal}` rebuilds it."


def _unreadable_parquet(path: Path, exc: Exception) -> CaptureError:
    """The error for a ``.parquet`` that Arrow cannot open, and no journal beside it."""
    journal = path.with_suffix(".jsonl")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        return CaptureError(f"cannot read {path}: {err.strerror}.")
    if not head:
        return CaptureError(
            f"{path} is empty (0 bytes) and there is no {journal.name} beside it to read "
            "instead; pass another capture."
        )
    if not b"PAR1".startswith(head):  # a file cut inside its magic is still unfinished
        return CaptureError(
            f"{path} is not a Parquet file (renamed?); pass a capture written by rt-analyze "
            "(.parquet or .jsonl)."
        )
    return CaptureError(
        f"{path} is an unfinished Parquet file (it has no footer: still being recorded, or the "
        f"recorder was killed), and there is no {journal.name} beside it to read instead; pass "
        "its journal."
    )


def _read_parquet(path: Path, columns: Sequence[str]) -> tuple[pa.Table, list[dict[str, Any]]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable_parquet(path, exc) from exc
    meta = parse_file_metadata(pf.metadata.metadata)
    missing = [c for c in ("session_id", "seq", "time_s") if c not in pf.schema_arrow.names]
    if meta is None or missing:
        raise CaptureError(
            f"{path} is a Parquet file but not an rt-analyze capture; pass a capture written "
            "by rt-analyze (.parquet or .jsonl)."
        )
    names = pf.schema_arrow.names
    if not events_are_current(pf.schema_arrow):  # events of an earlier version: decoded again
        names = [c for c in names if c != "events"]
    table = pf.read(columns=[c for c in columns if c in names])
    return with_columns(table, columns), meta["sessions"]


def with_columns(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``table`` with ``columns`` in order; those a file of an earlier format version lacks
    (``events``) are added as nulls."""
    for column in columns:
        if column not in table.column_names:
            field = FRAME_SCHEMA.field(column)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(list(columns))


def _read_file(
    path: Path, columns: Sequence[str], warnings: list[str]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """One capture file; a Parquet file we cannot read is read from the journal beside it."""
    if path.suffix == ".jsonl":
        table, facts, _ = _read_journal(path, columns, warnings)
        return table, facts
    if path.suffix != ".parquet":
        raise CaptureError(f"{path} is neither a .parquet capture nor a .jsonl journal.")
    journal = path.with_suffix(".jsonl")
    try:
        return _read_parquet(path, columns)
    except CaptureError:
        if not journal.exists():
            raise
    table, facts, finished = _read_journal(journal, columns, warnings)
    warnings.append(unfinished_parquet_note(path, journal, finished))
    return table, facts


# A session is its run and its id: two runs may reuse an id (clients choose some), while a
# copied capture repeats both.
SessionKey: TypeAlias = "tuple[str | None, str]"


def session_keys(table: pa.Table, facts: Sequence[Mapping[str, Any]]) -> dict[str, SessionKey]:
    """Session id -> (run id, session id) of a file's sessions: those in its facts, then those
    known only from frames (their run unknown)."""
    keys: dict[str, SessionKey] = {}
    for f in facts:
        run_id = f.get("run_id")
        keys[str(f["session_id"])] = (
            None if is_missing(run_id) else str(run_id),
            str(f["session_id"]),
        )
    for session_id in pc.unique(pc.cast(table.column("session_id"), pa.string())).to_pylist():
        if session_id is not None and session_id not in keys:
            keys[session_id] = (None, session_id)
    return keys


def duplicates_note(ids: Sequence[str], path: Path, first: Path) -> str:
    """The warning for sessions of ``path`` already read from ``first``."""
    shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
    return (
        f"{len(ids)} session(s) of {path} ({shown}) are also in {first}, from the same run: "
        f"read once, from {first}; remove one of the copies."
    )


def _drop_sessions(
    table: pa.Table, facts: list[dict[str, Any]], drop: Sequence[str]
) -> tuple[pa.Table, list[dict[str, Any]]]:
    ids = pc.cast(table.column("session_id"), pa.string())
    keep = pc.invert(pc.is_in(ids, value_set=_strings(list(drop))))
    gone = set(drop)
    return table.filter(keep), [f for f in facts if str(f["session_id"]) not in gone]


def read_tables(
    paths: Sequence[Path],
    columns: Sequence[str] = ANALYSIS_COLUMNS,
    progress: Callable[[], None] | None = None,
) -> tuple[pa.Table, list[dict[str, Any]], list[Path], list[str]]:
    """Frames of all captures as one Arrow table, their session facts, the files read, warnings.

    Of several files, one that cannot be read is skipped with a warning (an error only when none
    can be read), and a session found in two files is read from the first only, with a warning.
    ``progress`` is called after each file."""
    warnings: list[str] = []
    tables: list[pa.Table] = []
    sessions: list[dict[str, Any]] = []
    files = find_capture_files(paths)
    read: list[Path] = []
    first_seen: dict[SessionKey, Path] = {}
    failures: list[CaptureError] = []
    for path in files:
        try:
            table, facts = _read_file(path, columns, warnings)
        except CaptureError as exc:
            if len(files) == 1:
                raise
            failures.append(exc)
            warnings.append(f"skipped a file: {exc}")
            continue
        finally:
            if progress is not None:
                progress()
        by_first: dict[Path, list[str]] = {}
        for session_id, key in session_keys(table, facts).items():
            first = first_seen.setdefault(key, path)
            if first != path:
                by_first.setdefault(first, []).append(session_id)
        for first, ids in by_first.items():
            warnings.append(duplicates_note(ids, path, first))
            table, facts = _drop_sessions(table, facts, ids)
        read.append(path)
        tables.append(table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in columns])))
        sessions.extend(facts)
    if not tables:
        raise CaptureError(
            f"none of the {len(files)} capture files could be read; the first: {failures[0]}"
        )
    return pa.concat_tables(tables, promote_options="default"), sessions, read, warnings


# Audio frames whose ``content`` no analysis parses (once the audio is cut out it is only JSON
# scaffolding); about 80% of a voice capture's frames.
AUDIO_FRAME_EVENTS = CLIENT_AUDIO_EVENTS | SERVER_AUDIO_EVENTS


def drop_audio_content(table: pa.Table) -> pa.Table:
    """``table`` with ``content`` nulled for audio append/delta frames: what reports and sizes
    read never parses it, and it is most of the text held in memory. (Not for replay or audio
    rebuilding, which need the frames whole.)"""
    if "content" not in table.column_names or "event_type" not in table.column_names:
        return table
    event_type = pc.cast(table.column("event_type"), pa.string())
    # is_in answers false (never null) for a frame without a type.
    audio = pc.is_in(event_type, value_set=_strings(sorted(AUDIO_FRAME_EVENTS)))
    content = table.column("content")
    slim = pc.if_else(audio, pa.nulls(1, content.type)[0], content)
    return table.set_column(table.column_names.index("content"), "content", slim)


def session_rows(
    sessions: list[dict[str, Any]], first_seen: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row of :data:`SESSION_FIELDS` per session: the facts of ``sessions`` (merged by id),
    then the sessions known only from their frames. ``first_seen`` maps each session id seen in
    the frames, in order of appearance, to the time of its first frame: a session's start when
    its facts have none."""
    by_id: dict[str, dict[str, Any]] = {}
    for facts in sessions:
        by_id.setdefault(facts["session_id"], {}).update(facts)
    for session_id in first_seen:
        by_id.setdefault(session_id, {"session_id": session_id})
    rows: list[dict[str, Any]] = [
        {f: facts.get(f) for f in SESSION_FIELDS} for facts in by_id.values()
    ]
    for row in rows:
        if is_missing(row["start_s"]):
            row["start_s"] = first_seen.get(row["session_id"], row["start_s"])
    return rows


def is_missing(value: Any) -> bool:
    """None or NaN (a fact not known)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def sessions_frame(sessions: list[dict[str, Any]], frames: pd.DataFrame) -> pd.DataFrame:
    """One row per session, in start order, including sessions known only from their frames."""
    first_seen: dict[str, Any] = {}
    if len(frames):
        first = frames.groupby("session_id", observed=True)["time_s"].min()
        first_seen = {str(s): first.get(s) for s in frames["session_id"].unique()}
    df = pd.DataFrame(session_rows(sessions, first_seen), columns=list(SESSION_FIELDS))
    return df.sort_values("start_s", kind="stable").reset_index(drop=True)


def read_capture(
    paths: Sequence[Path] | Path,
    columns: Sequence[str] = ANALYSIS_COLUMNS,
    progress: Callable[[], None] | None = None,
) -> Capture:
    """Read captures for analysis (see :func:`read_tables`). ``columns`` defaults to everything
    but audio samples."""
    if isinstance(paths, Path):
        paths = [paths]
    table, sessions, files, warnings = read_tables(paths, columns, progress)
    frames = table.to_pandas()
    for name in ("session_id", "direction", "opcode", "event_type"):
        if name in frames and isinstance(frames[name].dtype, pd.CategoricalDtype):
            frames[name] = frames[name].astype(object)
    frames = frames.sort_values(["session_id", "seq"], kind="stable").reset_index(drop=True)
    return Capture(frames, sessions_frame(sessions, frames), files, warnings)


def merge_captures(parts: Sequence[Capture]) -> Capture:
    """Captures read one file at a time (for a progress bar), as one capture."""
    if len(parts) == 1:
        return parts[0]
    frames = pd.concat([c.frames for c in parts], ignore_index=True)
    frames = frames.sort_values(["session_id", "seq"], kind="stable").reset_index(drop=True)
    sessions = pd.concat([c.sessions for c in parts], ignore_index=True)
    sessions = sessions.drop_duplicates("session_id").sort_values("start_s", kind="stable")
    return Capture(
        frames,
        sessions.reset_index(drop=True),
        [p for c in parts for p in c.sources],
        [w for c in parts for w in c.warnings],
    )


def _strings(texts: Sequence[str]) -> pa.Array:
    return pa.array(texts, pa.string())
