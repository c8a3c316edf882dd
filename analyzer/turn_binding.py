"""Which reply answers which user input: the turns of one session, from its few control events
(speech start/end, commits, reply requests and starts, items), whatever the protocol.

A turn opens when the user's input ends (the server's VAD, a commit, or a request for a reply)
and takes the oldest reply not yet bound to one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from analyzer.events import of_kinds
from analyzer.kinds import Kind

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
)


def latency_ms(end_s: float, start_s: float) -> float:
    """Milliseconds between two capture times, rounded to the microsecond (float noise)."""
    if math.isnan(end_s) or math.isnan(start_s):
        return _NAN
    return round((end_s - start_s) * 1000.0, 3)


@dataclass
class Control:
    """A window's control events as plain column lists (one Arrow conversion per column, no
    dict per event), and each session's slice of them: (session id, start, end)."""

    columns: dict[str, list[Any]]
    sessions: list[tuple[str, int, int]]

    @classmethod
    def of(cls, events: pa.Table, kinds: Sequence[str], fields: Sequence[str]) -> Control:
        """The events of ``kinds`` (table sorted by session, then seq) with ``fields``."""
        wanted = of_kinds(events.select(["session_id", "kind", *fields]), kinds)
        columns = {name: wanted.column(name).to_pylist() for name in wanted.column_names}
        sids = columns["session_id"]
        edges = [i for i in range(1, len(sids)) if sids[i] != sids[i - 1]]
        bounds = [0, *edges, len(sids)] if sids else [0]
        return cls(columns, [(sids[a], a, b) for a, b in itertools.pairwise(bounds)])


def _event_time(time_s: float, at_s: float | None) -> float:
    """When an event happened: its ``at_s`` when the adapter timed it earlier than its frame
    (speech timed from the audio), else its frame's time."""
    return time_s if at_s is None or math.isnan(at_s) else float(at_s)


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


def walk_turns(control: Control, lo: int, hi: int) -> list[dict[str, Any]]:
    """The turns of one session from its control events (:data:`CONTROL_KINDS`, rows ``lo`` to
    ``hi`` of ``control``): a turn opens when the user's input ends (server VAD, a commit, or a
    request for a reply) and takes the oldest reply not yet bound."""
    c = control.columns
    kinds, times, seqs, reply_ids, item_ids = (
        c[k] for k in ("kind", "time_s", "seq", "reply_id", "item_id")
    )
    stream_ms, audio_ms = c["stream_ms"], c["audio_ms"]
    answered_items = {
        item_ids[i]
        for i in range(lo, hi)
        if item_ids[i] is not None
        and (
            (kinds[i] == Kind.REPLY_ITEM and c["stage"][i] == "added" and reply_ids[i] is not None)
            or kinds[i] == Kind.INPUT_COMMITTED
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

    for i in range(lo, hi):
        kind, time_s, seq = kinds[i], times[i], seqs[i]
        if kind == Kind.REPLY_START:
            if reply_ids[i] in started:
                continue
            started.add(reply_ids[i])
            # A reply answers the oldest turn still waiting; else none was seen (the server
            # spoke first, or the capture began mid-turn).
            turn = open_turns.pop(0) if open_turns else None
            if turn is None:
                turn = _new_turn(None, _NAN, seq)
                turns.append(turn)
            turn["response_id"] = reply_ids[i]
        elif kind == Kind.SPEECH_START:
            speech = {"time_s": _event_time(time_s, c["at_s"][i]), "stream_ms": stream_ms[i]}
        elif kind == Kind.SPEECH_END:
            stopped = _event_time(time_s, c["at_s"][i])
            turn = add(_new_turn("vad", stopped, seq))
            turn["speech_stopped_s"] = stopped
            turn["user_item_id"] = item_ids[i]
            if speech is not None:
                turn["speech_started_s"] = speech["time_s"]
                turn["user_audio_ms"] = stream_ms[i] - speech["stream_ms"]
            speech = None
        elif kind == Kind.INPUT_COMMITTED:
            item_id = item_ids[i]
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
                turn["user_audio_ms"] = audio_ms[i]
            turn["committed_s"] = time_s
            turn["user_item_id"] = item_id
            turn["user_item_kind"] = "message"
            if math.isnan(turn["user_audio_ms"]):
                turn["user_audio_ms"] = audio_ms[i]
        elif kind == Kind.ITEM:
            item_id = item_ids[i]
            if awaiting_ack and item_id and item_id not in answered_items:
                awaiting_ack.pop(0)["id"] = item_id
        elif kind == Kind.USER_AUDIO_COMMIT:
            turn = add(_new_turn("commit", time_s, seq))
            turn["user_audio_ms"] = audio_ms[i]
        elif kind == Kind.ITEM_CREATE:
            created = {"id": item_ids[i], "kind": c["item_kind"][i]}
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
