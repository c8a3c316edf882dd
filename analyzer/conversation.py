"""Each session's conversation, folded from its normalized events: items in order, what was
said, the server's errors, and what could not be understood. The fold is columnar, every
session of a window at once: each field is a first or last pick among an item's events; only
placing items after their previous item is a walk (over ints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.events import of_kinds
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
# The kinds that make an item's row (at the first of them): the client's ITEM_CREATE makes one
# only if none of these names the item; errors and unknown events name none.
SERVER_KINDS: tuple[Kind, ...] = tuple(
    k for k in ITEM_KINDS if k not in (Kind.ITEM_CREATE, Kind.ERROR, Kind.UNKNOWN)
)
# The event fields the fold reads.
FOLD_FIELDS: tuple[str, ...] = tuple(
    "seq time_s item_id previous_item_id placed reply_id role item_kind status name call_id"  # noqa: SIM905
    " arguments output transcript text stream_ms error_type error_code error_param"
    " client_event_id".split()
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


_KINDS = list(Kind)
_NO_STRING = pa.scalar(None, pa.string())
_IDS = ("item_id", "previous_item_id")
Texts = dict[int, str]  # by item code


def _none_if_empty(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), _NO_STRING, values)


def _pick(codes: np.ndarray, mask: np.ndarray, n: int, last: bool = False) -> np.ndarray:
    """Per item code (0..n-1), the place in ``codes`` (sorted) of its first or last event
    where ``mask`` holds; -1 for none."""
    at = np.flatnonzero(mask)
    mine = codes[at]
    edge = np.ones(len(at), dtype=bool)
    if last:
        edge[:-1] = mine[1:] != mine[:-1]
    else:
        edge[1:] = mine[1:] != mine[:-1]
    out = np.full(n, -1, dtype=np.int64)
    out[mine[edge]] = at[edge]
    return out


class _Window:
    """The item and delta events of a window of sessions as columns, rows in arrival order
    (by session, then seq), each with its item's code: a number per (session, item id) in
    order of first mention, -1 for none (a null or empty id)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table = table.combine_chunks()
        self.kind = pc.index_in(table.column("kind"), value_set=pa.array(_KINDS)).to_numpy()
        sessions = table.column("session_id").combine_chunks()
        encoded = sessions.dictionary_encode()
        self.session = encoded.indices.to_numpy()
        self.session_ids: list[str] = encoded.dictionary.to_pylist()
        keys = {c: pc.binary_join_element_wise(sessions, table.column(c), "\0") for c in _IDS}
        named = pc.fill_null(pc.not_equal(table.column("item_id"), ""), False)
        items = pc.if_else(named, keys["item_id"], _NO_STRING).combine_chunks().dictionary_encode()
        self.code = items.indices.fill_null(-1).to_numpy()
        self.n = len(items.dictionary)
        # The code of the item each event names as previous, if the window mentions it.
        previous = pc.index_in(keys["previous_item_id"], value_set=items.dictionary)
        self.previous = previous.fill_null(-1).to_numpy()
        self.all = np.ones(len(self.code), dtype=bool)

    def of(self, *kinds: Kind) -> np.ndarray:
        wanted = np.zeros(len(_KINDS), dtype=bool)
        wanted[[_KINDS.index(k) for k in kinds]] = True
        return wanted[self.kind]

    def valid(self, column: str) -> np.ndarray:
        return np.asarray(self.table.column(column).is_valid())

    def said(self, column: str) -> np.ndarray:
        """Rows where ``column`` holds a non-empty string."""
        return np.asarray(pc.fill_null(pc.not_equal(self.table.column(column), ""), False))

    def at(self, column: str, rows: np.ndarray) -> pa.Array:
        """``column`` at these rows, null where a row is -1."""
        return self.table.column(column).take(pa.array(rows, mask=rows < 0))


class _Events:
    """Some events of a window by item: sorted by item code, then arrival."""

    def __init__(self, window: _Window, mask: np.ndarray) -> None:
        rows = np.flatnonzero(mask & (window.code >= 0))
        self.rows = rows[np.argsort(window.code[rows], kind="stable")]
        self.code = window.code[self.rows]
        self.n = window.n
        self._rows = np.append(self.rows, -1)  # so that place -1 (none) gives row -1

    def first(self, mask: np.ndarray) -> np.ndarray:
        """Per item code, the row of its first event where ``mask`` (by window row) holds."""
        return self._rows[_pick(self.code, mask[self.rows], self.n)]

    def last(self, mask: np.ndarray) -> np.ndarray:
        return self._rows[_pick(self.code, mask[self.rows], self.n, last=True)]


def _joined(codes: list[int], texts: list[str]) -> Texts:
    out: Texts = {}
    for code, text in zip(codes, texts, strict=True):
        out[code] = out[code] + text if code in out else text
    return out


def _finals(w: _Window, server: _Events, key: str) -> tuple[Texts, np.ndarray]:
    """Per item code, its transcript or text (``key``) from the server's events, and whether
    a final one came. Finals (a reply's whole transcript or text, one per content part; a
    user's transcript) join in order, a user's transcript starting over; an item event's
    non-empty value counts before any final (the first such), or while every final is empty."""
    said = w.said(key)[server.rows]
    parts = w.of(Kind.REPLY_TEXT if key == "text" else Kind.REPLY_TRANSCRIPT) & w.valid(key)
    restarts = (w.of(Kind.USER_TRANSCRIPT) & w.valid(key) & (key == "transcript"))[server.rows]
    codes, n, final = server.code, server.n, (parts[server.rows] | restarts)
    from_item = w.of(Kind.ITEM, Kind.REPLY_ITEM)[server.rows] & said
    # What came before the last restart, or before the first final, is replaced.
    start = np.maximum(_pick(codes, restarts, n, last=True), _pick(codes, final, n))
    mine, place = start[codes], np.arange(len(codes))
    after = (mine >= 0) & (place >= mine)
    nonempty_before = np.cumsum(final & after & said) - (final & after & said)
    fills = from_item & after & (nonempty_before == nonempty_before[np.maximum(mine, 0)])
    chosen = np.where(start >= 0, _pick(codes, fills, n), _pick(codes, from_item, n))
    used = (final & after) | (place == chosen[codes])
    texts = w.table.column(key).take(server.rows[used]).to_pylist()
    return _joined(codes[used].tolist(), texts), start >= 0


def _from_deltas(w: _Window, done: dict[str, np.ndarray]) -> tuple[dict[str, Texts], np.ndarray]:
    """Transcripts and texts of items whose final one never came (interrupted, cut capture),
    joined from their deltas; and per item code, the row of its first such delta."""
    is_text = w.of(Kind.REPLY_TEXT_DELTA)
    used = w.of(*DELTA_KINDS) & (w.code >= 0) & w.valid("text")
    used &= ~np.where(is_text, done["text"][w.code], done["transcript"][w.code])
    joined = {}
    for key, mine in (("text", used & is_text), ("transcript", used & ~is_text)):
        texts = w.table.column("text").filter(mine).to_pylist()
        joined[key] = _joined(w.code[mine].tolist(), texts)
    return joined, _Events(w, used).first(w.all)


def _order(
    w: _Window, made: np.ndarray, key: np.ndarray, placing: np.ndarray, place_key: np.ndarray
) -> dict[int, list[int]]:
    """Each session's item codes in conversation order. An item goes where its row was made
    (``made``, in the order of ``key``), then once right after the previous item its first
    placing event names (at ``place_key``), if that item was made by then: items whose
    previous item is null or unknown keep their arrival order (some compatible servers always
    send null, so null is not trusted to mean "first")."""
    codes = np.flatnonzero(made >= 0)
    previous = np.where(placing >= 0, w.previous[placing], -1)
    moves = (previous >= 0) & (previous != np.arange(w.n)) & (made[previous] >= 0)
    moved = np.flatnonzero(moves & (key[previous] < place_key))
    session = w.session[made]
    op_session = np.concatenate([session[codes], session[moved]])
    op_key = np.concatenate([key[codes], place_key[moved]])
    op_code = np.concatenate([codes, moved])
    op_previous = np.concatenate([np.full(len(codes), -1), previous[moved]])
    ops = np.lexsort((op_previous >= 0, op_key, op_session))
    orders: dict[int, list[int]] = {}
    order: list[int] = []
    walk = zip(*(a[ops].tolist() for a in (op_session, op_code, op_previous)), strict=True)
    for s, code, before in walk:  # a move changes where later ones go: a walk
        if s not in orders:
            order = orders[s] = []
        if before < 0:
            order.append(code)
        elif order[-2:] != [before, code]:
            order.remove(code)
            order.insert(order.index(before) + 1, code)
    return orders


def _item_rows(w: _Window) -> dict[str, list[dict[str, Any]]]:
    """Each session's items in conversation order (rows of :data:`ITEM_COLUMNS`)."""
    if not w.n:
        return {}
    server, creates = _Events(w, w.of(*SERVER_KINDS)), _Events(w, w.of(Kind.ITEM_CREATE))
    first = server.first(w.all)
    # Created by the client and never named by the server: its last create says it all.
    client = (creates.last(w.all) >= 0) & (first < 0)
    created = np.where(client, creates.last(w.all), -1)
    stated, commits = w.of(Kind.ITEM, Kind.REPLY_ITEM), w.of(Kind.INPUT_COMMITTED)
    calls = w.of(Kind.TOOL_CALL)

    def last(column: str, kinds: np.ndarray = stated) -> pa.Array:
        """The last value the server stated (null says nothing), else the client's."""
        at_server = w.at(column, server.last(kinds & w.valid(column)))
        return pc.coalesce(at_server, w.at(column, created))

    def unless(found: pa.Array, rows: np.ndarray, default: str) -> pa.Array:
        return pc.coalesce(found, pc.if_else(pa.array(rows >= 0), default, _NO_STRING))

    finals = {key: _finals(w, server, key) for key in ("transcript", "text")}
    joined, first_delta = _from_deltas(w, {key: done for key, (_, done) in finals.items()})
    said = {key: _none_if_empty(w.at(key, created)).to_pylist() for key in finals}
    for key, texts in said.items():
        for code, text in {**finals[key][0], **joined[key]}.items():
            texts[code] = text
    made = np.where(first >= 0, first, np.where(client, created, first_delta))
    size = len(w.code)  # items the server names, then the client's, then the deltas'
    rank = np.where(
        first >= 0, first, size + np.where(client, creates.first(w.all), size + first_delta)
    )
    placed = w.of(Kind.ITEM) & np.asarray(pc.fill_null(w.table.column("placed"), False))
    placing = np.where(client, created, server.first(commits | placed))
    commit_or_call = w.at("kind", server.first(commits | calls))
    is_commit = pc.equal(commit_or_call, Kind.INPUT_COMMITTED.value)
    failed = server.last(w.of(Kind.USER_TRANSCRIPT_FAILED))
    replies = w.of(Kind.REPLY_ITEM, Kind.REPLY_TRANSCRIPT, Kind.REPLY_TEXT)
    columns = [
        w.at("item_id", made),
        w.at("previous_item_id", placing),
        unless(last("role"), server.first(commits), "user"),
        pc.coalesce(
            w.at("item_kind", server.last(stated & w.valid("item_kind"))),
            pc.if_else(is_commit, "message", "function_call"),
            _none_if_empty(w.at("item_kind", created)),
        ),
        last("status"),
        pa.array(said["transcript"], pa.string()),
        pa.array(said["text"], pa.string()),
        *(last(column, stated | calls) for column in ("name", "call_id", "arguments")),
        last("output"),
        _none_if_empty(w.at("reply_id", server.first(replies))),
        pa.array(server.first(w.of(Kind.TRUNCATE, Kind.TRUNCATED)) >= 0),
        pc.coalesce(  # the client's last cut, else the server's first
            w.at("stream_ms", server.last(w.of(Kind.TRUNCATE) & w.valid("stream_ms"))),
            w.at("stream_ms", server.first(w.of(Kind.TRUNCATED) & w.valid("stream_ms"))),
        ),
        unless(w.at("text", failed), failed, "failed"),
        pa.array(server.first(w.of(Kind.ITEM_DELETED)) >= 0),
        w.at("time_s", made),
        pa.array(client),
    ]
    values = list(zip(*(column.to_pylist() for column in columns), strict=True))
    out: dict[str, list[dict[str, Any]]] = {}
    for s, order in _order(w, made, rank, placing, np.where(client, rank, placing)).items():
        sid = w.session_ids[s]
        rows = ((sid, i, *values[c]) for i, c in enumerate(order, start=1))
        out[sid] = [dict(zip(ITEM_COLUMNS, row, strict=True)) for row in rows]
    return out


def conversations(
    events: pa.Table, problems: Mapping[str, dict[str, int]] | None = None
) -> dict[str, Conversation]:
    """Each session's :class:`Conversation` from the event table (sorted by session, then
    seq); ``problems`` are the frames the recorder could not understand, by session."""
    wanted = events.select(["session_id", "kind", *FOLD_FIELDS])
    w = _Window(of_kinds(wanted, ITEM_KINDS + DELTA_KINDS))
    out = {sid: Conversation() for sid in w.session_ids}
    for sid, rows in _item_rows(w).items():
        out[sid].item_rows = rows
    fields = ["session_id", "seq", "time_s", "error_type", "error_code", "text", "error_param"]
    errors = w.table.filter(w.of(Kind.ERROR)).select([*fields, "client_event_id"])
    for error in errors.rename_columns(ERROR_COLUMNS).to_pylist():
        out[error["session_id"]].error_rows.append(error)
    unknown = w.table.filter(w.of(Kind.UNKNOWN)).select(["session_id", "name"])
    by_name = unknown.sort_by([("session_id", "ascending"), ("name", "ascending")])
    for sid, name in zip(*by_name.to_pydict().values(), strict=True):
        out[sid].unknown_events[name] = out[sid].unknown_events.get(name, 0) + 1
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
