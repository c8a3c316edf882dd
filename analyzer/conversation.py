"""One session's conversation: its items in order, what was said, and the server's errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer.frameview import FrameView
from analyzer.lazy import LazyModule
from analyzer.protocol import (
    AUDIO_TRANSCRIPT_DELTA_EVENTS,
    AUDIO_TRANSCRIPT_DONE_EVENTS,
    CLIENT_EVENTS,
    ITEM_CREATED_EVENTS,
    TEXT_DELTA_EVENTS,
    TEXT_DONE_EVENTS,
    parse_event,
)

if TYPE_CHECKING:
    import pandas as pd
pd = LazyModule("pandas")

# Every event type of the beta and GA protocols (client and server); anything else is counted
# as unknown (a provider extension or a newer protocol), never dropped silently.
KNOWN_CLIENT_EVENTS = CLIENT_EVENTS
KNOWN_SERVER_EVENTS = frozenset(
    {
        "error",
        "session.created",
        "session.updated",
        "transcription_session.created",
        "transcription_session.updated",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.text.delta",
        "response.text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.audio.delta",
        "response.audio.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "rate_limits.updated",
    }
)
KNOWN_EVENTS = KNOWN_CLIENT_EVENTS | KNOWN_SERVER_EVENTS

TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"
TRANSCRIPTION_DELTA = "conversation.item.input_audio_transcription.delta"
TRANSCRIPTION_FAILED = "conversation.item.input_audio_transcription.failed"
OUTPUT_ITEM_EVENTS = frozenset({"response.output_item.added", "response.output_item.done"})
FUNCTION_ARGS_DONE = "response.function_call_arguments.done"

# Events that say something about items; only these are parsed (never the audio deltas).
_ITEM_EVENTS = (
    ITEM_CREATED_EVENTS
    | OUTPUT_ITEM_EVENTS
    | AUDIO_TRANSCRIPT_DONE_EVENTS
    | TEXT_DONE_EVENTS
    | {
        "input_audio_buffer.committed",
        "conversation.item.create",
        "conversation.item.truncate",
        "conversation.item.truncated",
        "conversation.item.deleted",
        TRANSCRIPTION_COMPLETED,
        TRANSCRIPTION_FAILED,
        FUNCTION_ARGS_DONE,
        "response.done",
    }
)
_DELTA_EVENTS = AUDIO_TRANSCRIPT_DELTA_EVENTS | TEXT_DELTA_EVENTS | {TRANSCRIPTION_DELTA}

ITEM_COLUMNS: tuple[str, ...] = (
    "session_id",
    "position",  # 1-based place in the conversation
    "item_id",
    "previous_item_id",
    "role",  # user, assistant, system, or None (function calls and outputs)
    "kind",  # message, function_call, function_call_output, ...
    "status",
    "transcript",  # user: input transcription; assistant: audio transcript
    "text",  # typed text (input_text, output text)
    "name",  # function name (function_call)
    "call_id",
    "arguments",
    "output",  # function_call_output
    "response_id",  # the response that produced it (assistant items)
    "truncated",
    "truncated_audio_end_ms",
    "transcription_error",
    "deleted",
    "first_seen_s",
    "from_client",  # True when only the client's create was seen (no server confirmation)
)
ERROR_COLUMNS: tuple[str, ...] = (
    "session_id",
    "seq",
    "time_s",
    "type",
    "code",
    "message",
    "param",
    "client_event_id",
)


@dataclass
class Conversation:
    """One session's conversation: its items in order and the server's errors, as rows (dicts
    of :data:`ITEM_COLUMNS` / :data:`ERROR_COLUMNS`; ``items`` and ``errors`` give them as
    tables), event types the protocol does not define and frames that could not be understood,
    with counts. Rows, because a report of thousands of sessions cannot afford a pandas table
    per session; the tables are built when asked for."""

    item_rows: list[dict[str, Any]] = field(default_factory=list)
    error_rows: list[dict[str, Any]] = field(default_factory=list)
    unknown_events: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)

    @cached_property
    def items(self) -> pd.DataFrame:
        return pd.DataFrame(self.item_rows, columns=list(ITEM_COLUMNS))

    @cached_property
    def errors(self) -> pd.DataFrame:
        return pd.DataFrame(self.error_rows, columns=list(ERROR_COLUMNS))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _item_texts(item: dict[str, Any]) -> tuple[str | None, str | None]:
    """(transcript, text) found in an item's content parts."""
    transcripts: list[str] = []
    texts: list[str] = []
    content = item.get("content")
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("transcript"), str):
            transcripts.append(part["transcript"])
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
    return ("".join(transcripts) or None, "".join(texts) or None)


# An item's string fields: the row's column, and whether an empty string is left out.
_ITEM_FIELDS: dict[str, tuple[str, bool]] = {
    "role": ("role", True),
    "type": ("kind", True),
    "status": ("status", True),
    "name": ("name", False),
    "call_id": ("call_id", False),
    "arguments": ("arguments", False),
    "output": ("output", False),
}


class _Items:
    """Items by id, and their order from the ``previous_item_id`` chain."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.placed: set[str] = set()

    def get(self, item_id: str, time_s: float) -> dict[str, Any]:
        if item_id not in self.by_id:
            self.by_id[item_id] = {"item_id": item_id, "first_seen_s": time_s}
            self.order.append(item_id)
        return self.by_id[item_id]

    def place(self, item_id: str, previous_item_id: str | None) -> None:
        """Put ``item_id`` right after its previous item, once. Items whose previous item is
        null or unknown keep their arrival order: some compatible servers always send null, so
        null is not trusted to mean "first"."""
        if item_id in self.placed:
            return
        self.placed.add(item_id)
        self.by_id[item_id]["previous_item_id"] = previous_item_id
        if (
            previous_item_id is None
            or previous_item_id == item_id  # a hostile or broken server: keep arrival order
            or previous_item_id not in self.by_id
        ):
            return
        self.order.remove(item_id)
        self.order.insert(self.order.index(previous_item_id) + 1, item_id)

    def update_from_item(self, row: dict[str, Any], item: dict[str, Any]) -> None:
        # Over the item's few keys (this runs ~30 times a session, on items of ~6 keys).
        for key, value in item.items():
            target = _ITEM_FIELDS.get(key)
            if target is not None and isinstance(value, str) and (value or not target[1]):
                row[target[0]] = value
        if not item.get("content"):
            return
        transcript, text = _item_texts(item)
        if transcript and not row.get("transcript"):
            row["transcript"] = transcript
        if text and not row.get("text"):
            row["text"] = text


def _ordered_events(frames: pd.DataFrame, types: Iterable[str]) -> pd.DataFrame:
    mask = frames["event_type"].isin(list(types))
    return frames.loc[mask, ["seq", "time_s", "direction", "event_type", "item_id", "content"]]


def conversation_items(session_frames: pd.DataFrame) -> pd.DataFrame:
    """The session's items in conversation order (columns :data:`ITEM_COLUMNS`)."""
    events = _ordered_events(session_frames, _ITEM_EVENTS)
    mask = session_frames["event_type"].isin(list(_DELTA_EVENTS)) & session_frames["direction"].eq(
        "server"
    )
    deltas = session_frames.loc[mask, ["time_s", "event_type", "item_id", "content"]]
    rows = _item_rows(
        _session_id(session_frames),
        events.itertuples(index=False, name=None),
        deltas.itertuples(index=False, name=None),
    )
    return Conversation(item_rows=rows).items


def _item_rows(
    session_id: str | None,
    events: Iterable[tuple[Any, ...]],
    deltas: Iterable[tuple[Any, ...]],
) -> list[dict[str, Any]]:
    """Items from a session's item events (seq, time_s, direction, event_type, item_id,
    content) and its server's text and transcript deltas (time_s, event_type, item_id,
    content), both in arrival order."""
    items = _Items()
    client_items: dict[str, dict[str, Any]] = {}
    transcript_done: set[str] = set()
    text_done: set[str] = set()
    for seq, time_s, direction, event_type, item_id, content in events:
        del seq
        event = parse_event(content)
        if event_type == "conversation.item.create" and direction == "client":
            item = event.get("item")
            if isinstance(item, dict) and _str(item.get("id")):
                client_items[item["id"]] = {"item": item, "time_s": time_s, "event": event}
            continue
        if direction != "server":
            if event_type == "conversation.item.truncate" and _str(item_id):
                row = items.get(item_id, time_s)
                row["truncated"] = True
                if isinstance(event.get("audio_end_ms"), int | float):
                    row["truncated_audio_end_ms"] = event["audio_end_ms"]
            continue
        if event_type == "response.done":
            _update_from_response(items, event, time_s)
            continue
        item = event.get("item") if isinstance(event.get("item"), dict) else None
        item_id = _str(item_id) or (_str(item.get("id")) if item else None)
        if item_id is None:
            continue
        row = items.get(item_id, time_s)
        if event_type == "input_audio_buffer.committed":
            row.setdefault("role", "user")
            row.setdefault("kind", "message")
            items.place(item_id, _str(event.get("previous_item_id")))
        elif event_type in ITEM_CREATED_EVENTS and item is not None:
            items.update_from_item(row, item)
            if "previous_item_id" in event:
                items.place(item_id, _str(event.get("previous_item_id")))
        elif event_type in OUTPUT_ITEM_EVENTS and item is not None:
            items.update_from_item(row, item)
            row.setdefault("response_id", _str(event.get("response_id")))
        elif event_type in AUDIO_TRANSCRIPT_DONE_EVENTS:
            if isinstance(event.get("transcript"), str):
                row["transcript"] = (
                    row.get("transcript", "") if item_id in transcript_done else ""
                ) + event["transcript"]
                transcript_done.add(item_id)
            row.setdefault("response_id", _str(event.get("response_id")))
        elif event_type in TEXT_DONE_EVENTS:
            if isinstance(event.get("text"), str):
                row["text"] = (row.get("text", "") if item_id in text_done else "") + event["text"]
                text_done.add(item_id)
            row.setdefault("response_id", _str(event.get("response_id")))
        elif event_type == TRANSCRIPTION_COMPLETED:
            if isinstance(event.get("transcript"), str):
                row["transcript"] = event["transcript"]
                transcript_done.add(item_id)
        elif event_type == TRANSCRIPTION_FAILED:
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            row["transcription_error"] = message if isinstance(message, str) else "failed"
        elif event_type == FUNCTION_ARGS_DONE:
            row.setdefault("kind", "function_call")
            for key in ("name", "call_id", "arguments"):
                if isinstance(event.get(key), str):
                    row[key] = event[key]
        elif event_type == "conversation.item.truncated":
            row["truncated"] = True
            if isinstance(event.get("audio_end_ms"), int | float):
                row.setdefault("truncated_audio_end_ms", event["audio_end_ms"])
        elif event_type == "conversation.item.deleted":
            row["deleted"] = True
    for item_id, created in client_items.items():
        if item_id not in items.by_id:
            row = items.get(item_id, created["time_s"])
            items.update_from_item(row, created["item"])
            row["from_client"] = True
            items.place(item_id, _str(created["event"].get("previous_item_id")))
    _fill_from_deltas(deltas, items, transcript_done, text_done)
    rows = []
    for position, item_id in enumerate(items.order, start=1):
        row = items.by_id[item_id]
        rows.append(
            {
                **dict(zip(ITEM_COLUMNS, map(row.get, ITEM_COLUMNS), strict=True)),
                "session_id": session_id,
                "position": position,
                "truncated": bool(row.get("truncated", False)),
                "deleted": bool(row.get("deleted", False)),
                "from_client": bool(row.get("from_client", False)),
            }
        )
    return rows


def _update_from_response(items: _Items, event: dict[str, Any], time_s: float) -> None:
    """A response's final word on its output items: status, and content if none came yet."""
    response = event.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("output"), list):
        return
    for item in response["output"]:
        if isinstance(item, dict) and _str(item.get("id")):
            row = items.get(item["id"], time_s)
            items.update_from_item(row, item)
            row.setdefault("response_id", _str(response.get("id")))


def _fill_from_deltas(
    deltas: Iterable[tuple[Any, ...]],
    items: _Items,
    transcript_done: set[str],
    text_done: set[str],
) -> None:
    """Transcripts and texts of items whose ``.done`` never came (interrupted, cut capture),
    joined from their deltas (server rows: time_s, event_type, item_id, content). Only those
    items' deltas are parsed."""
    joined: dict[tuple[str, bool], list[str]] = {}
    first_seen: dict[str, float] = {}
    for time_s, event_type, item_id, content in deltas:
        is_text = event_type in TEXT_DELTA_EVENTS
        if item_id in (text_done if is_text else transcript_done) or not _str(item_id):
            continue
        delta = parse_event(content).get("delta")
        if isinstance(delta, str):
            joined.setdefault((item_id, is_text), []).append(delta)
            first_seen.setdefault(item_id, time_s)
    for (item_id, text), parts in joined.items():
        row = items.get(item_id, first_seen[item_id])
        row["text" if text else "transcript"] = "".join(parts)


def server_errors(session_frames: pd.DataFrame) -> pd.DataFrame:
    """The ``error`` events the server sent (columns :data:`ERROR_COLUMNS`)."""
    mask = session_frames["event_type"].eq("error") & session_frames["direction"].eq("server")
    rows = session_frames.loc[mask, ["seq", "time_s", "content"]].itertuples(index=False, name=None)
    return Conversation(error_rows=_error_rows(_session_id(session_frames), rows)).errors


def _error_rows(session_id: str | None, rows: Iterable[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Errors from a session's server ``error`` rows (seq, time_s, content)."""
    table = []
    for seq, time_s, content in rows:
        error = parse_event(content).get("error")
        error = error if isinstance(error, dict) else {}
        table.append(
            {
                "session_id": session_id,
                "seq": int(seq),
                "time_s": float(time_s),
                "type": _str(error.get("type")),
                "code": _str(error.get("code")),
                "message": _str(error.get("message")),
                "param": _str(error.get("param")),
                "client_event_id": _str(error.get("event_id")),
            }
        )
    return table


def unknown_event_counts(session_frames: pd.DataFrame) -> dict[str, int]:
    """Event types the beta and GA protocols do not define, with how often they came."""
    types = session_frames["event_type"].dropna()
    counts = types[~types.isin(list(KNOWN_EVENTS))].value_counts()
    return {str(k): int(v) for k, v in counts.sort_index().items()}


def problem_counts(session_frames: pd.DataFrame) -> dict[str, int]:
    """Frames the recorder could not fully understand (binary, not JSON...), by reason."""
    if "problem" not in session_frames:
        return {}
    counts = session_frames["problem"].dropna().value_counts()
    return {str(k): int(v) for k, v in counts.sort_index().items()}


def build_conversation(session_frames: pd.DataFrame) -> Conversation:
    """Items, errors, unknown event types and problem frames of one session."""
    if session_frames.empty:
        return Conversation()
    frames = session_frames.reset_index(drop=True)
    codes = np.zeros(len(frames), dtype=np.intp)
    return build_conversations(frames, codes, [str(_session_id(frames))])[0]


def _counts_by_session(view: FrameView, mask: np.ndarray, column: str) -> dict[int, dict[str, int]]:
    """``value_counts`` of ``column`` (sorted by value) per session, over the frames in ``mask``."""
    out: dict[int, dict[str, int]] = {}
    if not mask.any():
        return out
    counts = (
        pd.Series(1, index=[view.codes[mask], view.column(column)[mask]])
        .groupby(level=[0, 1], sort=False)
        .size()
    )
    found: dict[int, list[tuple[str, int]]] = {}
    by_key: dict[Any, Any] = counts.to_dict()
    for key, count in by_key.items():
        found.setdefault(int(key[0]), []).append((str(key[1]), int(count)))
    for code, pairs in found.items():
        out[code] = dict(sorted(pairs))
    return out


def build_conversations(
    frames: pd.DataFrame | FrameView, codes: np.ndarray, session_ids: Sequence[str]
) -> dict[int, Conversation]:
    """:func:`build_conversation` of every session in ``frames`` (sorted by session, then seq),
    each pandas operation done once for all: ``codes[i]`` numbers frame i's session, whose id
    is ``session_ids[code]``. Sessions without frames are left out."""
    view = frames if isinstance(frames, FrameView) else FrameView(frames, codes)
    events = view.rows_by_session(
        view.of_types(_ITEM_EVENTS),
        ("seq", "time_s", "direction", "event_type", "item_id", "content"),
    )
    deltas = view.rows_by_session(
        view.of_types(_DELTA_EVENTS) & view.server, ("time_s", "event_type", "item_id", "content")
    )
    errors = view.rows_by_session(
        view.of_types({"error"}) & view.server, ("seq", "time_s", "content")
    )
    known = view.of_types(KNOWN_EVENTS) | ~view.present("event_type")
    unknown = _counts_by_session(view, ~known, "event_type")
    problems = (
        _counts_by_session(view, view.present("problem"), "problem") if view.has("problem") else {}
    )
    out: dict[int, Conversation] = {}
    for code in np.unique(view.codes).tolist():
        session_id = session_ids[code]
        out[code] = Conversation(
            item_rows=_item_rows(session_id, events.get(code, []), deltas.get(code, [])),
            error_rows=_error_rows(session_id, errors.get(code, [])),
            unknown_events=unknown.get(code, {}),
            problems=problems.get(code, {}),
        )
    return out


def _session_id(frames: pd.DataFrame) -> str | None:
    return str(frames["session_id"].iloc[0]) if len(frames) else None
