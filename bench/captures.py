"""Big captures for the analyzer figures, made from the real sessions in ``samples/``.

Each shipped sample is one ~15 s voice session recorded through mitmdump with the addon (GA pcm16,
beta pcm16, GA G.711 with manual turns). A bench capture is many copies of them, each with a new
session id and its own start time, eight at a time overlapping like concurrent sessions of one
proxy run, written with the same Parquet settings and row groups as the recorder's
:class:`analyzer.recording.writers.ParquetSink`: as the recorder writes them today (format 2, with
each frame's normalized events), or as an earlier recorder did (format 1, frames only). A bench
journal is the same copies made from the samples' journals, their lines interleaved in time order
as the recorder journals them, with a ``run_end`` record at the end. All are cached under
``bench/out/`` by size (and format, and the recorder's row-group policy).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.events import decode_frames, events_column
from analyzer.reader import with_columns
from analyzer.recording.writers import (
    PARQUET_WRITER_OPTIONS,
    ROW_GROUPS,
    RowGroupPolicy,
    journal_bytes,
)
from analyzer.schema import (
    EVENT_STRUCT,
    FRAME_COLUMNS,
    FRAME_SCHEMA,
    events_are_current,
    file_metadata,
    parse_file_metadata,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ("ga-voice.parquet", "beta-voice.parquet", "ga-g711-manual.parquet")
GENERATOR_VERSION = 2  # bump when the generated captures change
CONCURRENT = 8
SESSION_SPACING_S = 20.0


@dataclass
class Template:
    frames: pa.Table  # all columns, FRAME_SCHEMA
    facts: dict[str, Any]
    approx_bytes: int  # its share of a Parquet file


def load_templates(samples_dir: Path = ROOT / "samples") -> list[Template]:
    templates = []
    for name in SAMPLES:
        path = samples_dir / name
        pf = pq.ParquetFile(path)
        meta = parse_file_metadata(pf.metadata.metadata)
        if meta is None or len(meta["sessions"]) != 1:
            raise RuntimeError(f"{path} is not a one-session rt-analyze capture")
        table = pf.read()
        if not events_are_current(table.schema):
            # A sample of format 1, or written before the event model gained a field: decode
            # its events as today's recorder does.
            facts = meta["sessions"][0]
            events = events_column(decode_frames(table, {facts["session_id"]: facts}))
            table = table.drop_columns([c for c in ("events",) if c in table.column_names])
            table = table.append_column(FRAME_SCHEMA.field("events"), events)
        table = with_columns(table, FRAME_COLUMNS).cast(FRAME_SCHEMA)
        templates.append(Template(table, meta["sessions"][0], path.stat().st_size))
    return templates


def _copy(
    template: Template, run_id: str, session_id: str, shift_s: float
) -> tuple[pa.Table, dict[str, Any]]:
    t = template.frames
    ids = pa.array([session_id] * t.num_rows, pa.string()).dictionary_encode()
    t = t.set_column(t.schema.get_field_index("session_id"), FRAME_SCHEMA.field("session_id"), ids)
    idx = t.schema.get_field_index("time_s")
    t = t.set_column(idx, FRAME_SCHEMA.field("time_s"), pc.add(t.column("time_s"), shift_s))
    facts = json.loads(json.dumps(template.facts))
    facts["session_id"] = session_id
    facts["run_id"] = run_id
    for key in ("start_s", "end_s"):
        if isinstance(facts.get(key), int | float):
            facts[key] += shift_s
    return t, facts


def generate(
    path: Path,
    target_bytes: int,
    templates: list[Template] | None = None,
    format_version: int = 2,
    row_groups: RowGroupPolicy = ROW_GROUPS,
) -> Path:
    """Write a capture of about ``target_bytes`` at ``path`` (tmp file, then rename), in the
    format the recorder writes (2) or the one before (1: no ``events``), in row groups closed
    as the recorder closes them (at the first group of sessions that fills one)."""
    templates = templates or load_templates()
    per_session = sum(t.approx_bytes for t in templates) / len(templates)
    n_sessions = max(1, round(target_bytes / per_session))
    run_id = f"rt-bench-{target_bytes}"
    sessions: list[dict[str, Any]] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    schema = FRAME_SCHEMA
    if format_version < 2:
        schema = pa.schema([f for f in FRAME_SCHEMA if f.name not in ("audio_cuts", "events")])
    writer = pq.ParquetWriter(tmp, schema, **PARQUET_WRITER_OPTIONS)
    pieces: list[pa.Table] = []

    def write_row_group() -> None:
        table = pa.concat_tables(pieces)
        writer.write_table(table, row_group_size=max(1, table.num_rows))
        pieces.clear()

    try:
        for first in range(0, n_sessions, CONCURRENT):
            group = []
            for i in range(first, min(first + CONCURRENT, n_sessions)):
                sid = str(uuid.UUID(int=(GENERATOR_VERSION << 64) + i))
                table, facts = _copy(
                    templates[i % len(templates)], run_id, sid, i * SESSION_SPACING_S
                )
                group.append(table)
                sessions.append(facts)
            # Arrival order, as the recorder writes it: the group's sessions interleaved.
            frames = pa.concat_tables(group).combine_chunks().sort_by("time_s").select(schema.names)
            pieces.append(frames)
            if row_groups.full(sum(t.num_rows for t in pieces), sum(t.nbytes for t in pieces)):
                write_row_group()
        if pieces:
            write_row_group()
        metadata = file_metadata(run_id, sessions)
        if format_version < 2:
            value = json.loads(metadata[b"rt_analyze"])
            metadata[b"rt_analyze"] = json.dumps({**value, "format_version": 1}).encode()
        writer.add_key_value_metadata({k.decode(): v.decode() for k, v in metadata.items()})
    finally:
        writer.close()
    tmp.rename(path)
    return path


def cached(out_dir: Path, target_bytes: int, format_version: int = 2) -> Path:
    """The bench capture of about ``target_bytes``, generated the first time."""
    label = f"{target_bytes / 1e6:g}MB-format{format_version}"
    # The event fields and the row groups are in the name: a capture made before the event
    # model or the recorder's row-group policy changed is stale.
    events = hashlib.sha256(str(EVENT_STRUCT).encode()).hexdigest()[:8]
    groups = f"rg{ROW_GROUPS.max_bytes >> 20}MiB-{ROW_GROUPS.max_rows}"
    path = out_dir / f"capture-v{GENERATOR_VERSION}-{events}-{groups}-{label}.parquet"
    if not path.exists():
        generate(path, target_bytes, format_version=format_version)
    return path


JOURNAL_SAMPLES = tuple(name.replace(".parquet", ".jsonl") for name in SAMPLES)
JOURNAL_GENERATOR_VERSION = 1  # bump when the generated journals change


@dataclass
class JournalTemplate:
    start: dict[str, Any]  # the session_start record
    frames: list[dict[str, Any]]  # its frame records, in journal order
    end: dict[str, Any]  # the session_end record
    approx_bytes: int  # its share of a journal


def load_journal_templates(samples_dir: Path = ROOT / "samples") -> list[JournalTemplate]:
    templates = []
    for name in JOURNAL_SAMPLES:
        path = samples_dir / name
        records = [json.loads(line) for line in path.read_bytes().splitlines()]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_kind.setdefault(record["record"], []).append(record)
        if len(by_kind.get("session_start", [])) != 1 or len(by_kind.get("session_end", [])) != 1:
            raise RuntimeError(f"{path} is not a one-session rt-analyze journal")
        templates.append(
            JournalTemplate(
                by_kind["session_start"][0],
                by_kind["frame"],
                by_kind["session_end"][0],
                path.stat().st_size,
            )
        )
    return templates


def _journal_copy(
    template: JournalTemplate, run_id: str, session_id: str, shift_s: float
) -> Iterator[tuple[float, int, dict[str, Any]]]:
    """The copy's records as (time, order at equal times, record)."""
    start = {**template.start, "session_id": session_id, "run_id": run_id}
    start["start_s"] += shift_s
    yield start["start_s"], 0, start
    for frame in template.frames:
        time_s = frame["time_s"] + shift_s
        yield time_s, 1, {**frame, "session_id": session_id, "time_s": time_s}
    end = {**template.end, "session_id": session_id}
    end["end_s"] += shift_s
    yield end["end_s"], 2, end


def generate_journal(
    path: Path, target_bytes: int, templates: list[JournalTemplate] | None = None
) -> Path:
    """Write a journal of about ``target_bytes`` at ``path`` (tmp file, then rename)."""
    templates = templates or load_journal_templates()
    per_session = sum(t.approx_bytes for t in templates) / len(templates)
    n_sessions = max(1, round(target_bytes / per_session))
    run_id = f"rt-bench-journal-{target_bytes}"
    frames = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for first in range(0, n_sessions, CONCURRENT):
            group: list[tuple[float, int, dict[str, Any]]] = []
            for i in range(first, min(first + CONCURRENT, n_sessions)):
                sid = str(uuid.UUID(int=(JOURNAL_GENERATOR_VERSION << 72) + i))
                template = templates[i % len(templates)]
                group.extend(_journal_copy(template, run_id, sid, i * SESSION_SPACING_S))
                frames += len(template.frames)
            # Arrival order, as the recorder journals it: the group's sessions interleaved.
            group.sort(key=lambda r: (r[0], r[1]))
            f.write(b"".join(journal_bytes(record) for _, _, record in group))
        run_end = {
            "record": "run_end",
            "time_s": n_sessions * SESSION_SPACING_S + templates[0].end["end_s"],
            "run_id": run_id,
            "sessions": n_sessions,
            "frames_recorded": frames,
        }
        f.write(journal_bytes(run_end))
    tmp.rename(path)
    return path


def cached_journal(out_dir: Path, target_bytes: int) -> Path:
    """The bench journal of about ``target_bytes``, generated the first time."""
    label = f"{target_bytes / 1e6:g}MB"
    path = out_dir / f"journal-v{JOURNAL_GENERATOR_VERSION}-{label}.jsonl"
    if not path.exists():
        generate_journal(path, target_bytes)
    return path
