"""The conversation fold's rules, event by event: where each item goes, which event has the
last word on each field, how transcripts are put together."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from analyzer.conversation import Conversation, conversations
from analyzer.events import EVENT_TABLE_SCHEMA
from analyzer.kinds import Kind

E = dict[str, Any]


def fold(*events: E, problems: dict[str, dict[str, int]] | None = None) -> dict[str, Conversation]:
    """The conversations of these events (session "s" unless said; seq and time_s = place)."""
    rows = [
        {"session_id": "s", "seq": i, "time_s": 100.0 + i, "direction": "server", **e}
        for i, e in enumerate(events)
    ]
    rows.sort(key=lambda r: (r["session_id"], r["seq"]))
    return conversations(pa.Table.from_pylist(rows, schema=EVENT_TABLE_SCHEMA), problems)


def items(*events: E) -> list[dict[str, Any]]:
    return fold(*events)["s"].item_rows


def col(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [r[name] for r in rows]


def item(item_id: str, previous: str | None = None, placed: bool = True, **more: Any) -> E:
    return {
        "kind": Kind.ITEM,
        "item_id": item_id,
        "previous_item_id": previous,
        "placed": placed,
        **more,
    }


def test_an_item_goes_after_its_previous_item_once_and_only_if_known_then() -> None:
    rows = items(
        item("a"),
        item("b", "a"),
        item("c", "a"),  # between a and b
        item("b", "c"),  # b's place was already said: stays
        item("d", "later"),  # previous unknown when placed: arrival order, even once known
        item("later"),
        item("e", "e"),  # itself: arrival order
        {"kind": Kind.REPLY_ITEM, "item_id": "f", "stage": "added"},  # never placed
        item("g", "a", placed=False),  # states no place
        {"kind": Kind.INPUT_COMMITTED, "item_id": "h", "previous_item_id": "a"},
    )
    assert col(rows, "item_id") == ["a", "h", "c", "b", "d", "later", "e", "f", "g"]
    assert col(rows, "position") == list(range(1, 10))
    assert col(rows, "previous_item_id") == [None, "a", "a", "a", "later", None, "e", None, None]
    assert col(rows, "first_seen_s") == [
        100.0,
        109.0,
        102.0,
        101.0,
        104.0,
        105.0,
        106.0,
        107.0,
        108.0,
    ]


def test_an_item_moved_after_others_were_placed_after_it_moves_alone() -> None:
    rows = items(
        {"kind": Kind.REPLY_ITEM, "item_id": "x", "stage": "added"},  # named, not placed
        item("y", "x"),
        item("z"),
        item("x", "z"),
    )
    assert col(rows, "item_id") == ["y", "z", "x"]


def test_fields_take_the_last_stated_value_and_defaults_only_fill_gaps() -> None:
    rows = items(
        {"kind": Kind.INPUT_COMMITTED, "item_id": "u"},
        item("u", role="system", item_kind="message", status="in_progress"),
        item("u", status="completed"),
        item("u", status=None, name=""),  # null says nothing; an empty name is a value
        item("m", role="assistant"),
        {"kind": Kind.INPUT_COMMITTED, "item_id": "m"},
        {"kind": Kind.TOOL_CALL, "item_id": "t", "name": "f", "call_id": "c1", "arguments": "{}"},
        {"kind": Kind.REPLY_ITEM, "item_id": "t", "stage": "done", "name": "g", "arguments": None},
        {"kind": Kind.TOOL_CALL, "item_id": "t", "call_id": "c2"},
        {
            "kind": Kind.REPLY_ITEM,
            "item_id": "o",
            "stage": "final",
            "item_kind": "function_call_output",
        },
        {"kind": Kind.TOOL_CALL, "item_id": "o", "output": "ignored", "name": "h"},
        item("o", output="42"),
    )
    by_id = {r["item_id"]: r for r in rows}
    assert [by_id["u"][k] for k in ("role", "kind", "status", "name")] == [
        "system",
        "message",
        "completed",
        "",
    ]
    assert [by_id["m"][k] for k in ("role", "kind")] == ["assistant", "message"]
    t = by_id["t"]
    assert [t[k] for k in ("role", "kind", "name", "call_id", "arguments")] == [
        None,
        "function_call",
        "g",
        "c2",
        "{}",
    ]
    o = by_id["o"]
    assert [o[k] for k in ("kind", "name", "output")] == ["function_call_output", "h", "42"]


def test_response_id_is_the_first_reply_event_s_even_when_null() -> None:
    rows = items(
        item("a"),
        {"kind": Kind.REPLY_TRANSCRIPT, "item_id": "a", "reply_id": None, "transcript": None},
        {"kind": Kind.REPLY_ITEM, "item_id": "a", "stage": "final", "reply_id": "r2"},
        {"kind": Kind.REPLY_ITEM, "item_id": "b", "stage": "added", "reply_id": ""},
        {"kind": Kind.REPLY_TEXT, "item_id": "b", "reply_id": "r3", "text": "x"},
        {"kind": Kind.REPLY_TEXT, "item_id": "c", "reply_id": "r4", "text": "y"},
        {"kind": Kind.REPLY_ITEM, "item_id": "c", "stage": "added", "reply_id": "r5"},
    )
    assert col(rows, "response_id") == [None, None, "r4"]


def test_transcripts_final_parts_join_and_item_transcripts_only_fill_gaps() -> None:
    rt, ut = Kind.REPLY_TRANSCRIPT, Kind.USER_TRANSCRIPT
    rows = items(
        item("a", transcript="from item"),
        {"kind": rt, "item_id": "a", "transcript": "one "},  # replaces the item's
        {"kind": rt, "item_id": "a", "transcript": "two"},  # parts join
        item("a", transcript="late item"),  # a final was said: ignored
        item("b", transcript=""),
        item("b", transcript="first"),
        item("b", transcript="second"),  # the first non-empty stays
        {"kind": rt, "item_id": "c", "transcript": "x"},
        {"kind": ut, "item_id": "c", "transcript": "user"},  # a user transcript replaces
        {"kind": rt, "item_id": "c", "transcript": "+"},
        {"kind": rt, "item_id": "d", "transcript": ""},  # an empty final
        item("d", transcript="fills"),  # fills it
        {"kind": rt, "item_id": "d", "transcript": "!"},
        item("d", transcript="not again"),
        {"kind": ut, "item_id": "e", "transcript": None},  # null: no final
        item("e", transcript="kept"),
        {"kind": Kind.REPLY_TEXT, "item_id": "f", "text": "t1"},
        {"kind": Kind.REPLY_TEXT, "item_id": "f", "text": "t2"},
        item("f", text="item text", transcript="tr"),
    )
    assert col(rows, "transcript") == ["one two", "first", "user+", "fills!", "kept", "tr"]
    assert col(rows, "text") == [None, None, None, None, None, "t1t2"]


def test_deltas_are_joined_only_where_no_final_came() -> None:
    rtd, xd, utd = Kind.REPLY_TRANSCRIPT_DELTA, Kind.REPLY_TEXT_DELTA, Kind.USER_TRANSCRIPT_DELTA
    rows = items(
        item("a", transcript="item's", text="item text"),
        {"kind": rtd, "item_id": "a", "text": "Sure "},
        {"kind": rtd, "item_id": "a", "text": None},
        {"kind": rtd, "item_id": "a", "text": "let me"},  # replace the item's transcript
        {"kind": xd, "item_id": "n", "text": "typed"},  # unseen item, after the client's
        {"kind": utd, "item_id": "u", "text": "hel"},
        {"kind": Kind.USER_TRANSCRIPT, "item_id": "u", "transcript": "hello"},
        {"kind": rtd, "item_id": "n", "text": "spoken"},
        {"kind": Kind.REPLY_TEXT, "item_id": "a", "text": "final text"},
        {"kind": xd, "item_id": "a", "text": "ignored: its text is final"},
        {"kind": rtd, "item_id": "", "text": "no item"},
        {"kind": rtd, "item_id": "m", "text": None},  # nothing said: no item
        {"kind": Kind.ITEM_CREATE, "item_id": "k", "role": "user"},
    )
    assert col(rows, "item_id") == ["a", "u", "k", "n"]
    assert col(rows, "transcript") == ["Sure let me", "hello", None, "spoken"]
    assert col(rows, "text") == ["final text", None, None, "typed"]
    assert col(rows, "first_seen_s") == [100.0, 106.0, 112.0, 104.0]  # u: its final


def test_truncation_deletion_and_failed_transcription() -> None:
    rows = items(
        {"kind": Kind.TRUNCATED, "item_id": "a", "stream_ms": 90.0},
        {"kind": Kind.TRUNCATED, "item_id": "a", "stream_ms": 80.0},  # the first server's stays
        {"kind": Kind.TRUNCATE, "item_id": "b", "stream_ms": 150.0},
        {"kind": Kind.TRUNCATED, "item_id": "b", "stream_ms": 140.0},  # the client's wins
        {"kind": Kind.TRUNCATE, "item_id": "b", "stream_ms": 160.0},  # the last client's
        {"kind": Kind.TRUNCATE, "item_id": "b", "stream_ms": None},
        {"kind": Kind.TRUNCATE, "item_id": "c"},
        {"kind": Kind.ITEM_DELETED, "item_id": "d"},
        {"kind": Kind.USER_TRANSCRIPT_FAILED, "item_id": "d", "text": "too short"},
        {"kind": Kind.USER_TRANSCRIPT_FAILED, "item_id": "e"},
        {"kind": Kind.TRUNCATE, "item_id": None, "stream_ms": 1.0},
    )
    assert col(rows, "item_id") == ["a", "b", "c", "d", "e"]
    assert col(rows, "truncated") == [True, True, True, False, False]
    assert col(rows, "truncated_audio_end_ms") == [90.0, 160.0, None, None, None]
    assert col(rows, "deleted") == [False, False, False, True, False]
    assert col(rows, "transcription_error") == [None, None, None, "too short", "failed"]


def test_client_items_the_server_never_named_follow_with_the_last_create() -> None:
    create = Kind.ITEM_CREATE
    rows = items(
        {"kind": create, "item_id": "mine", "text": "old", "item_kind": "message"},
        item("s1"),
        {"kind": create, "item_id": "seen", "text": "client text", "role": "user"},
        item("seen"),  # confirmed: the server's item, not the client's
        {"kind": create, "item_id": "late", "previous_item_id": "s1", "item_kind": ""},
        {"kind": create, "item_id": "mine", "text": "new", "transcript": "", "status": "x"},
        {"kind": create, "item_id": "", "text": "no id"},
    )
    assert col(rows, "item_id") == ["s1", "late", "seen", "mine"]
    assert col(rows, "from_client") == [False, True, False, True]
    assert col(rows, "text") == [None, None, None, "new"]
    assert col(rows, "kind") == [None, None, None, None]
    assert col(rows, "role") == [None, None, None, None]
    assert col(rows, "status") == [None, None, None, "x"]
    assert col(rows, "previous_item_id") == [None, "s1", None, None]
    assert col(rows, "first_seen_s") == [101.0, 104.0, 103.0, 105.0]


def test_rows_errors_unknown_events_and_problems_per_session() -> None:
    found = fold(
        {"session_id": "t", "kind": Kind.UNKNOWN, "name": "z.custom"},
        {"session_id": "t", "kind": Kind.UNKNOWN, "name": "a.custom"},
        {"session_id": "t", "kind": Kind.UNKNOWN, "name": "z.custom"},
        {
            "session_id": "t",
            "kind": Kind.ERROR,
            "item_id": "x",
            "error_type": "invalid_request_error",
            "error_code": "bad",
            "text": "nope",
            "error_param": "p",
            "client_event_id": "c9",
        },
        {"session_id": "s", **item("a", role="user", item_kind="message", status="completed")},
        {"session_id": "s", "kind": Kind.REPLY_AUDIO, "item_id": "b"},  # says nothing of items
        problems={"u": {"not JSON": 2}},
    )
    assert sorted(found) == ["s", "t", "u"]
    assert found["s"].item_rows == [
        {
            "session_id": "s",
            "position": 1,
            "item_id": "a",
            "previous_item_id": None,
            "role": "user",
            "kind": "message",
            "status": "completed",
            "transcript": None,
            "text": None,
            "name": None,
            "call_id": None,
            "arguments": None,
            "output": None,
            "response_id": None,
            "truncated": False,
            "truncated_audio_end_ms": None,
            "transcription_error": None,
            "deleted": False,
            "first_seen_s": 104.0,
            "from_client": False,
        }
    ]
    assert list(found["s"].item_rows[0]) == list(found["s"].items.columns)
    t = found["t"]
    assert t.item_rows == [] and t.unknown_events == {"a.custom": 1, "z.custom": 2}
    assert list(t.unknown_events) == ["a.custom", "z.custom"]  # in name order
    assert t.error_rows == [
        {
            "session_id": "t",
            "seq": 3,
            "time_s": 103.0,
            "type": "invalid_request_error",
            "code": "bad",
            "message": "nope",
            "param": "p",
            "client_event_id": "c9",
        }
    ]
    assert found["u"].problems == {"not JSON": 2} and found["u"].item_rows == []
