"""The normalized event table of a capture, whatever version of the recorder wrote it.

Captures written since format version 2 carry each frame's events (the ``events`` column, written
by the recorder through the protocol's adapter): they are flattened, no JSON is parsed. Older
captures and journals are decoded here by the same adapter, frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.jsonio import loads_json
from analyzer.protocols import Event, Frame, adapter_for
from analyzer.schema import EVENT_STRUCT
from analyzer.voice_batch import BatchVoices

# The frame columns every event row carries.
FRAME_KEYS: tuple[str, ...] = ("session_id", "seq", "time_s", "direction")
EVENT_TABLE_SCHEMA = pa.schema(
    [
        pa.field("session_id", pa.string()),
        pa.field("seq", pa.int64()),
        pa.field("time_s", pa.float64()),
        pa.field("direction", pa.string()),
        *EVENT_STRUCT,
    ]
)
# What decoding a capture without recorded events reads of each frame.
DECODE_COLUMNS: tuple[str, ...] = (
    *FRAME_KEYS,
    "event_type",
    "item_id",
    "response_id",
    "audio_bytes",
    "content",
)
# Columns only decoding events needs: not read from captures that carry their events. The
# decoded ``audio`` is where the voice detector finds speech (VOICE_START/END): read only to
# decode; without it, an old capture's turns lack the speech heard in the audio.
DECODE_ONLY_COLUMNS: tuple[str, ...] = ("item_id", "response_id", "content", "audio")


def event_table(frames: pa.Table, sessions: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    """Every event of ``frames`` (sorted by session, then seq), one row each, in frame order.
    ``sessions`` maps a session id to its facts (which pick the adapter of an old capture).
    Frames without recorded events (null ``events``: an earlier format, a journal) are
    decoded; a directory may hold both kinds of file."""
    if "events" not in frames.column_names:
        return _decode(frames, sessions)
    recorded = frames.column("events").is_valid()
    if recorded.null_count == 0 and pc.all(recorded).as_py():
        return _flatten(frames)
    if not pc.any(recorded).as_py():
        return _decode(frames, sessions)
    both = pa.concat_tables(
        [_flatten(frames.filter(recorded)), _decode(frames.filter(pc.invert(recorded)), sessions)]
    )
    return both.take(pc.sort_indices(both, [("session_id", "ascending"), ("seq", "ascending")]))


def _plain_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.cast(pa.string())


def _flatten(frames: pa.Table) -> pa.Table:
    lists = frames.column("events")  # chunk by chunk: combining would copy every field
    parents = pc.list_parent_indices(lists)
    flat = pc.list_flatten(lists)
    fields = [
        pa.chunked_array([_field(c, n, f.type) for c in flat.chunks], f.type) for n, f in _FIELDS
    ]
    return pa.Table.from_arrays(
        [
            _plain_string(frames.column("session_id")).take(parents),
            frames.column("seq").take(parents),
            frames.column("time_s").take(parents),
            _plain_string(frames.column("direction")).take(parents),
            *fields,
        ],
        schema=EVENT_TABLE_SCHEMA,
    )


_FIELDS = [(f.name, f) for f in EVENT_STRUCT]


def _field(events: pa.StructArray, name: str, kind: pa.DataType) -> pa.Array:
    """A field of recorded events; null where they were recorded before it existed (an optional
    field, see ``events_are_current``)."""
    if events.type.get_field_index(name) < 0:
        return pa.nulls(len(events), kind)
    return events.field(name)


def decode_frames(frames: pa.Table, sessions: Mapping[str, Mapping[str, Any]]) -> list[list[Event]]:
    """Each frame's events, decoded by its session's adapter (frames sorted by session, seq)."""
    out: list[list[Event]] = []
    rows = frames.num_rows
    columns = [
        _pylist(frames.column(c)) if c in frames.column_names else [None] * rows
        for c in (*DECODE_COLUMNS, "audio")
    ]
    current: str | None = None
    decoder: Any = None
    needs_event: Any = None
    voices = BatchVoices()
    for i, (
        session_id,
        seq,
        time_s,
        direction,
        event_type,
        item_id,
        response_id,
        size,
        content,
        audio,
    ) in enumerate(zip(*columns, strict=True)):
        if session_id != current or decoder is None:
            _add_voices(out, voices)
            current = session_id
            facts = sessions.get(session_id, {})
            adapter = adapter_for(facts)
            decoder, needs_event = adapter.decoder(facts), adapter.needs_event
            voices = BatchVoices()
        event: Any = {}
        if content is not None and needs_event(event_type):
            try:
                event = loads_json(content)
            except ValueError:
                event = {}
            if not isinstance(event, dict):
                event = {}
        frame = Frame(seq, time_s, direction, event_type, item_id, response_id, size, event)
        events = decoder.feed(frame)
        voices.feed_row(i, time_s, events, audio)
        out.append(events)
    _add_voices(out, voices)
    return out


def _add_voices(per_frame: list[list[Event]], voices: BatchVoices) -> None:
    """A session's speech found in its audio (VOICE_START/END), after each frame's own events
    in the order the recorder's writer finds it (its voice pass, run at once per stream)."""
    for row, _, _, event in sorted(voices.events(), key=lambda found: found[:3]):
        per_frame[row].append(event)


def _decode(frames: pa.Table, sessions: Mapping[str, Mapping[str, Any]]) -> pa.Table:
    per_frame = decode_frames(frames, sessions)
    # As a capture's recorded events (Arrow converts the dicts), flattened as those are.
    keys = frames.select(list(FRAME_KEYS))
    return _flatten(keys.append_column("events", events_column(per_frame)))


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    """A column's values; a dictionary-encoded one (session ids, event types) through its
    dictionary, each distinct string made once (pyarrow's own conversion: ~40x slower)."""
    if not pa.types.is_dictionary(column.type):
        return column.to_pylist()
    out: list[Any] = []
    for chunk in column.chunks:
        values = [*chunk.dictionary.to_pylist(), None]
        indices = chunk.indices.fill_null(len(values) - 1).to_pylist()
        out.extend([values[i] for i in indices])
    return out


def events_column(per_frame: list[list[Event]]) -> pa.Array:
    """Per-frame events as the capture's ``events`` column."""
    return pa.array(per_frame, type=pa.list_(EVENT_STRUCT))


def of_kinds(events: pa.Table, kinds: Sequence[str]) -> pa.Table:
    """The events of these kinds."""
    return events.filter(pc.is_in(events.column("kind"), pa.array(list(kinds), pa.string())))


def session_event_rows(
    events: pa.Table, kinds: Sequence[str], fields: Sequence[str]
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(session id, its events of ``kinds`` as dicts of ``fields``), session by session in
    table order: what the per-session folds (conversation, turn binding) walk, never the
    audio chunks."""
    wanted = of_kinds(events.select(["session_id", "kind", *fields]), kinds)
    columns = wanted.to_pydict()
    names = list(columns)
    rows = [dict(zip(names, row)) for row in zip(*columns.values())]  # noqa: B905 (same lengths)
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end]["session_id"] != rows[start]["session_id"]:
            yield rows[start]["session_id"], rows[start:end]
            start = end


def frames_to_arrow(frames: Any) -> pa.Table:
    """A pandas table of frames (notebooks, Spark, tests) as Arrow, for :func:`event_table`."""
    import pandas as pd

    assert isinstance(frames, pd.DataFrame)
    plain = frames.drop(columns=["events"], errors="ignore").reset_index(drop=True)
    table = pa.Table.from_pandas(plain, preserve_index=False)
    if "events" not in frames.columns:
        return table
    # Recorded events back as they were: not through from_pandas, which would turn NaN into
    # null. Kept rather than decoded again: the speech found in the audio (VOICE_START/END)
    # was found before the samples could be dropped, and the audio is not read here.
    recorded = frames["events"].tolist()
    return table.append_column(
        "events", pa.array(recorded, type=pa.list_(EVENT_STRUCT), from_pandas=False)
    )
