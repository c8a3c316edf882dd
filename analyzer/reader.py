"""Read captures: Parquet files, JSONL journals, or directories of them, as one set of frames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.arrowbuffers import string_array
from analyzer.lazy import LazyModule
from analyzer.protocol import CLIENT_AUDIO_EVENTS, SERVER_AUDIO_EVENTS
from analyzer.recording.convert import FrameRecord, JournalError, read_journal
from analyzer.schema import ANALYSIS_COLUMNS, FRAME_SCHEMA, SESSION_FIELDS, parse_file_metadata

if TYPE_CHECKING:
    import pandas as pd
pd = LazyModule("pandas")


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
) -> tuple[pa.Table, list[dict[str, Any]]]:
    try:
        journal = read_journal(path)
    except JournalError as exc:
        raise CaptureError(str(exc)) from exc
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror}.") from exc
    if journal.torn_last_line:
        warnings.append(f"{path.name}: skipped a torn last line (the recorder stopped mid-write).")
    if journal.bad_lines:
        lines = ", ".join(map(str, journal.bad_lines[:5]))
        warnings.append(
            f"{path.name}: skipped {len(journal.bad_lines)} unreadable line(s): {lines}."
        )
    return _frames_from_records(journal.frames, columns), list(journal.sessions.values())


def _read_parquet(path: Path, columns: Sequence[str]) -> tuple[pa.Table, list[dict[str, Any]]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaptureError(
            f"{path} is not a readable Parquet file ({exc}); if the proxy crashed, run "
            f"`rt-analyze convert {path.with_suffix('.jsonl')}` to rebuild it from the journal."
        ) from exc
    meta = parse_file_metadata(pf.metadata.metadata)
    missing = [c for c in ("session_id", "seq", "time_s") if c not in pf.schema_arrow.names]
    if meta is None or missing:
        raise CaptureError(f"{path} is a Parquet file but not an rt-analyze capture.")
    table = pf.read(columns=[c for c in columns if c in pf.schema_arrow.names])
    return with_columns(table, columns), meta["sessions"]


def with_columns(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """``table`` with ``columns`` in order; those a file of an earlier format version lacks
    (``events``) are added as nulls."""
    for column in columns:
        if column not in table.column_names:
            field = FRAME_SCHEMA.field(column)
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(list(columns))


def read_tables(
    paths: Sequence[Path], columns: Sequence[str] = ANALYSIS_COLUMNS
) -> tuple[pa.Table, list[dict[str, Any]], list[Path], list[str]]:
    """Frames of all captures as one Arrow table, their session facts, the files read, warnings."""
    warnings: list[str] = []
    tables: list[pa.Table] = []
    sessions: list[dict[str, Any]] = []
    files = find_capture_files(paths)
    for path in files:
        if path.suffix == ".jsonl":
            table, facts = _read_journal(path, columns, warnings)
        elif path.suffix == ".parquet":
            journal = path.with_suffix(".jsonl")
            try:
                table, facts = _read_parquet(path, columns)
            except CaptureError:
                if not journal.exists():
                    raise
                warnings.append(
                    f"{path.name} is incomplete (recorder killed?); read {journal.name} instead. "
                    f"`rt-analyze convert {journal}` rebuilds it."
                )
                table, facts = _read_journal(journal, columns, warnings)
        else:
            raise CaptureError(f"{path} is neither a .parquet capture nor a .jsonl journal.")
        tables.append(table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in columns])))
        sessions.extend(facts)
    return pa.concat_tables(tables, promote_options="default"), sessions, files, warnings


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
    audio = pc.is_in(event_type, value_set=string_array(sorted(AUDIO_FRAME_EVENTS)))
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
    paths: Sequence[Path] | Path, columns: Sequence[str] = ANALYSIS_COLUMNS
) -> Capture:
    """Read captures for analysis. ``columns`` defaults to everything but audio samples."""
    if isinstance(paths, Path):
        paths = [paths]
    table, sessions, files, warnings = read_tables(paths, columns)
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
