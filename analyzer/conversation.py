"""Each session's conversation, folded from its normalized events: items in order, what was
said, the server's errors, and what could not be understood."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.events import of_kinds, session_event_rows
from analyzer.kinds import Kind

if TYPE_CHECKING:
    import pandas as pd

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

# The kinds the fold reads; every other kind says nothing about items.
ITEM_KINDS: tuple[Kind, ...] = (
    Kind.ITEM_CREATE,
    Kind.TRUNCATE,
    Kind.INPUT_COMMITTED,
    Kind.ITEM,
    Kind.REPLY_ITEM,
    Kind.REPLY_TRANSCRIPT,
    Kind.REPLY_TEXT,
    Kind.USER_TRANSCRIPT,
    Kind.USER_TRANSCRIPT_FAILED,
    Kind.TOOL_CALL,
    Kind.TRUNCATED,
    Kind.ITEM_DELETED,
    Kind.ERROR,
    Kind.UNKNOWN,
)
DELTA_KINDS: tuple[Kind, ...] = (
    Kind.REPLY_TRANSCRIPT_DELTA,
    Kind.REPLY_TEXT_DELTA,
    Kind.USER_TRANSCRIPT_DELTA,
)


@dataclass
class Conversation:
    """One session's conversation: its items in order and the server's errors, as rows (dicts
    of :data:`ITEM_COLUMNS` / :data:`ERROR_COLUMNS`; ``items`` and ``errors`` give them as
    tables), event types the protocol does not define and frames that could not be understood,
    with counts."""

    item_rows: list[dict[str, Any]] = field(default_factory=list)
    error_rows: list[dict[str, Any]] = field(default_factory=list)
    unknown_events: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)

    @cached_property
    def items(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.item_rows, columns=list(ITEM_COLUMNS))

    @cached_property
    def errors(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.error_rows, columns=list(ERROR_COLUMNS))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


# An item's fields and the row's column; role, kind and status arrive non-empty or null.
_ITEM_FIELDS = (
    ("role", "role"),
    ("item_kind", "kind"),
    ("status", "status"),
    ("name", "name"),
    ("call_id", "call_id"),
    ("arguments", "arguments"),
    ("output", "output"),
)


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


def _update_from_item(row: dict[str, Any], event: Mapping[str, Any]) -> None:
    for source, target in _ITEM_FIELDS:
        value = event[source]
        if value is not None:
            row[target] = value
    for key in ("transcript", "text"):
        if event[key] and not row.get(key):
            row[key] = event[key]


def fold_items(session_id: str | None, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A session's items, in conversation order (rows of :data:`ITEM_COLUMNS`), from its item
    and delta events (dicts of the event table's columns) in arrival order."""
    items = _Items()
    client_items: dict[str, Mapping[str, Any]] = {}
    done: dict[str, set[str]] = {"transcript": set(), "text": set()}
    deltas: list[Mapping[str, Any]] = []
    for event in events:
        kind = event["kind"]
        item_id = _str(event["item_id"])
        time_s = event["time_s"]
        if kind in DELTA_KINDS:
            deltas.append(event)
        elif kind == Kind.ITEM_CREATE:
            if item_id is not None:
                client_items[item_id] = event
        elif kind == Kind.TRUNCATE:
            if item_id is not None:
                row = items.get(item_id, time_s)
                row["truncated"] = True
                if event["stream_ms"] is not None:
                    row["truncated_audio_end_ms"] = event["stream_ms"]
        elif kind == Kind.REPLY_ITEM and event["stage"] == "final":
            if item_id is not None:
                row = items.get(item_id, time_s)
                _update_from_item(row, event)
                row.setdefault("response_id", _str(event["reply_id"]))
        elif item_id is not None and kind not in (Kind.ERROR, Kind.UNKNOWN):
            _fold_server(items.get(item_id, time_s), kind, event, items, done)
    for item_id, created in client_items.items():
        if item_id not in items.by_id:
            row = items.get(item_id, created["time_s"])
            _update_from_item(row, {**created, "item_kind": _str(created["item_kind"])})
            row["from_client"] = True
            items.place(item_id, created["previous_item_id"])
    _fill_from_deltas(deltas, items, done)
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


def _fold_server(
    row: dict[str, Any],
    kind: str,
    event: Mapping[str, Any],
    items: _Items,
    done: dict[str, set[str]],
) -> None:
    item_id = row["item_id"]
    if kind == Kind.INPUT_COMMITTED:
        row.setdefault("role", "user")
        row.setdefault("kind", "message")
        items.place(item_id, event["previous_item_id"])
    elif kind == Kind.ITEM:
        _update_from_item(row, event)
        if event["placed"]:
            items.place(item_id, event["previous_item_id"])
    elif kind == Kind.REPLY_ITEM:
        _update_from_item(row, event)
        row.setdefault("response_id", _str(event["reply_id"]))
    elif kind in (Kind.REPLY_TRANSCRIPT, Kind.REPLY_TEXT):
        key = "text" if kind == Kind.REPLY_TEXT else "transcript"
        if event[key] is not None:
            before = row.get(key, "") if item_id in done[key] else ""
            row[key] = before + event[key]
            done[key].add(item_id)
        row.setdefault("response_id", _str(event["reply_id"]))
    elif kind == Kind.USER_TRANSCRIPT:
        if event["transcript"] is not None:
            row["transcript"] = event["transcript"]
            done["transcript"].add(item_id)
    elif kind == Kind.USER_TRANSCRIPT_FAILED:
        row["transcription_error"] = event["text"] if event["text"] is not None else "failed"
    elif kind == Kind.TOOL_CALL:
        row.setdefault("kind", "function_call")
        for key in ("name", "call_id", "arguments"):
            if event[key] is not None:
                row[key] = event[key]
    elif kind == Kind.TRUNCATED:
        row["truncated"] = True
        if event["stream_ms"] is not None:
            row.setdefault("truncated_audio_end_ms", event["stream_ms"])
    elif kind == Kind.ITEM_DELETED:
        row["deleted"] = True


def _fill_from_deltas(
    deltas: Sequence[Mapping[str, Any]], items: _Items, done: dict[str, set[str]]
) -> None:
    """Transcripts and texts of items whose final one never came (interrupted, cut capture),
    joined from their deltas."""
    joined: dict[tuple[str, bool], list[str]] = {}
    first_seen: dict[str, float] = {}
    for event in deltas:
        item_id = _str(event["item_id"])
        is_text = event["kind"] == Kind.REPLY_TEXT_DELTA
        if item_id is None or item_id in done["text" if is_text else "transcript"]:
            continue
        if event["text"] is not None:
            joined.setdefault((item_id, is_text), []).append(event["text"])
            first_seen.setdefault(item_id, event["time_s"])
    for (item_id, is_text), parts in joined.items():
        row = items.get(item_id, first_seen[item_id])
        row["text" if is_text else "transcript"] = "".join(parts)


def _error_row(session_id: str | None, event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "seq": int(event["seq"]),
        "time_s": float(event["time_s"]),
        "type": event["error_type"],
        "code": event["error_code"],
        "message": event["text"],
        "param": event["error_param"],
        "client_event_id": event["client_event_id"],
    }


FOLD_FIELDS: tuple[str, ...] = (
    "seq",
    "time_s",
    "item_id",
    "previous_item_id",
    "placed",
    "stage",
    "reply_id",
    "role",
    "item_kind",
    "status",
    "name",
    "call_id",
    "arguments",
    "output",
    "transcript",
    "text",
    "stream_ms",
    "error_type",
    "error_code",
    "error_param",
    "client_event_id",
)


def _keys(table: pa.Table, suffix: str) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(
        table.column("session_id"), table.column("item_id"), suffix, "\0"
    )


def _deltas_needed(events: pa.Table) -> pa.Table:
    """The transcript and text deltas of items whose whole transcript or text never came: the
    only deltas the fold joins (most replies end with their final transcript)."""
    deltas = of_kinds(events, DELTA_KINDS)
    if not deltas.num_rows:
        return deltas
    needed = events.select(["session_id", "item_id", "kind", "text", "transcript"])
    finals = of_kinds(needed, (Kind.USER_TRANSCRIPT, Kind.REPLY_TRANSCRIPT, Kind.REPLY_TEXT))
    is_text = pc.equal(finals.column("kind"), Kind.REPLY_TEXT.value)
    value = pc.if_else(is_text, finals.column("text"), finals.column("transcript"))
    finals = finals.filter(pc.is_valid(value))
    done = _keys(
        finals, pc.if_else(pc.equal(finals.column("kind"), Kind.REPLY_TEXT.value), "x", "t")
    )
    delta_is_text = pc.equal(deltas.column("kind"), Kind.REPLY_TEXT_DELTA.value)
    mine = _keys(deltas, pc.if_else(delta_is_text, "x", "t"))
    return deltas.filter(pc.invert(pc.fill_null(pc.is_in(mine, done), False)))


def conversations(
    events: pa.Table, problems: Mapping[str, dict[str, int]] | None = None
) -> dict[str, Conversation]:
    """Each session's :class:`Conversation` from the event table (sorted by session, then
    seq); ``problems`` are the frames the recorder could not understand, by session."""
    out: dict[str, Conversation] = {}
    events = events.select(["session_id", "kind", *FOLD_FIELDS])
    wanted = pa.concat_tables([of_kinds(events, ITEM_KINDS), _deltas_needed(events)])
    order = pc.sort_indices(wanted, [("session_id", "ascending"), ("seq", "ascending")])
    for session_id, rows in session_event_rows(
        wanted.take(order), ITEM_KINDS + DELTA_KINDS, FOLD_FIELDS
    ):
        unknown: dict[str, int] = {}
        for row in rows:
            if row["kind"] == Kind.UNKNOWN:
                unknown[row["name"]] = unknown.get(row["name"], 0) + 1
        out[session_id] = Conversation(
            item_rows=fold_items(session_id, rows),
            error_rows=[_error_row(session_id, r) for r in rows if r["kind"] == Kind.ERROR],
            unknown_events=dict(sorted(unknown.items())),
        )
    for session_id, counts in (problems or {}).items():
        out.setdefault(session_id, Conversation()).problems = counts
    return out


def build_conversation(session_frames: pd.DataFrame) -> Conversation:
    """One session's conversation from its frames in pandas (notebooks, tests)."""
    from analyzer.events import event_table, frames_to_arrow

    if session_frames.empty:
        return Conversation()
    session_id = str(session_frames["session_id"].iloc[0])
    frames = frames_to_arrow(session_frames.sort_values("seq", kind="stable"))
    problems = (
        session_frames["problem"].dropna().value_counts() if "problem" in session_frames else None
    )
    found = conversations(
        event_table(frames, {session_id: {}}),
        {session_id: {str(k): int(v) for k, v in sorted(problems.items())}}
        if problems is not None and len(problems)
        else None,
    )
    return found.get(session_id, Conversation())


def conversation_items(session_frames: pd.DataFrame) -> pd.DataFrame:
    """One session's items in conversation order (columns :data:`ITEM_COLUMNS`), from its
    frames in pandas (the ``conversation`` command)."""
    return build_conversation(session_frames).items
