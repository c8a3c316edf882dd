"""Analyze a capture session by session and build the JSON report of ``rt-analyze report``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analyzer.conversation import Conversation, build_conversation, build_conversations
from analyzer.formats import provider_of
from analyzer.latency import latency_dict, latency_stats, latency_summary, streaming_stats
from analyzer.pricing import Prices
from analyzer.protocol import dialect_of_event
from analyzer.reader import Capture
from analyzer.sizes import (
    session_cost,
    size_totals,
    sizes_by_event,
    sizes_by_session,
    token_totals,
)
from analyzer.turns import (
    TOKEN_COLUMNS,
    TURN_COLUMNS,
    _facts_get,
    build_turns,
    session_turns,
    turn_parts,
)

# Report turn latency keys -> turn table columns.
TURN_LATENCIES: dict[str, str] = {
    "response_created": "latency_response_created_ms",
    "first_transcript": "latency_first_transcript_ms",
    "first_audio": "latency_first_audio_ms",
    "first_text": "latency_first_text_ms",
    "response_done": "latency_response_done_ms",
    "transcription": "latency_transcription_ms",
    "perceived_first_audio": "perceived_first_audio_ms",
}


@dataclass
class SessionAnalysis:
    """Everything computed for one session."""

    session_id: str
    facts: dict[str, Any]
    dialect: str | None
    turns: pd.DataFrame
    conversation: Conversation
    sizes: pd.DataFrame  # sizes_by_event


def infer_dialect(frames: pd.DataFrame) -> str | None:
    """'beta' or 'ga' from the event types seen (the first dialect-only type wins), else None."""
    if frames.empty:
        return None
    for event_type in frames["event_type"].dropna().drop_duplicates():
        dialect = dialect_of_event(str(event_type))
        if dialect is not None:
            return dialect
    return None


def _clean(value: Any) -> Any:
    """Facts as plain JSON values: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def jsonable(value: Any) -> Any:
    """``value`` with NaN/NA as None and numpy types as Python types, ready for ``json.dumps``."""
    return _clean(value)


def analyze_session(session_frames: pd.DataFrame, facts: Mapping[Any, Any]) -> SessionAnalysis:
    """Conversation, turns and sizes of one session (pure)."""
    clean_facts = {str(k): _clean(v) for k, v in facts.items()}
    frames = session_frames.sort_values("seq", kind="stable").reset_index(drop=True)
    conversation = build_conversation(frames)
    turns = build_turns(frames, clean_facts, conversation.items)
    return SessionAnalysis(
        session_id=str(clean_facts.get("session_id")),
        facts=clean_facts,
        dialect=clean_facts.get("dialect") or infer_dialect(frames),
        turns=turns,
        conversation=conversation,
        sizes=sizes_by_event(frames),
    )


def analyze_capture(capture: Capture) -> Iterator[SessionAnalysis]:
    """:func:`analyze_session` for each session of a capture, in start order (the same results,
    computed for all sessions at once: each pandas operation runs once over the whole capture
    rather than once per session)."""
    sessions: list[dict[Any, Any]] = capture.sessions.to_dict("records")
    frames = _sorted_frames(capture.frames)
    if frames.empty:
        for facts in sessions:
            yield analyze_session(capture.frames.iloc[0:0], facts)
        return
    codes, uniques = pd.factorize(frames["session_id"], sort=False)
    session_ids = [str(u) for u in uniques]
    code_of = {sid: code for code, sid in enumerate(session_ids)}
    clean: list[dict[str, Any]] = [
        {str(k): _clean(v) for k, v in facts.items()} for facts in sessions
    ]
    providers = {code: provider_of(None, None) for code in range(len(session_ids))}
    for facts in clean:
        code = code_of.get(str(facts.get("session_id")))
        if code is not None:
            providers[code] = provider_of(_facts_get(facts, "host"), _facts_get(facts, "path"))
    codes = np.asarray(codes, dtype=np.intp)
    parts = turn_parts(frames, codes, providers)
    conversations = build_conversations(frames, codes, session_ids)
    sizes = sizes_by_session(frames)
    dialects = _dialects(frames, codes)
    empty = capture.frames.iloc[0:0]
    for facts, clean_facts in zip(sessions, clean, strict=True):
        sid = str(facts["session_id"])
        code = code_of.get(sid)
        if code is None:
            yield analyze_session(empty, facts)
            continue
        conversation = conversations[code]
        yield SessionAnalysis(
            session_id=str(clean_facts.get("session_id")),
            facts=clean_facts,
            dialect=clean_facts.get("dialect") or dialects.get(code),
            turns=session_turns(parts, code, session_ids[code], conversation.items),
            conversation=conversation,
            sizes=sizes[session_ids[code]],
        )


def _sorted_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` sorted by session, then seq (stable), with a default index."""
    if frames.empty:
        return frames
    sids = frames["session_id"].astype(object).to_numpy()
    seqs = frames["seq"].to_numpy()
    same = sids[1:] == sids[:-1]
    try:
        ordered = bool(np.all(same | (sids[1:] > sids[:-1])))
    except TypeError:  # ids of mixed types: let pandas sort them
        ordered = False
    ordered = ordered and bool(np.all(~same | (seqs[1:] >= seqs[:-1])))
    if not ordered:
        frames = frames.sort_values(["session_id", "seq"], kind="stable")
    index = frames.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frames
    return frames.reset_index(drop=True)


def _dialects(frames: pd.DataFrame, codes: np.ndarray) -> dict[int, str]:
    """:func:`infer_dialect` of each session (by code) that has one."""
    known = frames["event_type"].notna().to_numpy()
    pairs = pd.DataFrame(
        {"s": codes[known], "t": frames["event_type"].to_numpy()[known]}
    ).drop_duplicates()
    found: dict[int, str] = {}
    for code, event_type in zip(pairs["s"].tolist(), pairs["t"].tolist(), strict=True):
        if code not in found:
            dialect = dialect_of_event(str(event_type))
            if dialect is not None:
                found[code] = dialect
    return found


def all_turns(analyses: list[SessionAnalysis]) -> pd.DataFrame:
    """The turn tables of all sessions, one after the other."""
    tables = [a.turns for a in analyses if len(a.turns)]
    if not tables:
        return pd.DataFrame(columns=list(TURN_COLUMNS))
    return pd.concat(tables, ignore_index=True)


def _usage(row: Mapping[Any, Any]) -> dict[str, int | None] | None:
    if pd.isna(row["total_tokens"]):
        return None
    return {c: None if pd.isna(row[c]) else int(row[c]) for c in TOKEN_COLUMNS}


def _num(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float | np.floating):
        return float(value)
    return _clean(value)


def _opt(value: Any) -> Any:
    """A turn cell: NaN (pandas' missing string) becomes None."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return _clean(value)


def _latency_keys(stats: dict[str, Any]) -> dict[str, Any]:
    """Latency summaries keyed like a turn's ``latency_ms`` (``first_audio``...)."""
    return {key: stats[column] for key, column in TURN_LATENCIES.items() if column in stats}


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """``table.to_dict("records")``, faster (values as ``Series.tolist`` gives them)."""
    if not len(table):
        return []
    columns = [str(c) for c in table.columns]
    rows: list[list[Any]] = table.to_numpy(dtype=object).tolist()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def turn_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """One turn of the report."""
    return {
        "index": int(row["index"]),
        "trigger": _opt(row["trigger"]),
        "user_item_id": _opt(row["user_item_id"]),
        "user_item_kind": _opt(row["user_item_kind"]),
        "response_id": _opt(row["response_id"]),
        "assistant_item_id": _opt(row["assistant_item_id"]),
        "status": _opt(row["status"]),
        "status_reason": _opt(row["status_reason"]),
        "interrupted": bool(row["interrupted"]),
        "played_ms": _num(row["played_ms"]),
        "user_transcript": _opt(row["user_transcript"]),
        "assistant_transcript": _opt(row["assistant_transcript"]),
        "assistant_text": _opt(row["assistant_text"]),
        "turn_start_s": _num(row["turn_start_s"]),
        "latency_ms": {key: _num(row[column]) for key, column in TURN_LATENCIES.items()},
        "silence_duration_ms": _num(row["silence_duration_ms"]),
        "user_audio_ms": _num(row["user_audio_ms"]),
        "reply_audio_bytes": int(row["reply_audio_bytes"]),
        "reply_audio_ms": _num(row["reply_audio_ms"]),
        "stream_ratio": _num(row["stream_ratio"]),
        "would_stall": _opt(row["would_stall"]),
        "stall_count": _num(row["stall_count"]),
        "usage": _usage(row),
        "function_calls": [str(name) for name in row["function_calls"]],
    }


def session_dict(
    analysis: SessionAnalysis, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """One session of the report."""
    facts = analysis.facts
    turns = analysis.turns
    start, end = facts.get("start_s"), facts.get("end_s")
    return {
        "session_id": analysis.session_id,
        "run_id": facts.get("run_id"),
        "dialect": analysis.dialect,
        "model": facts.get("model"),
        "provider": provider_of(facts.get("host"), facts.get("path")),
        "url": facts.get("url"),
        "start_s": start,
        "end_s": end,
        "duration_s": round(end - start, 3) if start is not None and end is not None else None,
        "close_code": facts.get("close_code"),
        "close_reason": facts.get("close_reason"),
        "audio_kept": facts.get("audio_kept"),
        "turns": [turn_dict(row) for row in records(turns)],
        "sizes": size_totals(analysis.sizes),
        "usage": token_totals(turns),
        "cost": session_cost(turns, facts.get("model"), prices),
        "latency_ms": _latency_keys(latency_stats(turns)),
        "streaming": streaming_stats(turns),
        "items": len(analysis.conversation.items),
        "errors": [
            {k: _opt(v) for k, v in e.items()} for e in records(analysis.conversation.errors)
        ],
        "unknown_events": dict(analysis.conversation.unknown_events),
        "problems": dict(analysis.conversation.problems),
    }


def summarize(
    analyses: list[SessionAnalysis], sessions: list[dict[str, Any]], capture: Capture | None
) -> dict[str, Any]:
    """The ``summary`` of the report: every session together."""
    turns = all_turns(analyses)
    by_event = pd.concat([a.sizes for a in analyses], ignore_index=True) if analyses else None
    costs = [s["cost"]["usd"] for s in sessions]
    dialects: dict[str, int] = {}
    for s in sessions:
        key = s["dialect"] or "unknown"
        dialects[key] = dialects.get(key, 0) + 1
    return {
        "sessions": len(sessions),
        "turns": len(turns),
        "interrupted_turns": int(turns["interrupted"].sum()) if len(turns) else 0,
        "errors": sum(len(s["errors"]) for s in sessions),
        "dialects": dialects,
        "sizes": size_totals(by_event) if by_event is not None and len(by_event) else None,
        "usage": token_totals(turns),
        "cost_usd": round(sum(c for c in costs if c is not None), 6)
        if any(c is not None for c in costs)
        else None,
        "cost_unpriced_sessions": sum(1 for c in costs if c is None),
        "latency_ms": _latency_keys(latency_dict(latency_summary(turns, per_session=False))),
        "streaming": streaming_stats(turns),
        "sources": [str(p) for p in capture.sources] if capture is not None else [],
        "warnings": list(capture.warnings) if capture is not None else [],
    }


def build_report(capture: Capture, prices: Mapping[str, Prices] | None = None) -> dict[str, Any]:
    """``{"sessions": [...], "summary": {...}}``: every session's turns (ids, status,
    transcripts, latencies, usage), sizes, usage, cost estimate and errors; plain JSON values
    (no NaN: what does not apply is None)."""
    analyses = list(analyze_capture(capture))
    sessions = [session_dict(a, prices) for a in analyses]
    report = {"sessions": sessions, "summary": summarize(analyses, sessions, capture)}
    cleaned: dict[str, Any] = jsonable(report)
    return cleaned
