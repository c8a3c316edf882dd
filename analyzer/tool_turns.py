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

From the control events only (TOOL_CALL, ITEM_CREATE of a function_call_output, REPLY_START,
REPLY_END) and the turn rows' first audio, for every protocol whose adapter emits them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.kinds import Kind
from analyzer.turn_binding import Control

TOOL_TURN_COLUMNS: tuple[str, ...] = (
    "latency_answer_first_audio_ms",
    "tool_time_ms",
    "answer_response_id",
)
# A follow-up opened by the user speaking again is that new turn's reply, not the answer.
_USER_TRIGGERS = frozenset({"vad", "commit"})
_KINDS = frozenset({Kind.TOOL_CALL, Kind.ITEM_CREATE, Kind.REPLY_START, Kind.REPLY_END})


def tool_answers(control: Control) -> dict[tuple[str, str], dict[str, Any]]:
    """(session, calling reply id) -> ``{"call_s", "output_s", "answer_id"}`` for every reply
    that called a tool whose result the client sent, from a window's control events (at least
    TOOL_CALL, ITEM_CREATE, REPLY_START, REPLY_END with ``time_s``, ``reply_id``, ``item_kind``
    and ``call_id``; the audio chunks, most of the events, are never walked here)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for session_id, lo, hi in control.sessions:
        out.update(_session_answers(str(session_id), control.columns, lo, hi))
    return out


def _session_answers(
    session_id: str, c: Mapping[str, Sequence[Any]], lo: int, hi: int
) -> dict[tuple[str, str], dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}  # calling reply -> what we learn of it
    calling: dict[str, str] = {}  # call id -> its reply
    current: str | None = None  # the reply in progress
    waiting: list[str] = []  # replies whose tool results came, waiting for the answer
    kinds = c["kind"]
    for i in range(lo, hi):
        if kinds[i] not in _KINDS:  # the turns' other control events
            continue
        kind, time_s, call_id = kinds[i], float(c["time_s"][i]), c["call_id"][i]
        if kind == Kind.REPLY_START and c["reply_id"][i] is not None:
            current = str(c["reply_id"][i])
            for reply in waiting:
                calls[reply].setdefault("answer_id", current)
            waiting = []
        elif kind == Kind.REPLY_END:
            # A call after the reply ended is not its own (GPT-Live calls tools while the user
            # still speaks: that turn's reply answers, its first audio is its own latency).
            current = None
        elif kind == Kind.TOOL_CALL and current is not None and call_id is not None:
            calling[str(call_id)] = current
            calls.setdefault(current, {"call_s": time_s})
        elif (
            kind == Kind.ITEM_CREATE
            and c["item_kind"][i] == "function_call_output"
            and str(call_id) in calling
        ):
            reply = calling[str(call_id)]
            calls[reply]["output_s"] = time_s  # the last result: the answer needs them all
            if reply not in waiting:
                waiting.append(reply)
    return {(session_id, reply): found for reply, found in calls.items() if "output_s" in found}


def tool_turn_columns(control: Control, turns: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """:data:`TOOL_TURN_COLUMNS` of turns (``turns``: their ``session_id``, ``response_id``,
    ``trigger``, ``first_audio_s`` and ``turn_start_s`` columns) from their window's control
    events (:func:`tool_answers`); NaN / None where the turn called no tool."""
    answers = tool_answers(control)
    keys = list(zip(turns["session_id"], turns["response_id"], strict=True))
    triggers = dict(zip(keys, turns["trigger"], strict=True))
    first_audio = dict(zip(keys, turns["first_audio_s"], strict=True))
    out: dict[str, list[Any]] = {c: [] for c in TOOL_TURN_COLUMNS}
    for key, start in zip(keys, turns["turn_start_s"], strict=True):
        latency, tool_time, answer = math.nan, math.nan, None
        found = answers.get(key)
        if found is not None:
            tool_time = _ms(found["output_s"] - found["call_s"])
            answer = found.get("answer_id")
            if answer is not None and triggers.get((key[0], answer)) in _USER_TRIGGERS:
                answer = None
            heard = first_audio.get((key[0], answer)) if answer is not None else None
            if start is not None and heard is not None and not math.isnan(start):
                latency = _ms(heard - start)
        out["latency_answer_first_audio_ms"].append(latency)
        out["tool_time_ms"].append(tool_time)
        out["answer_response_id"].append(answer)
    return out


def _ms(seconds: float) -> float:
    return math.nan if math.isnan(seconds) else round(seconds * 1000, 3)
