"""Turns, from the normalized events of every session at once: each user input, the reply it
triggered, their timing, streaming health and usage.

Reply audio (most events) is handled in columnar passes; the binding of replies to the inputs
that asked for them walks only the few control events of each session.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.heard import HEARD_COLUMNS, heard_columns, session_voices
from analyzer.kinds import TOKEN_FIELDS, Kind
from analyzer.summaries import missing
from analyzer.tool_turns import TOOL_TURN_COLUMNS, tool_turn_columns
from analyzer.transcription import (
    FLOAT_COLUMNS as TRANSCRIPTION_FLOAT_COLUMNS,
)
from analyzer.transcription import (
    TRANSCRIPTION_COLUMNS,
    item_transcriptions,
    model_at,
    model_timeline,
    transcription_columns,
)
from analyzer.turn_binding import (
    CONTROL_FIELDS,
    CONTROL_KINDS,
    Control,
    latency_ms,
    walk_turns,
)
from analyzer.turn_reply import (
    reply_audio_stats,
    reply_facts,
    reply_usage,
    silence_timeline,
    value_at,
)

if TYPE_CHECKING:
    import pandas as pd

TIME_COLUMNS: tuple[str, ...] = (
    "speech_started_s",
    "speech_stopped_s",
    "committed_s",
    "response_create_s",  # the client's request for this turn's reply
    "response_created_s",
    "first_transcript_s",
    "first_audio_s",
    "first_text_s",
    "last_audio_s",
    "response_done_s",
    "transcription_s",
    "turn_start_s",
)
LATENCY_COLUMNS: tuple[str, ...] = (
    "latency_response_created_ms",
    "latency_first_transcript_ms",
    "latency_first_audio_ms",
    "latency_first_text_ms",
    "latency_response_done_ms",
    "latency_transcription_ms",
    "latency_transcription_first_delta_ms",
)
TOKEN_COLUMNS: tuple[str, ...] = TOKEN_FIELDS
# The turn table's text columns (str or None; its ids and labels first). ``index`` is an int,
# ``interrupted`` a bool, ``would_stall`` a bool or None, ``function_calls`` a list of names;
# every other column a float (NaN where not known).
TURN_ID_COLUMNS: tuple[str, ...] = (
    "trigger",  # vad, commit, response.create, or None (a reply we saw no trigger for)
    "user_item_id",
    "user_item_kind",
    "response_id",
    "assistant_item_id",
    "status",
    "status_reason",
)
TURN_TEXT_COLUMNS: tuple[str, ...] = (
    "session_id",
    *TURN_ID_COLUMNS,
    "user_transcript",
    "assistant_transcript",
    "assistant_text",
    "transcription_model",
    "answer_response_id",  # analyzer.tool_turns
)
_NOT_FLOAT_COLUMNS = ("index", "interrupted", "would_stall", "function_calls")
TURN_COLUMNS: tuple[str, ...] = (
    "session_id",
    "index",
    *TURN_ID_COLUMNS,
    "interrupted",
    "played_ms",
    "user_transcript",
    "assistant_transcript",
    "assistant_text",
    *TIME_COLUMNS,
    *LATENCY_COLUMNS,
    "silence_duration_ms",
    "perceived_first_audio_ms",
    "user_audio_ms",
    "reply_audio_deltas",
    "reply_audio_bytes",
    "reply_audio_ms",
    "stream_ratio",
    "would_stall",
    "stall_count",
    "stall_ms",
    *TOKEN_COLUMNS,
    "function_calls",
    *TRANSCRIPTION_COLUMNS,
    *HEARD_COLUMNS,  # the turn as heard in the audio (analyzer.heard)
    *TOOL_TURN_COLUMNS,  # a tool call's whole wait (analyzer.tool_turns)
)

INTERRUPT_REASONS = frozenset({"turn_detected", "client_cancelled"})
_NAN = float("nan")


def _first_times(events: pa.Table) -> dict[tuple[str, str, str], float]:
    """(kind, session, id) -> time of the first event: the first reply transcript and text delta
    of each reply, and each user item's final transcript (at its ``at_s`` when the adapter timed
    it earlier than its frame: a transcript assembled from deltas, once it knows the last one)."""
    columns = ["kind", "session_id", "item_id", "reply_id", "at_s", "time_s"]
    chosen = events.select(columns).filter(pc.is_in(events.column("kind"), _FIRST_KINDS))
    final = pc.equal(chosen.column("kind"), _FINAL)
    table = pa.table(
        {
            "kind": chosen.column("kind"),
            "session_id": chosen.column("session_id"),
            "key": pc.if_else(final, chosen.column("item_id"), chosen.column("reply_id")),
            "time_s": pc.if_else(
                final, pc.coalesce(chosen.column("at_s"), chosen["time_s"]), chosen["time_s"]
            ),
        }
    )
    found = table.filter(pc.is_valid(table.column("key")))
    firsts = found.group_by(["kind", "session_id", "key"], use_threads=False).aggregate(
        [("time_s", "min")]
    )
    keys = (firsts.column(c).to_pylist() for c in ("kind", "session_id", "key"))
    return dict(zip(zip(*keys, strict=True), firsts.column("time_s_min").to_pylist(), strict=True))


_TRANSCRIPT, _TEXT, _FINAL = (
    Kind.REPLY_TRANSCRIPT_DELTA.value,
    Kind.REPLY_TEXT_DELTA.value,
    Kind.USER_TRANSCRIPT.value,
)
_FIRST_KINDS = pa.array([_TRANSCRIPT, _TEXT, _FINAL])


def turns_from_events(
    events: pa.Table, items: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Each session's turn rows (dicts of :data:`TURN_COLUMNS`) from the event table (sorted by
    session, then seq) and each session's conversation items
    (:func:`analyzer.conversation.conversations`)."""
    control = Control.of(events, (*CONTROL_KINDS, Kind.REPLY_END, Kind.TOOL_CALL), CONTROL_FIELDS)
    replies = reply_facts(control, reply_usage(events))
    walked: list[tuple[str, int, dict[str, Any]]] = []  # (session, index, turn)
    silence: list[float] = []
    models: list[str | None] = []
    for session_id, lo, hi in control.sessions:
        silences = silence_timeline(control, lo, hi)
        session_models = model_timeline(control, lo, hi)
        for index, turn in enumerate(walk_turns(control, lo, hi), start=1):
            walked.append((session_id, index, turn))
            silence.append(value_at(silences, turn["seq"]) if turn["trigger"] == "vad" else _NAN)
            models.append(model_at(session_models, turn["seq"]))
    columns = _turn_columns(events, walked, replies, items, silence, models)
    columns.update(heard_columns(columns, session_voices(events)))
    columns.update(tool_turn_columns(control, columns))
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    out: dict[str, list[dict[str, Any]]] = {session_id: [] for session_id, _, _ in control.sessions}
    for row in rows:
        out.setdefault(row["session_id"], []).append(row)
    return out


def _item_values(
    items: Sequence[Mapping[str, Mapping[str, Any]]], ids: Sequence[Any], column: str
) -> list[Any]:
    """``column`` of each turn's item (None where the turn has none, or the value is NaN)."""

    def value(by_item: Mapping[str, Mapping[str, Any]], item_id: Any) -> Any:
        if not isinstance(item_id, str) or item_id not in by_item:
            return None
        found = by_item[item_id].get(column)
        return None if found is None or (isinstance(found, float) and math.isnan(found)) else found

    return [value(by_item, item_id) for by_item, item_id in zip(items, ids, strict=True)]


def _turn_columns(
    events: pa.Table,
    walked: Sequence[tuple[str, int, dict[str, Any]]],
    replies: Mapping[Any, dict[str, Any]],
    items: Mapping[str, Sequence[Mapping[str, Any]]],
    silence: Sequence[float],
    models: Sequence[str | None],
) -> dict[str, list[Any]]:
    """The turn table's columns (but heard and tool columns) of every walked turn of a window."""
    audio = reply_audio_stats(events)
    first = _first_times(events)
    transcriptions = item_transcriptions(events)
    by_session = {
        sid: {str(item["item_id"]): item for item in items.get(sid, [])}
        for sid in dict.fromkeys(w[0] for w in walked)
    }
    sids = [w[0] for w in walked]
    turns = [w[2] for w in walked]
    by_item = [by_session[sid] for sid in sids]
    response_ids = [t["response_id"] for t in turns]
    user_items = [t["user_item_id"] for t in turns]
    keys = list(zip(sids, response_ids, strict=True))
    facts = [replies.get(k, {}) if k[1] is not None else {} for k in keys]
    stats = [audio.get(k, {}) for k in keys]
    assistant = [
        f.get("assistant_item_id")
        if f.get("assistant_item_id") is not None or r is None
        else s.get("item_id")
        for f, s, r in zip(facts, stats, response_ids, strict=True)
    ]
    status = [f.get("status") for f in facts]
    reason = [f.get("status_reason") for f in facts]
    truncated = _item_values(by_item, assistant, "truncated")
    played = _item_values(by_item, assistant, "truncated_audio_end_ms")
    kinds = [
        t["user_item_kind"] or k
        for t, k in zip(turns, _item_values(by_item, user_items, "kind"), strict=True)
    ]
    texts = _item_values(by_item, user_items, "text")
    user_transcripts = [
        text if said is None and kind == "message" else said
        for said, kind, text in zip(
            _item_values(by_item, user_items, "transcript"), kinds, texts, strict=True
        )
    ]
    starts = [t["turn_start_s"] for t in turns]
    columns: dict[str, list[Any]] = {
        "session_id": sids,
        "index": [w[1] for w in walked],
        "trigger": [t["trigger"] for t in turns],
        "user_item_id": user_items,
        "user_item_kind": kinds,
        "response_id": response_ids,
        "assistant_item_id": assistant,
        "status": status,
        "status_reason": reason,
        "interrupted": [
            (s == "cancelled" and r in INTERRUPT_REASONS) or bool(cut)
            for s, r, cut in zip(status, reason, truncated, strict=True)
        ],
        "played_ms": [float(p) if isinstance(p, int | float) else _NAN for p in played],
        "user_transcript": user_transcripts,
        "assistant_transcript": _item_values(by_item, assistant, "transcript"),
        "assistant_text": _item_values(by_item, assistant, "text"),
        **{c: [t[c] for t in turns] for c in _WALKED_TIMES[:4]},
        "response_created_s": [f.get("response_created_s", _NAN) for f in facts],
        "first_transcript_s": [first.get((_TRANSCRIPT, *k), _NAN) if k[1] else _NAN for k in keys],
        "first_audio_s": [s.get("first_audio_s", _NAN) for s in stats],
        "first_text_s": [first.get((_TEXT, *k), _NAN) if k[1] else _NAN for k in keys],
        "last_audio_s": [s.get("last_audio_s", _NAN) for s in stats],
        "response_done_s": [f.get("response_done_s", _NAN) for f in facts],
        "transcription_s": [
            first.get((_FINAL, sid, item), _NAN) if item else _NAN
            for sid, item in zip(sids, user_items, strict=True)
        ],
        "turn_start_s": starts,
        "silence_duration_ms": list(silence),
        "user_audio_ms": [t["user_audio_ms"] for t in turns],
        "reply_audio_deltas": [float(s.get("reply_audio_deltas", 0)) for s in stats],
        "reply_audio_bytes": [float(s.get("reply_audio_bytes", 0)) for s in stats],
        **{c: [s.get(c, _NAN) for s in stats] for c in ("reply_audio_ms", "stream_ratio")},
        "would_stall": [s.get("would_stall") for s in stats],
        **{c: [s.get(c, _NAN) for s in stats] for c in ("stall_count", "stall_ms")},
        **{c: [f.get("usage", {}).get(c, _NAN) for f in facts] for c in TOKEN_COLUMNS},
        "function_calls": [list(f.get("function_calls", [])) for f in facts],
    }
    transcription = [
        transcription_columns(transcriptions.get((sid, item)), model)
        for sid, item, model in zip(sids, user_items, models, strict=True)
    ]
    for column in (*TRANSCRIPTION_FLOAT_COLUMNS, "transcription_model"):
        columns[column] = [t[column] for t in transcription]
    for column, source in _LATENCIES:
        columns[column] = list(map(latency_ms, columns[source], starts))
    stopped, committed = columns["speech_stopped_s"], columns["committed_s"]
    triggers = columns["trigger"]
    since = [
        stop if not math.isnan(stop) else (start if trigger == "commit" else commit)
        for stop, start, trigger, commit in zip(stopped, starts, triggers, committed, strict=True)
    ]
    # An end of speech at the very moment of the final transcript was known from the transcript
    # itself (Gemini says nothing else with automatic activity detection): its latency is not
    # measurable, rather than 0.
    since = [
        _NAN if at == final else at
        for at, final in zip(since, columns["transcription_s"], strict=True)
    ]
    columns["latency_transcription_ms"] = list(map(latency_ms, columns["transcription_s"], since))
    columns["latency_transcription_first_delta_ms"] = list(
        map(latency_ms, columns["transcription_first_delta_s"], since)
    )
    columns["perceived_first_audio_ms"] = [
        round(first + quiet, 3) if trigger == "vad" else _NAN
        for first, quiet, trigger in zip(
            columns["latency_first_audio_ms"], silence, triggers, strict=True
        )
    ]
    return columns


# What the walk gives of each turn's times, and the latencies from its start.
_WALKED_TIMES = ("speech_started_s", "speech_stopped_s", "committed_s", "response_create_s")
_LATENCIES = (
    ("latency_response_created_ms", "response_created_s"),
    ("latency_first_transcript_ms", "first_transcript_s"),
    ("latency_first_audio_ms", "first_audio_s"),
    ("latency_first_text_ms", "first_text_s"),
    ("latency_response_done_ms", "response_done_s"),
)


def rows_of(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts (``to_dict("records")``, typed with ``str`` keys)."""
    rows: list[dict[str, Any]] = table.to_dict("records")  # type: ignore[assignment]
    return rows


def turn_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn rows (of one session or many) as a table with :data:`TURN_COLUMNS`, each column of
    its one type (:data:`TURN_TEXT_COLUMNS`), whichever values the rows happen to hold: a
    column inferred was pandas' string type or objects depending on a session's missing
    values. Built column by column (one ``astype`` per column cost ~20 ms a table)."""
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    for name in TURN_COLUMNS:
        values = [row.get(name) for row in rows]
        if name == "index":
            columns[name] = np.array(values, dtype=np.int64)
        elif name == "interrupted":
            columns[name] = np.array([bool(v) for v in values], dtype=bool)
        elif name == "would_stall":
            columns[name] = _objects([None if missing(v) else bool(v) for v in values])
        elif name in TURN_TEXT_COLUMNS or name == "function_calls":
            columns[name] = _objects(values)
        else:
            columns[name] = np.array([math.nan if missing(v) else v for v in values], float)
    return pd.DataFrame(columns)


def _objects(values: list[Any]) -> Any:
    """A column of Python objects (pandas infers its string type from an object array)."""
    import numpy as np
    import pandas as pd

    column = np.empty(len(values), dtype=object)  # not np.array: lists would become a 2-D array
    column[:] = values
    return pd.Series(column, dtype=object)


def build_turns(
    session_frames: pd.DataFrame,
    session_facts: Mapping[Any, Any] | None = None,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The turn table of one session's frames (pandas in, pandas out: notebooks and Spark's
    per-session entry point). ``session_facts`` is the session's row of ``Capture.sessions``
    (host and path pick the provider's audio defaults)."""
    from analyzer.conversation import conversations
    from analyzer.events import event_table, frames_to_arrow

    if session_frames.empty:
        return turn_table([])
    frames = frames_to_arrow(session_frames.sort_values("seq", kind="stable"))
    session_id = str(session_frames["session_id"].iloc[0])
    facts = dict(session_facts) if session_facts is not None else {}
    events = event_table(frames, {session_id: facts})
    found = conversations(events)
    item_rows = {sid: c.item_rows for sid, c in found.items()}
    if items is not None:
        item_rows[session_id] = rows_of(items)
    return turn_table(turns_from_events(events, item_rows).get(session_id, []))
