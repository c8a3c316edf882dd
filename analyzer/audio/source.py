"""A capture's audio chunks session by session, found through the normalized event table.

Every protocol's adapter gives one USER_AUDIO / REPLY_AUDIO event per audio field of a frame
(``analyzer/events.py``); the field's decoded bytes are in the frame's ``audio`` column, the
fields of one frame one after the other (``audio_bytes`` each). So no protocol's own event
types are read here, and no audio frame's JSON is parsed.

A single Parquet capture is read one row group of ``audio`` at a time, and a row group is
forgotten once no session still to come needs it: memory follows the sessions open at one point
of the file, not the capture. Journals (their audio is base64 in ``content``) and several files
are read whole through :func:`analyzer.reader.read_tables`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.audio.rowgroups import RowAudio, RowGroups
from analyzer.audio.wav import is_wav, parse_wav
from analyzer.events import DECODE_ONLY_COLUMNS, event_table
from analyzer.formats import OPENAI_PCM, AudioFormat, default_formats, provider_of
from analyzer.kinds import Kind
from analyzer.schema import FRAME_SCHEMA, events_are_current, parse_file_metadata

# What is read of every frame besides its samples (``content`` only decodes captures without
# recorded events: format 1, journals).
META_COLUMNS: tuple[str, ...] = (
    "session_id",
    "seq",
    "time_s",
    "direction",
    "event_type",
    "item_id",
    "response_id",
    "audio_bytes",
    "content",
    "events",
)
AUDIO_KINDS = (Kind.USER_AUDIO.value, Kind.REPLY_AUDIO.value)


@dataclass
class SessionChunks:
    """One session's audio chunks (one per audio event, in arrival order) and its events."""

    session_id: str
    facts: Mapping[str, Any]
    start_s: float  # time 0 of the session's timeline (its WebSocket opening)
    events: list[dict[str, Any]]  # every event but the audio chunks, in order
    user: list[bool] = field(default_factory=list)  # per chunk: the user's (else the reply's)
    seq: list[int] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    formats: list[AudioFormat] = field(default_factory=list)
    data: list[memoryview] = field(default_factory=list)  # the samples as sent
    item: list[str | None] = field(default_factory=list)
    reply: list[str | None] = field(default_factory=list)
    samples_dropped: bool = False  # recorded with rt_audio=drop: sizes known, samples not
    warnings: list[str] = field(default_factory=list)


def parse_format_name(name: str | None, default: AudioFormat) -> AudioFormat:
    """ "pcm16/24000" (a CONFIG event's format) as an :class:`AudioFormat`."""
    if not name or "/" not in name:
        return default
    encoding, _, rate = name.rpartition("/")
    return AudioFormat(encoding, int(rate)) if rate.isdigit() else default


def _chunk_format(fmt: AudioFormat, per_ms: float, audio_bytes: Any, audio_ms: Any) -> AudioFormat:
    """The format a chunk was timed in (``per_ms``: ``fmt``'s bytes a millisecond, 0 when size
    is not time): the adapter's ``audio_ms`` says its rate where that differs from the
    session's format (Gemini's per-blob mimeType)."""
    if not (per_ms and audio_bytes and audio_ms) or audio_bytes == audio_ms * per_ms:
        return fmt
    if audio_ms != audio_ms:  # NaN: not timed
        return fmt
    rate = round(audio_bytes * 1000.0 / (audio_ms * fmt.bytes_per_sample))
    return fmt if rate == fmt.sample_rate or rate <= 0 else AudioFormat(fmt.encoding, rate)


def _per_ms(fmt: AudioFormat) -> float:
    return (fmt.bytes_per_second or 0) / 1000.0


def _defaults(facts: Mapping[str, Any]) -> tuple[AudioFormat, AudioFormat]:
    if facts.get("dialect") in ("live", "gemini"):
        return OPENAI_PCM, OPENAI_PCM  # both say their formats in a CONFIG event first
    host, path = facts.get("host"), facts.get("path")
    return default_formats(
        provider_of(
            host if isinstance(host, str) else None, path if isinstance(path, str) else None
        )
    )


def _session(
    session_id: str,
    facts: Mapping[str, Any],
    rows: dict[str, list[Any]],
    blobs: Mapping[int, memoryview | None],
) -> SessionChunks:
    """Build one session from its event rows (``rows``: columns, one session's rows in order,
    with ``row``, the frame's row in the file) and the ``audio`` of its frames by row."""
    first_s = rows["time_s"][0] if rows["time_s"] else 0.0
    start = facts.get("start_s")
    start_s = min(first_s, start) if isinstance(start, int | float) else first_s
    out = SessionChunks(session_id, facts, float(start_s), [])
    fmt_in, fmt_out = _defaults(facts)
    per_ms_in, per_ms_out = _per_ms(fmt_in), _per_ms(fmt_out)
    used: dict[int, int] = {}  # row -> bytes of its audio given to chunks so far
    bad_wav = False
    names = list(rows)
    kinds, row_of, sizes = rows["kind"], rows["row"], rows["audio_bytes"]
    for i, kind in enumerate(kinds):
        if kind not in AUDIO_KINDS:
            event = {name: rows[name][i] for name in names}
            if kind == Kind.CONFIG:
                fmt_in = parse_format_name(event["input_format"], fmt_in)
                fmt_out = parse_format_name(event["output_format"], fmt_out)
                per_ms_in, per_ms_out = _per_ms(fmt_in), _per_ms(fmt_out)
            out.events.append(event)
            continue
        row, size = row_of[i], sizes[i] or 0
        blob = blobs[row]
        if blob is None:
            out.samples_dropped |= size > 0
            continue
        at = used.get(row, 0)
        # one audio event per field, in the frame's order; a lone field takes the whole blob
        data = blob[at : at + size] if (at or size != len(blob)) and size else blob[at:]
        used[row] = at + len(data)
        user = kind == Kind.USER_AUDIO
        if user:
            fmt = _chunk_format(fmt_in, per_ms_in, size, rows["audio_ms"][i])
        else:
            fmt = _chunk_format(fmt_out, per_ms_out, size, rows["audio_ms"][i])
        if len(data) >= 12 and is_wav(data):
            wav = parse_wav(data)
            if wav is None or wav.channels != 1:
                bad_wav = True
            else:
                data, fmt = data[wav.data_start : wav.data_end], wav.format
        if not len(data):
            continue
        out.user.append(user)
        out.seq.append(rows["seq"][i])
        out.time_s.append(rows["time_s"][i])
        out.formats.append(fmt)
        out.data.append(data)
        out.item.append(rows["item_id"][i])
        out.reply.append(None if user else rows["reply_id"][i])
    if out.samples_dropped:
        out.warnings.append(
            f"session {session_id} was recorded without audio samples (rt_audio=drop)."
        )
    if bad_wav:
        out.warnings.append(
            f"session {session_id}: some WAV payloads could not be read and were kept as they are."
        )
    return out


_EVENT_FIELDS = (
    "session_id",
    "seq",
    "time_s",
    "direction",
    "kind",
    "item_id",
    "reply_id",
    "stage",
    "audio_bytes",
    "audio_ms",
    "stream_ms",
    "input_format",
    "output_format",
    "row",
)


def _row_numbers(count: int) -> pa.Array:
    """0 to ``count`` as Arrow int64 (from numpy's buffer: ``pa.array`` of numpy imports
    pandas, which the audio export does not otherwise need)."""
    data = pa.py_buffer(np.arange(count, dtype=np.int64))
    return pa.Array.from_buffers(pa.int64(), count, [None, data])


def _events(frames: pa.Table, facts: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    """The event table of ``frames`` with each event's frame ``row`` (its place in ``frames``)."""
    frames = frames.append_column("row", _row_numbers(frames.num_rows))
    keys = pa.table({"s": pc.cast(frames.column("session_id"), pa.string()), "q": frames["seq"]})
    order = pc.sort_indices(keys, [("s", "ascending"), ("q", "ascending")])
    frames = frames.take(order)
    events = event_table(frames, facts)
    # Both tables are in (session, seq) order: an event's frame is found by bisecting that key.
    sessions = pc.unique(pc.cast(frames.column("session_id"), pa.string()))
    keys = [
        (
            pc.index_in(pc.cast(table["session_id"], pa.string()), value_set=sessions).to_numpy(
                False
            )
        ).astype(np.int64)
        << 32
        | table["seq"].to_numpy()
        for table in (frames, events)
    ]
    at = np.searchsorted(keys[0], keys[1])
    rows = pa.array(frames.column("row").to_numpy()[at])
    events = events.append_column("row", rows)
    return events.select(list(_EVENT_FIELDS))


def _session_bounds(events: pa.Table) -> list[tuple[str, int, int]]:
    """(session id, first row, end row) of each session's events, in table order."""
    values = events.column("session_id").to_numpy(zero_copy_only=False)
    if not len(values):
        return []
    bounds = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
    return [(str(values[lo]), lo, hi) for lo, hi in pairwise(bounds)]


def _rows(events: pa.Table, lo: int, hi: int) -> dict[str, list[Any]]:
    """One session's events as columns of Python values (made one session at a time)."""
    return events.slice(lo, hi - lo).to_pydict()


def _facts_by_session(facts_list: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for entry in facts_list:
        facts.setdefault(str(entry.get("session_id")), {}).update(entry)
    return facts


@dataclass
class Capture:
    """A capture opened for its audio: session ids (in session id order) and warnings."""

    session_ids: list[str]
    warnings: list[str]
    sessions: Iterator[SessionChunks]  # in any order


def _capture_files(paths: Sequence[Path]) -> list[Path]:
    """:func:`analyzer.reader.find_capture_files`, imported only when there is more to find
    than one file: the reader imports pandas (~0.3 s), which the audio does not use."""
    if len(paths) == 1 and paths[0].is_file():
        return [paths[0]]
    from analyzer.reader import find_capture_files

    return find_capture_files(paths)


def open_capture(paths: Sequence[Path], sessions: Collection[str] | None = None) -> Capture:
    """The audio of the captures at ``paths`` (of ``sessions`` only, when given). Raises
    :class:`analyzer.reader.CaptureError`."""
    files = _capture_files(paths)
    if len(files) == 1 and files[0].suffix == ".parquet":
        opened = _open_parquet(files[0], sessions)
        if opened is not None:
            return opened
    from analyzer.reader import read_tables

    table, facts_list, _, warnings = read_tables(list(paths), (*META_COLUMNS, "audio"))
    if sessions is not None:
        table = table.filter(
            pc.is_in(
                pc.cast(table["session_id"], pa.string()), pa.array(list(sessions), pa.string())
            )
        )
    facts = _facts_by_session(facts_list)
    events = _events(table.drop_columns(["audio"]), facts)
    audio = table.column("audio").combine_chunks()
    blobs = RowAudio(audio)
    bounds = _session_bounds(events)
    found = (
        _session(sid, facts.get(sid, {}), _rows(events, lo, hi), blobs) for sid, lo, hi in bounds
    )
    return Capture([sid for sid, _, _ in bounds], warnings, found)


def _open_parquet(path: Path, sessions: Collection[str] | None) -> Capture | None:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError):
        return None
    meta = parse_file_metadata(pf.metadata.metadata)
    names = pf.schema_arrow.names
    if meta is None or "audio" not in names:
        return None
    if not events_are_current(pf.schema_arrow):
        names = [n for n in names if n != "events"]
    table = pf.read(
        columns=[c for c in META_COLUMNS if c in names and c not in DECODE_ONLY_COLUMNS]
    )
    if "events" not in table.column_names or table["events"].null_count:
        # frames without recorded events are decoded: they need the columns left out above
        table = pf.read(columns=[c for c in META_COLUMNS if c in names])
    table = table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in table.column_names]))
    facts = _facts_by_session(meta["sessions"])
    if sessions is not None:
        wanted = pc.is_in(
            pc.cast(table["session_id"], pa.string()), pa.array(list(sessions), pa.string())
        )
        rows = _row_numbers(table.num_rows).filter(wanted)
        table = table.filter(wanted)
    else:
        rows = None
    events = _events(table, facts)
    if rows is not None:  # back to the file's rows
        events = events.set_column(
            events.column_names.index("row"), "row", rows.take(events.column("row"))
        )
    bounds = _session_bounds(events)
    return Capture([sid for sid, _, _ in bounds], [], _by_row_group(pf, events, bounds, facts))


def _by_row_group(
    pf: pq.ParquetFile,
    events: pa.Table,
    bounds: list[tuple[str, int, int]],
    facts: Mapping[str, Mapping[str, Any]],
) -> Iterator[SessionChunks]:
    """Each session as soon as the row groups holding its audio are read."""
    audio = pc.is_in(events.column("kind"), pa.array(AUDIO_KINDS)).to_numpy(False)
    rows = events.column("row").to_numpy()[audio]
    before = np.concatenate([[0], np.cumsum(audio)])  # audio events before each event
    parts = [(int(before[lo]), int(before[hi])) for _, lo, hi in bounds]
    for index, blobs in RowGroups(pf).in_order(rows, parts):
        session_id, lo, hi = bounds[index]
        yield _session(session_id, facts.get(session_id, {}), _rows(events, lo, hi), blobs)
