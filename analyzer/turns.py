"""One session's turns: each user input, the response it triggered, and their timing and usage.

:func:`build_turns` is a pure function of one session's frames (and its facts), so it can run per
session anywhere (pandas here, Spark ``applyInPandas`` later). Audio deltas are only counted and
timed from their columns; their JSON is never parsed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from analyzer.conversation import (
    TRANSCRIPTION_COMPLETED,
    conversation_items,
    parse_event,
)
from analyzer.formats import AudioFormat, format_changes, provider_of
from analyzer.frameview import FrameView
from analyzer.groups import Groups, factorize
from analyzer.lazy import LazyModule
from analyzer.protocol import (
    AUDIO_TRANSCRIPT_DELTA_EVENTS,
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    SERVER_AUDIO_EVENTS,
    TEXT_DELTA_EVENTS,
)

if TYPE_CHECKING:
    import pandas as pd
pd = LazyModule("pandas")

TIME_COLUMNS: tuple[str, ...] = (
    "speech_started_s",
    "speech_stopped_s",
    "committed_s",
    "response_create_s",  # the client's response.create, when it asked for this turn's reply
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
)
TOKEN_COLUMNS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "input_cached_text_tokens",  # GA's cached_tokens_details, NaN when not reported
    "input_cached_audio_tokens",
)
TURN_COLUMNS: tuple[str, ...] = (
    "session_id",
    "index",
    "trigger",  # vad, commit, response.create, or None (a response we saw no trigger for)
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
)

INTERRUPT_REASONS = frozenset({"turn_detected", "client_cancelled"})
# Arrival jitter below this is float noise, not a gap in playback.
_STALL_TOLERANCE_MS = 1e-3

_CONFIG_EVENTS = CONFIG_EVENTS
_SERVER_CONTROL = frozenset(
    {
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        *ITEM_CREATED_EVENTS,
    }
)
_CLIENT_CONTROL = frozenset(
    {
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "conversation.item.create",
        "response.create",
    }
)
_NAN = float("nan")


def _latency_ms(end_s: float, start_s: float) -> float:
    """Milliseconds between two capture times, rounded to the microsecond (float noise)."""
    if math.isnan(end_s) or math.isnan(start_s):
        return _NAN
    return round((end_s - start_s) * 1000.0, 3)


def _facts_get(facts: Mapping[Any, Any] | None, key: str) -> Any:
    if facts is None:
        return None
    value = facts.get(key)
    return None if isinstance(value, float) and math.isnan(value) else value


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _NAN


# --- session configuration over time ---------------------------------------------------------


def _silence_ms(session: dict[str, Any]) -> tuple[bool, float]:
    """(says anything, silence_duration_ms or NaN) of a session object, beta or GA."""
    audio = session.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("input"), dict):
        holder: dict[str, Any] = audio["input"]
    else:
        holder = session
    if "turn_detection" not in holder:
        return False, _NAN
    detection = holder["turn_detection"]
    if not isinstance(detection, dict):
        return True, _NAN
    return True, _num(detection.get("silence_duration_ms"))


def _config_timelines(
    view: FrameView, providers: Mapping[int, str]
) -> tuple[
    dict[int, list[tuple[int, AudioFormat, AudioFormat]]], dict[int, list[tuple[int, float]]]
]:
    """Per session: audio formats in force, and the VAD silence the server confirmed, by seq."""
    rows_by_session = view.rows_by_session(
        view.of_types(_CONFIG_EVENTS), ("seq", "event_type", "content")
    )
    changes: dict[int, list[tuple[int, AudioFormat, AudioFormat]]] = {}
    silences: dict[int, list[tuple[int, float]]] = {}
    for code, provider in providers.items():
        rows = rows_by_session.get(code, [])
        changes[code] = format_changes(rows, provider)
        silence: list[tuple[int, float]] = [(-1, _NAN)]
        for seq, event_type, content in rows:
            if event_type.endswith(".update"):
                continue  # the client's wish; the server's echo says what is in force
            session = parse_event(content).get("session")
            if isinstance(session, dict):
                says, value = _silence_ms(session)
                if says:
                    silence.append((int(seq), value))
        silences[code] = silence
    return changes, silences


def _value_at(timeline: list[tuple[int, float]], seq: float) -> float:
    current = timeline[0][1]
    for start, value in timeline:
        if start > seq:
            break
        current = value
    return current


def _bytes_per_ms(
    changes: list[tuple[int, AudioFormat, AudioFormat]], seqs: np.ndarray, output: bool
) -> np.ndarray:
    """Bytes per millisecond of the format in force at each seq (NaN for compressed audio)."""
    starts = np.array([c[0] for c in changes])
    rates = np.array(
        [(c[2] if output else c[1]).bytes_per_second or _NAN for c in changes],
        dtype=float,
    )
    idx = np.searchsorted(starts, seqs, side="right") - 1
    result: np.ndarray = rates[np.clip(idx, 0, len(rates) - 1)] / 1000.0
    return result


def _bytes_per_ms_at(
    changes: list[tuple[int, AudioFormat, AudioFormat]], seq: int, output: bool
) -> np.float64:
    """:func:`_bytes_per_ms` at one seq (as numpy computes it, so results round alike)."""
    index = max(0, bisect_right([c[0] for c in changes], seq) - 1)
    change = changes[min(index, len(changes) - 1)]
    rate = (change[2] if output else change[1]).bytes_per_second or _NAN
    return np.float64(float(rate)) / 1000.0


# --- responses --------------------------------------------------------------------------------
# The helpers below work on the frames of one or many sessions at once (sorted by session, then
# seq, with a default index): ``codes`` numbers each frame's session (``pd.factorize``), and
# results are keyed by that number. Grouping by (session, key) gives each session exactly the
# values a one-session computation would.


def _response_of_audio(frames: pd.DataFrame, audio: pd.DataFrame) -> pd.Series:
    """Each audio delta's response: its own response_id, else the latest response started."""
    response = audio["response_id"]
    missing = response.isna()
    if not missing.any():
        return response
    server = frames[frames["direction"].eq("server") & frames["response_id"].notna()]
    starts = server.drop_duplicates("response_id")[["seq", "response_id"]]
    if starts.empty:
        return response
    found = pd.merge_asof(
        audio.loc[missing, ["seq"]].astype({"seq": "int64"}),
        starts.astype({"seq": "int64"}),
        on="seq",
        direction="backward",
    )
    filled = response.astype(object).copy()
    filled[missing] = found["response_id"].to_numpy()
    return filled


_AUDIO_STAT_COLUMNS: tuple[str, ...] = (
    "first_audio_s",
    "last_audio_s",
    "reply_audio_deltas",
    "reply_audio_bytes",
    "reply_audio_ms",
    "stream_ratio",
    "would_stall",
    "stall_count",
    "stall_ms",
)


def _audio_stats(
    view: FrameView,
    changes: Mapping[int, list[tuple[int, AudioFormat, AudioFormat]]],
) -> dict[tuple[int, str], dict[str, Any]]:
    """Per (session, response): first/last delta time, deltas, bytes, play time and streaming
    health.

    Playback that starts when the first delta arrives ends the i-th delta at
    ``C_i + max_{j<=i}(t_j - C_{j-1})`` (C = cumulative play time), so delta i arrives after the
    buffer ran dry exactly when ``t_i - C_{i-1}`` sets a new maximum; the excess is the stall.
    """
    mask = view.of_types(SERVER_AUDIO_EVENTS) & view.server
    if not mask.any():
        return {}
    sessions = view.codes[mask]
    seqs = view.column("seq")[mask]
    response_of = view.column("response_id")[mask]
    audio_bytes = view.column("audio_bytes")[mask].astype(float)
    time_s = view.column("time_s")[mask].astype(float)
    missing = ~view.present("response_id")[mask]
    responses, response_ids = view.numbered("response_id", mask)
    if missing.any():  # rare (deltas without a response id): pandas' merge_asof fills them
        audio = pd.DataFrame({"seq": seqs, "response_id": response_of})
        frames, codes = view.frames, view.codes
        filled = response_of.astype(object)
        for code in np.unique(sessions[missing]).tolist():
            in_session = sessions == code
            own = frames[codes == code]
            filled[in_session] = _response_of_audio(own, audio[in_session]).to_numpy()
        keep = pd.notna(filled)
        sessions, seqs, response_of = sessions[keep], seqs[keep], filled[keep]
        responses, response_ids = factorize(response_of)
        audio_bytes, time_s = audio_bytes[keep], time_s[keep]
        if not len(sessions):
            return {}
    rate = np.empty(len(sessions), dtype=float)
    bounds = np.flatnonzero(np.diff(sessions)) + 1
    for lo, hi in zip(
        np.concatenate([[0], bounds]).tolist(),
        np.concatenate([bounds, [len(sessions)]]).tolist(),
        strict=True,
    ):
        rate[lo:hi] = _bytes_per_ms(changes[int(sessions[lo])], seqs[lo:hi], output=True)
    groups = Groups.of(sessions.astype(np.int64) * len(response_ids) + responses)
    audio_bytes = np.where(np.isnan(audio_bytes), 0.0, audio_bytes)
    # Unknown rates (compressed audio) and hostile sizes give NaN and inf, as pandas gave.
    with np.errstate(divide="ignore", invalid="ignore"):
        ms = audio_bytes / rate
        first = groups.min(time_s)
        x = (time_s - groups.spread(first)) * 1000.0 - groups.cumsum_before(ms)
        previous_max = groups.previous_max(x)
        gap = np.where(np.isnan(previous_max), 0.0, x - previous_max)
        stall = gap > _STALL_TOLERANCE_MS
        last = groups.max(time_s)
        deltas = groups.sizes()
        unknown = groups.any(np.isnan(ms))
        reply_ms = np.where(unknown, np.nan, groups.sum(np.where(np.isnan(ms), 0.0, ms)))
        stream_ratio = np.round(reply_ms / ((last - first) * 1000.0 + reply_ms / deltas), 3)
        stall_count = groups.sum(stall.astype(np.int64))
        stall_ms = np.round(groups.sum(np.where(stall, gap, 0.0)), 3)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for key, row in zip(
        groups.keys.tolist(),
        zip(
            first.tolist(),
            last.tolist(),
            deltas.tolist(),
            groups.sum(audio_bytes).tolist(),
            np.round(reply_ms, 3).tolist(),
            stream_ratio.tolist(),
            stall_count.tolist(),
            stall_ms.tolist(),
            unknown.tolist(),
            strict=True,
        ),
        strict=True,
    ):
        session, response = divmod(key, len(response_ids))
        *values, count, stalled_ms, is_unknown = row
        found[(session, str(response_ids[response]))] = dict(
            zip(
                _AUDIO_STAT_COLUMNS,
                (
                    *values,
                    None if is_unknown else count > 0,
                    _NAN if is_unknown else float(count),
                    _NAN if is_unknown else stalled_ms,
                ),
                strict=True,
            )
        )
    return found


def _first_times(view: FrameView, types: frozenset[str], key: str) -> dict[tuple[int, str], float]:
    """Time of the first server frame of ``types`` per (session, ``key``)."""
    mask = view.server & view.of_types(types) & view.present(key)
    if not mask.any():
        return {}
    values, names = view.numbered(key, mask)
    groups = Groups.of(view.codes[mask].astype(np.int64) * len(names) + values)
    first = groups.min(view.column("time_s")[mask].astype(float)).tolist()
    found: dict[tuple[int, str], float] = {}
    for pair, time_s in zip(groups.keys.tolist(), first, strict=True):
        code, value = divmod(pair, len(names))
        found[(code, str(names[value]))] = time_s
    return found


def _usage_columns(usage: Any) -> dict[str, float]:
    out = {c: _NAN for c in TOKEN_COLUMNS}
    if not isinstance(usage, dict):
        return out
    out["input_tokens"] = _num(usage.get("input_tokens"))
    out["output_tokens"] = _num(usage.get("output_tokens"))
    out["total_tokens"] = _num(usage.get("total_tokens"))
    inp = usage.get("input_token_details")
    if isinstance(inp, dict):
        out["input_text_tokens"] = _num(inp.get("text_tokens"))
        out["input_audio_tokens"] = _num(inp.get("audio_tokens"))
        out["input_cached_tokens"] = _num(inp.get("cached_tokens"))
        cached = inp.get("cached_tokens_details")
        if isinstance(cached, dict):
            out["input_cached_text_tokens"] = _num(cached.get("text_tokens"))
            out["input_cached_audio_tokens"] = _num(cached.get("audio_tokens"))
    outp = usage.get("output_token_details")
    if isinstance(outp, dict):
        out["output_text_tokens"] = _num(outp.get("text_tokens"))
        out["output_audio_tokens"] = _num(outp.get("audio_tokens"))
    return out


_RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
    }
)


def _response_facts(view: FrameView) -> dict[int, dict[str, dict[str, Any]]]:
    """Per session, per response id: created/done times, status, usage, its assistant item,
    function calls. Parses only response.created/.done and output_item events."""
    mask = view.server & view.present("response_id") & view.of_types(_RESPONSE_EVENTS)
    by_session: dict[int, dict[str, dict[str, Any]]] = {}
    for code, time_s, event_type, response_id, content in zip(
        view.codes[mask].tolist(),
        *(view.values(c, mask) for c in ("time_s", "event_type", "response_id", "content")),
        strict=True,
    ):
        facts = by_session.setdefault(code, {})
        fact = facts.setdefault(str(response_id), {"output_items": [], "calls": []})
        if event_type == "response.created":
            fact.setdefault("response_created_s", float(time_s))
            continue
        event = parse_event(content)
        if event_type == "response.done":
            response = event.get("response")
            response = response if isinstance(response, dict) else {}
            fact["response_done_s"] = float(time_s)
            fact["status"] = (
                response.get("status") if isinstance(response.get("status"), str) else None
            )
            details = response.get("status_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            fact["status_reason"] = reason if isinstance(reason, str) else None
            fact["usage"] = _usage_columns(response.get("usage"))
            output = response.get("output")
            fact["done_items"] = (
                [o for o in output if isinstance(o, dict)] if isinstance(output, list) else []
            )
        else:
            item = event.get("item")
            if isinstance(item, dict):
                fact["output_items"].append(item)
    for facts in by_session.values():
        _finish_response_facts(facts)
    return by_session


def _finish_response_facts(facts: dict[str, dict[str, Any]]) -> None:
    for fact in facts.values():
        items = fact.get("done_items") or fact["output_items"]
        message = next(
            (
                i.get("id")
                for i in fact["output_items"] + items
                if i.get("type") == "message" and isinstance(i.get("id"), str)
            ),
            None,
        )
        fact["assistant_item_id"] = message
        names: list[str] = []
        seen: set[str] = set()
        for item in items:
            if item.get("type") == "function_call":
                key = str(item.get("call_id") or item.get("id") or len(names))
                if key not in seen and isinstance(item.get("name"), str):
                    seen.add(key)
                    names.append(item["name"])
        fact["function_calls"] = names


# --- the turn state machine -------------------------------------------------------------------


def _new_turn(trigger: str | None, start_s: float) -> dict[str, Any]:
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
        "audio_start_ms": _NAN,
        "audio_end_ms": _NAN,
        "user_audio_ms": _NAN,
        "seq": -1,
    }


def _find_turns(
    view: FrameView, changes: Mapping[int, list[tuple[int, AudioFormat, AudioFormat]]]
) -> dict[int, list[dict[str, Any]]]:
    """Per session: walk the control events in arrival order; bind each response to the oldest
    open turn."""
    codes = view.codes
    is_server = view.server
    append_bytes = np.where(
        view.of_types(CLIENT_AUDIO_EVENTS) & ~is_server,
        np.nan_to_num(view.column("audio_bytes").astype(float)),
        0.0,
    )
    appended = Groups.of(codes).cumsum(append_bytes)
    control = (is_server & view.of_types(_SERVER_CONTROL)) | (
        ~is_server & view.of_types(_CLIENT_CONTROL)
    )
    has_response = is_server & view.present("response_id")
    positions = np.flatnonzero(has_response)
    responses, names = view.numbered("response_id", positions)
    _, first = np.unique(
        codes[positions].astype(np.int64) * max(len(names), 1) + responses, return_index=True
    )
    is_start = np.zeros(len(view), dtype=bool)
    is_start[positions[first]] = True
    output_items: dict[int, set[Any]] = {}
    has_item = view.present("item_id")
    added = has_response & view.of_types({"response.output_item.added"}) & has_item
    for code, item_id in zip(codes[added].tolist(), view.values("item_id", added), strict=True):
        output_items.setdefault(code, set()).add(item_id)
    committed_items: dict[int, set[Any]] = {}
    committed = view.of_types({"input_audio_buffer.committed"}) & has_item
    for code, item_id in zip(
        codes[committed].tolist(), view.values("item_id", committed), strict=True
    ):
        committed_items.setdefault(code, set()).add(item_id)
    wanted = control | is_start
    columns = ["seq", "time_s", "direction", "event_type", "item_id", "response_id", "content"]
    rows = list(
        zip(
            *(view.values(c, wanted) for c in columns),
            appended[wanted].tolist(),
            is_start[wanted].tolist(),
            strict=True,
        )
    )
    row_codes = codes[wanted].tolist()
    found: dict[int, list[dict[str, Any]]] = {}
    lo = 0
    while lo < len(rows):
        code = row_codes[lo]
        hi = lo
        while hi < len(rows) and row_codes[hi] == code:
            hi += 1
        found[code] = _walk_turns(
            rows[lo:hi],
            changes[code],
            output_items.get(code, set()),
            committed_items.get(code, set()),
        )
        lo = hi
    return found


def _walk_turns(
    rows: list[tuple[Any, ...]],
    changes: list[tuple[int, AudioFormat, AudioFormat]],
    output_items: set[Any],
    committed_items: set[Any],
) -> list[dict[str, Any]]:
    """The turn state machine over one session's control rows (seq, time_s, direction,
    event_type, item_id, response_id, content, audio bytes appended so far, starts a
    response)."""
    turns: list[dict[str, Any]] = []
    open_turns: list[dict[str, Any]] = []
    speech: dict[str, Any] | None = None
    client_items: list[dict[str, Any]] = []  # created by the client since the last response.create
    awaiting_ack: list[dict[str, Any]] = []
    buffer_from = 0.0  # appended bytes at the last buffer reset

    def buffer_ms(appended: float, seq: int) -> float:
        nonlocal buffer_from
        size = float(appended) - buffer_from
        buffer_from = float(appended)
        rate = _bytes_per_ms_at(changes, seq, output=False)
        return round(size / rate, 3) if size > 0 else _NAN

    def add(turn: dict[str, Any], seq: int) -> dict[str, Any]:
        turn["seq"] = seq
        turns.append(turn)
        open_turns.append(turn)
        return turn

    def bind(response_id: str, seq: int) -> None:
        """A response started: it answers the oldest turn still waiting for one."""
        if open_turns:
            turn = open_turns.pop(0)
        else:  # no trigger seen (server-initiated, or the capture began mid-turn)
            turn = _new_turn(None, _NAN)
            turn["seq"] = seq
            turns.append(turn)
        turn["response_id"] = response_id

    for seq, time_s, direction, event_type, item_id, response_id, content, appended, start in rows:
        item_id = item_id if isinstance(item_id, str) else None
        server = direction == "server"
        if server and start:
            bind(response_id, seq)
        if server and event_type == "input_audio_buffer.speech_started":
            event = parse_event(content)
            speech = {"time_s": time_s, "audio_start_ms": _num(event.get("audio_start_ms"))}
        elif server and event_type == "input_audio_buffer.speech_stopped":
            event = parse_event(content)
            turn = add(_new_turn("vad", time_s), seq)
            turn["speech_stopped_s"] = time_s
            turn["audio_end_ms"] = _num(event.get("audio_end_ms"))
            turn["user_item_id"] = item_id
            if speech is not None:
                turn["speech_started_s"] = speech["time_s"]
                turn["audio_start_ms"] = speech["audio_start_ms"]
                turn["user_audio_ms"] = turn["audio_end_ms"] - speech["audio_start_ms"]
            speech = None
        elif server and event_type == "input_audio_buffer.committed":
            # The latest open turn this commit ends (a loop: mypyc cannot compile a generator
            # over reversed() here).
            turn = None
            for open_turn in open_turns[::-1]:
                if (
                    open_turn["trigger"] in ("vad", "commit")
                    and math.isnan(open_turn["committed_s"])
                    and open_turn["user_item_id"] in (None, item_id)
                ):
                    turn = open_turn
                    break
            size_ms = buffer_ms(appended, seq)
            if turn is None:  # committed with no speech_stopped seen: still a VAD turn
                turn = add(_new_turn("vad", time_s), seq)
                turn["user_audio_ms"] = size_ms
            turn["committed_s"] = time_s
            turn["user_item_id"] = item_id
            turn["user_item_kind"] = "message"
            if math.isnan(turn["user_audio_ms"]):
                turn["user_audio_ms"] = size_ms
        elif server and event_type == "input_audio_buffer.cleared":
            buffer_ms(appended, seq)
        elif server and event_type in ITEM_CREATED_EVENTS:
            if awaiting_ack and item_id and item_id not in output_items | committed_items:
                awaiting_ack.pop(0)["id"] = item_id
        elif not server and event_type == "input_audio_buffer.commit":
            turn = add(_new_turn("commit", time_s), seq)
            turn["user_audio_ms"] = buffer_ms(appended, seq)
        elif not server and event_type == "input_audio_buffer.clear":
            buffer_ms(appended, seq)
        elif not server and event_type == "conversation.item.create":
            item = parse_event(content).get("item")
            item = item if isinstance(item, dict) else {}
            created = {
                "id": item.get("id") if isinstance(item.get("id"), str) and item["id"] else None,
                "kind": item.get("type") if isinstance(item.get("type"), str) else None,
            }
            client_items.append(created)
            if created["id"] is None:
                awaiting_ack.append(created)
        elif not server and event_type == "response.create":
            newest = open_turns[-1] if open_turns else None
            if (
                newest is not None
                and newest["trigger"] in ("vad", "commit")
                and not client_items
                and math.isnan(newest["response_create_s"])
            ):
                newest["response_create_s"] = time_s
            else:
                turn = add(_new_turn("response.create", time_s), seq)
                turn["response_create_s"] = time_s
                if client_items:
                    turn["_client_item"] = client_items[-1]
            client_items = []
    for turn in turns:
        client_item = turn.pop("_client_item", None)
        if client_item is not None:
            turn["user_item_id"] = client_item["id"]
            turn["user_item_kind"] = client_item["kind"]
    return turns


@dataclass
class TurnParts:
    """What turn tables are built from, computed for many sessions at once (keyed by the
    session's code, see :func:`turn_parts`)."""

    silence: dict[int, list[tuple[int, float]]]
    turns: dict[int, list[dict[str, Any]]]
    responses: dict[int, dict[str, dict[str, Any]]]
    audio: dict[tuple[int, str], dict[str, Any]]
    first_transcript: dict[tuple[int, str], float]
    first_text: dict[tuple[int, str], float]
    transcribed: dict[tuple[int, str], float]
    delta_items: dict[tuple[int, str], str]


def turn_parts(
    frames: pd.DataFrame | FrameView, codes: np.ndarray, providers: Mapping[int, str]
) -> TurnParts:
    """The pieces of the turn tables of the sessions in ``frames`` (sorted by session, then seq;
    default index), computed once for all of them. ``codes[i]`` numbers frame i's session;
    ``providers`` gives each session code's provider."""
    view = frames if isinstance(frames, FrameView) else FrameView(frames, codes)
    changes, silence = _config_timelines(view, providers)
    mask = (
        view.server
        & view.of_types(SERVER_AUDIO_EVENTS | AUDIO_TRANSCRIPT_DELTA_EVENTS)
        & view.present("response_id")
        & view.present("item_id")
    )
    # Each response's first delta names its item.
    delta_items: dict[tuple[int, str], str] = {}
    positions = np.flatnonzero(mask)
    responses, names = view.numbered("response_id", positions)
    _, firsts = np.unique(
        view.codes[positions].astype(np.int64) * max(len(names), 1) + responses,
        return_index=True,
    )
    firsts = positions[np.sort(firsts)]
    for code, response_id, item_id in zip(
        view.codes[firsts].tolist(),
        view.column("response_id")[firsts].tolist(),
        view.column("item_id")[firsts].tolist(),
        strict=True,
    ):
        delta_items[(code, str(response_id))] = str(item_id)
    return TurnParts(
        silence=silence,
        turns=_find_turns(view, changes),
        responses=_response_facts(view),
        audio=_audio_stats(view, changes),
        first_transcript=_first_times(view, AUDIO_TRANSCRIPT_DELTA_EVENTS, "response_id"),
        first_text=_first_times(view, TEXT_DELTA_EVENTS, "response_id"),
        transcribed=_first_times(view, frozenset({TRANSCRIPTION_COMPLETED}), "item_id"),
        delta_items=delta_items,
    )


def build_turns(
    session_frames: pd.DataFrame,
    session_facts: Mapping[Any, Any] | None = None,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The turn table of one session (columns :data:`TURN_COLUMNS`, see ``docs/contracts.md``).

    ``session_facts`` is the session's row of ``Capture.sessions`` (host and path pick the
    provider's audio defaults); ``items`` is its :func:`analyzer.conversation.conversation_items`
    when already computed.
    """
    if session_frames.empty:
        return turn_table([])
    frames = session_frames.sort_values("seq", kind="stable").reset_index(drop=True)
    session_id = str(frames["session_id"].iloc[0])
    provider = provider_of(_facts_get(session_facts, "host"), _facts_get(session_facts, "path"))
    parts = turn_parts(frames, np.zeros(len(frames), dtype=np.intp), {0: provider})
    if items is None:
        items = conversation_items(frames)
    return turn_table(session_turn_rows(parts, 0, session_id, rows_of(items)))


def rows_of(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts (``to_dict("records")``, typed with ``str`` keys)."""
    return cast(list[dict[str, Any]], table.to_dict("records"))


def session_turn_rows(
    parts: TurnParts, code: int, session_id: str, item_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The turns of session ``code`` of ``parts`` as rows (dicts of :data:`TURN_COLUMNS`;
    :func:`turn_table` makes them the table :func:`build_turns` gives). ``item_rows`` are the
    session's conversation items (:attr:`analyzer.conversation.Conversation.item_rows`)."""
    silence = parts.silence[code]
    turns = parts.turns.get(code, [])
    responses = parts.responses.get(code, {})
    by_item = {str(item["item_id"]): item for item in item_rows}

    def item_value(item_id: Any, column: str) -> Any:
        if not isinstance(item_id, str) or item_id not in by_item:
            return None
        value = by_item[item_id].get(column)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    rows = []
    for index, turn in enumerate(turns, start=1):
        response_id = turn["response_id"]
        fact = responses.get(response_id, {}) if response_id else {}
        stats = parts.audio.get((code, response_id), {}) if response_id else {}
        start = turn["turn_start_s"]
        assistant_item_id = fact.get("assistant_item_id")
        if assistant_item_id is None and response_id:
            assistant_item_id = parts.delta_items.get((code, response_id))
        status = fact.get("status")
        reason = fact.get("status_reason")
        truncated = bool(item_value(assistant_item_id, "truncated"))
        played = item_value(assistant_item_id, "truncated_audio_end_ms")
        user_item = turn["user_item_id"]
        kind = turn["user_item_kind"] or item_value(user_item, "kind")
        user_transcript = item_value(user_item, "transcript")
        if user_transcript is None and kind == "message":
            user_transcript = item_value(user_item, "text")
        silence_ms = _value_at(silence, turn["seq"]) if turn["trigger"] == "vad" else _NAN
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
            "played_ms": _num(played),
            "user_transcript": user_transcript,
            "assistant_transcript": item_value(assistant_item_id, "transcript"),
            "assistant_text": item_value(assistant_item_id, "text"),
            "speech_started_s": turn["speech_started_s"],
            "speech_stopped_s": turn["speech_stopped_s"],
            "committed_s": turn["committed_s"],
            "response_create_s": turn["response_create_s"],
            "response_created_s": fact.get("response_created_s", _NAN),
            "first_transcript_s": parts.first_transcript.get((code, response_id), _NAN),
            "first_audio_s": stats.get("first_audio_s", _NAN),
            "first_text_s": parts.first_text.get((code, response_id), _NAN),
            "last_audio_s": stats.get("last_audio_s", _NAN),
            "response_done_s": fact.get("response_done_s", _NAN),
            "transcription_s": (
                parts.transcribed.get((code, user_item), _NAN) if user_item else _NAN
            ),
            "turn_start_s": start,
            "silence_duration_ms": silence_ms,
            "user_audio_ms": turn["user_audio_ms"],
            "reply_audio_deltas": float(stats.get("reply_audio_deltas", 0)),
            "reply_audio_bytes": float(stats.get("reply_audio_bytes", 0)),
            "reply_audio_ms": stats.get("reply_audio_ms", _NAN) if stats else _NAN,
            "stream_ratio": stats.get("stream_ratio", _NAN),
            "would_stall": stats.get("would_stall"),
            "stall_count": stats.get("stall_count", _NAN),
            "stall_ms": stats.get("stall_ms", _NAN),
            **fact.get("usage", {c: _NAN for c in TOKEN_COLUMNS}),
            "function_calls": list(fact.get("function_calls", [])),
        }
        for column, source in (
            ("latency_response_created_ms", "response_created_s"),
            ("latency_first_transcript_ms", "first_transcript_s"),
            ("latency_first_audio_ms", "first_audio_s"),
            ("latency_first_text_ms", "first_text_s"),
            ("latency_response_done_ms", "response_done_s"),
        ):
            row[column] = _latency_ms(row[source], start)
        transcription_from = (
            row["speech_stopped_s"]
            if not math.isnan(row["speech_stopped_s"])
            else (start if turn["trigger"] == "commit" else row["committed_s"])
        )
        row["latency_transcription_ms"] = _latency_ms(row["transcription_s"], transcription_from)
        row["perceived_first_audio_ms"] = (
            round(row["latency_first_audio_ms"] + silence_ms, 3)
            if turn["trigger"] == "vad"
            else _NAN
        )
        rows.append(row)
    return rows


def turn_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn rows (of one session or many) as a table with :data:`TURN_COLUMNS` and their dtypes."""
    table = pd.DataFrame(rows, columns=list(TURN_COLUMNS))
    # Usually already float / bool: convert only the columns that are not (astype is costly).
    wanted: dict[str, Any] = dict.fromkeys((*TIME_COLUMNS, *LATENCY_COLUMNS, *TOKEN_COLUMNS), float)
    wanted["interrupted"] = bool
    dtypes = table.dtypes
    convert = {c: t for c, t in wanted.items() if dtypes[c] != np.dtype(t)}
    if convert:
        table = table.astype(convert)
    table["would_stall"] = pd.Series(
        [None if v is None or v is pd.NA else bool(v) for v in table["would_stall"].tolist()],
        index=table.index,
        dtype=object,
    )
    return table
