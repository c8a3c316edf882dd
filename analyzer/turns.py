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

from analyzer.events import session_event_rows
from analyzer.heard import HEARD_COLUMNS, HEARD_FLOAT_COLUMNS, add_heard
from analyzer.kinds import TOKEN_FIELDS, Kind
from analyzer.tool_turns import TOOL_TURN_COLUMNS, add_tool_turn_columns
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
from analyzer.turn_binding import CONTROL_FIELDS, CONTROL_KINDS, latency_ms, walk_turns
from analyzer.turn_reply import reply_audio_stats, reply_facts, silence_timeline, value_at

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
TURN_COLUMNS: tuple[str, ...] = (
    "session_id",
    "index",
    "trigger",  # vad, commit, response.create, or None (a reply we saw no trigger for)
    "user_item_id",
    "user_item_kind",
    "response_id",
    "assistant_item_id",
    "status",
    "status_reason",
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


def _first_times(
    events: pa.Table, kind: Kind, key: str, timed: bool = False
) -> dict[tuple[str, str], float]:
    """Time of the first event of ``kind`` per (session, ``key``); ``timed``: an event's
    ``at_s`` when the adapter timed it earlier than its frame (a final transcript an adapter
    assembles from deltas, once it knows the last one)."""
    mask = pc.and_(pc.equal(events.column("kind"), kind.value), pc.is_valid(events.column(key)))
    selected = events.select(["session_id", key, "time_s"])
    if timed:
        when = pc.coalesce(events.column("at_s"), events.column("time_s"))
        selected = selected.set_column(2, "time_s", when)
    found = selected.filter(mask).group_by(["session_id", key], use_threads=False)
    table = found.aggregate([("time_s", "min")])
    return dict(
        zip(
            zip(table.column("session_id").to_pylist(), table.column(key).to_pylist(), strict=True),
            table.column("time_s_min").to_pylist(),
            strict=True,
        )
    )


def turns_from_events(
    events: pa.Table, items: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Each session's turn rows (dicts of :data:`TURN_COLUMNS`) from the event table (sorted by
    session, then seq) and each session's conversation items
    (:func:`analyzer.conversation.conversations`)."""
    audio = reply_audio_stats(events)
    first_transcript = _first_times(events, Kind.REPLY_TRANSCRIPT_DELTA, "reply_id")
    first_text = _first_times(events, Kind.REPLY_TEXT_DELTA, "reply_id")
    transcribed = _first_times(events, Kind.USER_TRANSCRIPT, "item_id", timed=True)
    transcriptions = item_transcriptions(events)
    out: dict[str, list[dict[str, Any]]] = {}
    kinds = (*CONTROL_KINDS, Kind.REPLY_END)
    for session_id, rows in session_event_rows(events, kinds, CONTROL_FIELDS):
        replies = reply_facts(rows)
        silence = silence_timeline(rows)
        models = model_timeline(rows)
        by_item = {str(item["item_id"]): item for item in items.get(session_id, [])}
        out[session_id] = [
            _turn_row(
                session_id,
                index,
                turn,
                replies.get(turn["response_id"], {}) if turn["response_id"] is not None else {},
                audio.get((session_id, turn["response_id"]), {}),
                by_item,
                value_at(silence, turn["seq"]) if turn["trigger"] == "vad" else _NAN,
                first_transcript,
                first_text,
                transcribed,
                transcription_columns(
                    transcriptions.get((session_id, turn["user_item_id"])),
                    model_at(models, turn["seq"]),
                ),
            )
            for index, turn in enumerate(walk_turns(rows), start=1)
        ]
    add_heard(events, out)
    add_tool_turn_columns(out, events)
    return out


def _turn_row(
    session_id: str,
    index: int,
    turn: dict[str, Any],
    fact: dict[str, Any],
    stats: dict[str, Any],
    by_item: Mapping[str, Mapping[str, Any]],
    silence_ms: float,
    first_transcript: Mapping[tuple[str, str], float],
    first_text: Mapping[tuple[str, str], float],
    transcribed: Mapping[tuple[str, str], float],
    transcription: Mapping[str, Any],
) -> dict[str, Any]:
    def item_value(item_id: Any, column: str) -> Any:
        if not isinstance(item_id, str) or item_id not in by_item:
            return None
        value = by_item[item_id].get(column)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    response_id = turn["response_id"]
    start = turn["turn_start_s"]
    assistant_item_id = fact.get("assistant_item_id")
    if assistant_item_id is None and response_id is not None:
        assistant_item_id = stats.get("item_id")
    status = fact.get("status")
    reason = fact.get("status_reason")
    truncated = bool(item_value(assistant_item_id, "truncated"))
    played = item_value(assistant_item_id, "truncated_audio_end_ms")
    user_item = turn["user_item_id"]
    kind = turn["user_item_kind"] or item_value(user_item, "kind")
    user_transcript = item_value(user_item, "transcript")
    if user_transcript is None and kind == "message":
        user_transcript = item_value(user_item, "text")
    key = (session_id, response_id)
    row: dict[str, Any] = {
        "session_id": session_id,
        "index": index,
        "trigger": turn["trigger"],
        "user_item_id": user_item,
        "user_item_kind": kind,
        "response_id": response_id,
        "assistant_item_id": assistant_item_id,
        "status": status,
        "status_reason": reason,
        "interrupted": (status == "cancelled" and reason in INTERRUPT_REASONS) or truncated,
        "played_ms": float(played) if isinstance(played, int | float) else _NAN,
        "user_transcript": user_transcript,
        "assistant_transcript": item_value(assistant_item_id, "transcript"),
        "assistant_text": item_value(assistant_item_id, "text"),
        "speech_started_s": turn["speech_started_s"],
        "speech_stopped_s": turn["speech_stopped_s"],
        "committed_s": turn["committed_s"],
        "response_create_s": turn["response_create_s"],
        "response_created_s": fact.get("response_created_s", _NAN),
        "first_transcript_s": first_transcript.get(key, _NAN) if response_id else _NAN,
        "first_audio_s": stats.get("first_audio_s", _NAN),
        "first_text_s": first_text.get(key, _NAN) if response_id else _NAN,
        "last_audio_s": stats.get("last_audio_s", _NAN),
        "response_done_s": fact.get("response_done_s", _NAN),
        "transcription_s": transcribed.get((session_id, user_item), _NAN) if user_item else _NAN,
        "turn_start_s": start,
        "silence_duration_ms": silence_ms,
        "user_audio_ms": turn["user_audio_ms"],
        "reply_audio_deltas": float(stats.get("reply_audio_deltas", 0)),
        "reply_audio_bytes": float(stats.get("reply_audio_bytes", 0)),
        "reply_audio_ms": stats.get("reply_audio_ms", _NAN),
        "stream_ratio": stats.get("stream_ratio", _NAN),
        "would_stall": stats.get("would_stall"),
        "stall_count": stats.get("stall_count", _NAN),
        "stall_ms": stats.get("stall_ms", _NAN),
        **{c: fact.get("usage", {}).get(c, _NAN) for c in TOKEN_COLUMNS},
        "function_calls": list(fact.get("function_calls", [])),
        **transcription,
    }
    for column, source in (
        ("latency_response_created_ms", "response_created_s"),
        ("latency_first_transcript_ms", "first_transcript_s"),
        ("latency_first_audio_ms", "first_audio_s"),
        ("latency_first_text_ms", "first_text_s"),
        ("latency_response_done_ms", "response_done_s"),
    ):
        row[column] = latency_ms(row[source], start)
    transcription_from = (
        row["speech_stopped_s"]
        if not math.isnan(row["speech_stopped_s"])
        else (start if turn["trigger"] == "commit" else row["committed_s"])
    )
    row["latency_transcription_ms"] = latency_ms(row["transcription_s"], transcription_from)
    row["latency_transcription_first_delta_ms"] = latency_ms(
        row["transcription_first_delta_s"], transcription_from
    )
    row["perceived_first_audio_ms"] = (
        round(row["latency_first_audio_ms"] + silence_ms, 3) if turn["trigger"] == "vad" else _NAN
    )
    return row


def rows_of(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts (``to_dict("records")``, typed with ``str`` keys)."""
    rows: list[dict[str, Any]] = table.to_dict("records")  # type: ignore[assignment]
    return rows


def turn_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn rows (of one session or many) as a table with :data:`TURN_COLUMNS` and their dtypes."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(TURN_COLUMNS))
    wanted: dict[str, Any] = dict.fromkeys(
        (
            *TIME_COLUMNS,
            *LATENCY_COLUMNS,
            *TOKEN_COLUMNS,
            *TRANSCRIPTION_FLOAT_COLUMNS,
            *HEARD_FLOAT_COLUMNS,
        ),
        float,
    )
    wanted["interrupted"] = bool
    table = table.astype(wanted)
    table["would_stall"] = pd.Series(
        [None if v is None or v is pd.NA else bool(v) for v in table["would_stall"].tolist()],
        index=table.index,
        dtype=object,
    )
    return table


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
