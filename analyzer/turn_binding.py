"""Which reply answers which user input: the turns of one session, from its few control events
(speech start/end, commits, reply requests and starts, items), whatever the protocol.

A turn opens when the user's input ends (the server's VAD, a commit, or a request for a reply)
and takes the oldest reply not yet bound to one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.kinds import TOKEN_FIELDS, Kind

_NAN = float("nan")


# The events that open, close and bind turns.
CONTROL_KINDS: tuple[Kind, ...] = (
    Kind.CONFIG,
    Kind.REPLY_START,
    Kind.SPEECH_START,
    Kind.SPEECH_END,
    Kind.INPUT_COMMITTED,
    Kind.ITEM,
    Kind.USER_AUDIO_COMMIT,
    Kind.ITEM_CREATE,
    Kind.REPLY_REQUEST,
    Kind.REPLY_ITEM,
)


CONTROL_FIELDS: tuple[str, ...] = (
    "seq",
    "time_s",
    "direction",
    "reply_id",
    "item_id",
    "stage",
    "reason",
    "status",
    "item_kind",
    "name",
    "call_id",
    "stream_ms",
    "at_s",
    "audio_ms",
    "turn_detection",
    "silence_ms",
    "transcription_model",
    *TOKEN_FIELDS,
)


def latency_ms(end_s: float, start_s: float) -> float:
    """Milliseconds between two capture times, rounded to the microsecond (float noise)."""
    if math.isnan(end_s) or math.isnan(start_s):
        return _NAN
    return round((end_s - start_s) * 1000.0, 3)


def event_time_s(row: Mapping[str, Any]) -> float:
    """When an event happened: its ``at_s`` when the adapter timed it earlier than its frame
    (speech timed from the audio), else its frame's time."""
    at_s = row.get("at_s")
    return row["time_s"] if at_s is None or math.isnan(at_s) else float(at_s)


def _new_turn(trigger: str | None, start_s: float, seq: int) -> dict[str, Any]:
    return {
        "trigger": trigger,
        "turn_start_s": start_s,
        "user_item_id": None,
        "user_item_kind": None,
        "response_id": None,
        "speech_started_s": _NAN,
        "speech_stopped_s": _NAN,
        "committed_s": _NAN,
        "response_create_s": _NAN,
        "user_audio_ms": _NAN,
        "seq": seq,
        "client_item": None,
    }


def walk_turns(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The turns of one session from its control events (:data:`CONTROL_KINDS`, in order): a
    turn opens when the user's input ends (server VAD, a commit, or a request for a reply) and
    takes the oldest reply not yet bound."""
    answered_items = {
        r["item_id"]
        for r in rows
        if r["item_id"] is not None
        and (
            (r["kind"] == Kind.REPLY_ITEM and r["stage"] == "added" and r["reply_id"] is not None)
            or r["kind"] == Kind.INPUT_COMMITTED
        )
    }
    turns: list[dict[str, Any]] = []
    open_turns: list[dict[str, Any]] = []
    speech: dict[str, Any] | None = None
    client_items: list[dict[str, Any]] = []  # created by the client since the last request
    awaiting_ack: list[dict[str, Any]] = []
    started: set[str] = set()

    def add(turn: dict[str, Any]) -> dict[str, Any]:
        turns.append(turn)
        open_turns.append(turn)
        return turn

    for row in rows:
        kind, time_s, seq = row["kind"], row["time_s"], row["seq"]
        if kind == Kind.REPLY_START:
            if row["reply_id"] in started:
                continue
            started.add(row["reply_id"])
            # A reply answers the oldest turn still waiting; else none was seen (the server
            # spoke first, or the capture began mid-turn).
            turn = open_turns.pop(0) if open_turns else None
            if turn is None:
                turn = _new_turn(None, _NAN, seq)
                turns.append(turn)
            turn["response_id"] = row["reply_id"]
        elif kind == Kind.SPEECH_START:
            speech = {"time_s": event_time_s(row), "stream_ms": row["stream_ms"]}
        elif kind == Kind.SPEECH_END:
            turn = add(_new_turn("vad", event_time_s(row), seq))
            turn["speech_stopped_s"] = event_time_s(row)
            turn["user_item_id"] = row["item_id"]
            if speech is not None:
                turn["speech_started_s"] = speech["time_s"]
                turn["user_audio_ms"] = row["stream_ms"] - speech["stream_ms"]
            speech = None
        elif kind == Kind.INPUT_COMMITTED:
            item_id = row["item_id"]
            turn = next(
                (
                    t
                    for t in reversed(open_turns)
                    if t["trigger"] in ("vad", "commit")
                    and math.isnan(t["committed_s"])
                    and t["user_item_id"] in (None, item_id)
                ),
                None,
            )
            if turn is None:  # committed with no speech end seen: still a VAD turn
                turn = add(_new_turn("vad", time_s, seq))
                turn["user_audio_ms"] = row["audio_ms"]
            turn["committed_s"] = time_s
            turn["user_item_id"] = item_id
            turn["user_item_kind"] = "message"
            if math.isnan(turn["user_audio_ms"]):
                turn["user_audio_ms"] = row["audio_ms"]
        elif kind == Kind.ITEM:
            item_id = row["item_id"]
            if awaiting_ack and item_id and item_id not in answered_items:
                awaiting_ack.pop(0)["id"] = item_id
        elif kind == Kind.USER_AUDIO_COMMIT:
            turn = add(_new_turn("commit", time_s, seq))
            turn["user_audio_ms"] = row["audio_ms"]
        elif kind == Kind.ITEM_CREATE:
            created = {"id": row["item_id"], "kind": row["item_kind"]}
            client_items.append(created)
            if created["id"] is None:
                awaiting_ack.append(created)
        elif kind == Kind.REPLY_REQUEST:
            newest = open_turns[-1] if open_turns else None
            if (
                newest is not None
                and newest["trigger"] in ("vad", "commit")
                and not client_items
                and math.isnan(newest["response_create_s"])
            ):
                newest["response_create_s"] = time_s
            else:
                turn = add(_new_turn("response.create", time_s, seq))
                turn["response_create_s"] = time_s
                if client_items:
                    turn["client_item"] = client_items[-1]
            client_items = []
    for turn in turns:
        if turn["client_item"] is not None:
            turn["user_item_id"] = turn["client_item"]["id"]
            turn["user_item_kind"] = turn["client_item"]["kind"]
    return turns
