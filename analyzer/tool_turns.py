"""What the user waited through a tool call.

A turn whose reply calls a function has no audio of its own: the answer comes in the reply the
client asks for after sending the tool's result. Measured from the follow-up alone, the wait
starts at the client's ``response.create`` and hides the model's call and the tool's run
(663 ms waited on ga-voice, 261 ms shown). So the calling turn gets:

- ``latency_answer_first_audio_ms``: from its start (end of the user's speech) to the first
  audio of the reply that follows the tool's result: what the user waited;
- ``tool_time_ms``: from the model's call (the arguments' done event) to the client's
  ``function_call_output`` (the tool's own time, client included);
- ``answer_response_id``: that follow-up reply.

From the event table only (TOOL_CALL, ITEM_CREATE of a function_call_output, REPLY_START,
REPLY_END) and the turn rows' first audio, for every protocol whose adapter emits them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.kinds import Kind

TOOL_TURN_COLUMNS: tuple[str, ...] = (
    "latency_answer_first_audio_ms",
    "tool_time_ms",
    "answer_response_id",
)
# A follow-up opened by the user speaking again is that new turn's reply, not the answer.
_USER_TRIGGERS = frozenset({"vad", "commit"})
# Control events only: the answer's first audio is its turn row's (the audio chunks, most of the
# events, are never walked here).
_KINDS = (Kind.TOOL_CALL, Kind.ITEM_CREATE, Kind.REPLY_START, Kind.REPLY_END)
_FIELDS = ("session_id", "seq", "time_s", "kind", "reply_id", "item_kind", "call_id")


def tool_answers(events: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """(session, calling reply id) -> ``{"call_s", "output_s", "answer_id"}`` for every reply
    that called a tool whose result the client sent."""
    wanted = events.filter(pc.is_in(events["kind"], value_set=pa.array([str(k) for k in _KINDS])))
    rows = wanted.select(list(_FIELDS)).to_pylist()
    rows.sort(key=lambda r: (r["session_id"], r["seq"]))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for session_id, session_rows in _by_session(rows):
        out.update(_session_answers(session_id, session_rows))
    return out


def _by_session(rows: list[dict[str, Any]]) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["session_id"] != rows[start]["session_id"]:
            yield str(rows[start]["session_id"]), rows[start:i]
            start = i


def _session_answers(
    session_id: str, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str], dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}  # calling reply -> what we learn of it
    calling: dict[str, str] = {}  # call id -> its reply
    current: str | None = None  # the reply in progress
    waiting: list[str] = []  # replies whose tool results came, waiting for the answer
    for row in rows:
        kind, time_s = row["kind"], float(row["time_s"])
        if kind == Kind.REPLY_START and row["reply_id"] is not None:
            current = str(row["reply_id"])
            for reply in waiting:
                calls[reply].setdefault("answer_id", current)
            waiting = []
        elif kind == Kind.REPLY_END:
            # A call after the reply ended is not its own (GPT-Live calls tools while the user
            # still speaks: that turn's reply answers, its first audio is its own latency).
            current = None
        elif kind == Kind.TOOL_CALL and current is not None and row["call_id"] is not None:
            calling[str(row["call_id"])] = current
            calls.setdefault(current, {"call_s": time_s})
        elif (
            kind == Kind.ITEM_CREATE
            and row["item_kind"] == "function_call_output"
            and str(row["call_id"]) in calling
        ):
            reply = calling[str(row["call_id"])]
            calls[reply]["output_s"] = time_s  # the last result: the answer needs them all
            if reply not in waiting:
                waiting.append(reply)
    return {(session_id, reply): found for reply, found in calls.items() if "output_s" in found}


def add_tool_turn_columns(turn_rows: Mapping[str, list[dict[str, Any]]], events: pa.Table) -> None:
    """Fill :data:`TOOL_TURN_COLUMNS` of every turn row (in place; NaN / None where the turn
    called no tool)."""
    answers = tool_answers(events) if events.num_rows else {}
    for session_id, rows in turn_rows.items():
        triggers = {row["response_id"]: row["trigger"] for row in rows}
        first_audio = {row["response_id"]: row["first_audio_s"] for row in rows}
        for row in rows:
            row["latency_answer_first_audio_ms"] = math.nan
            row["tool_time_ms"] = math.nan
            row["answer_response_id"] = None
            found = answers.get((session_id, row["response_id"]))
            if found is None:
                continue
            row["tool_time_ms"] = _ms(found["output_s"] - found["call_s"])
            answer = found.get("answer_id")
            if answer is None or triggers.get(answer) in _USER_TRIGGERS:
                continue
            row["answer_response_id"] = answer
            start = row.get("turn_start_s")
            heard = first_audio.get(answer)
            if start is not None and heard is not None and not math.isnan(start):
                row["latency_answer_first_audio_ms"] = _ms(heard - start)


def _ms(seconds: float) -> float:
    return math.nan if math.isnan(seconds) else round(seconds * 1000, 3)
