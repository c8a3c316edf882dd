"""Analyze a capture session by session and build the JSON report of ``rt-analyze report``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.conversation import Conversation, conversations
from analyzer.events import event_table, frames_to_arrow
from analyzer.formats import provider_of
from analyzer.identity import iso_ms, provider_session_ids
from analyzer.jsonio import is_na, plain
from analyzer.latency import (
    LATENCY_METRICS,
    TurnColumns,
    columns_of,
    latency_stats,
    row_count,
    streaming_stats,
)
from analyzer.pricing import Prices
from analyzer.protocol import dialect_of_event
from analyzer.reader import Capture, Sessions
from analyzer.report_transcription import (
    session_transcription,
    summary_transcription,
    transcription_turn,
)
from analyzer.sizes import (
    WindowSizes,
    session_cost,
    size_table,
    size_totals,
    token_totals,
)
from analyzer.transcription import session_setups
from analyzer.turns import TOKEN_COLUMNS, turn_table, turns_from_events

# Report turn latency keys -> turn table columns.
TURN_LATENCIES: dict[str, str] = {
    "response_created": "latency_response_created_ms",
    "first_transcript": "latency_first_transcript_ms",
    "first_audio": "latency_first_audio_ms",
    "first_text": "latency_first_text_ms",
    "response_done": "latency_response_done_ms",
    "transcription": "latency_transcription_ms",
    "transcription_first_delta": "latency_transcription_first_delta_ms",
    "perceived_first_audio": "perceived_first_audio_ms",
    "answer_first_audio": "latency_answer_first_audio_ms",  # analyzer.tool_turns
}


@dataclass
class SessionAnalysis:
    """Everything computed for one session. Turns and sizes are kept as rows (a report of
    thousands of sessions cannot afford pandas tables per session); ``turns`` and ``sizes``
    give them as tables when asked."""

    session_id: str
    facts: dict[str, Any]
    dialect: str | None
    turn_rows: list[dict[str, Any]]  # TURN_COLUMNS
    conversation: Conversation
    window_sizes: WindowSizes = field(default_factory=WindowSizes.empty)  # its window's sizes
    setup: dict[str, Any] = field(default_factory=dict)  # kind, transcription_model

    @cached_property
    def size_rows(self) -> list[dict[str, Any]]:
        """BY_EVENT_COLUMNS rows, as :func:`analyzer.sizes.sizes_by_event` gives them."""
        return self.window_sizes.rows(self.session_id)

    @property
    def size_sums(self) -> list[tuple[str, str, list[int]]]:
        """(direction, event type, SIZE_COLUMNS) of each of :attr:`size_rows`."""
        return self.window_sizes.by_event(self.session_id)

    def size_totals(self) -> dict[str, Any]:
        """:func:`analyzer.sizes.size_totals` of :attr:`size_rows`."""
        return self.window_sizes.totals(self.session_id)

    @cached_property
    def turns(self) -> pd.DataFrame:
        """The turn table (:func:`analyzer.turns.build_turns`)."""
        return turn_table(self.turn_rows)

    @cached_property
    def sizes(self) -> pd.DataFrame:
        """:func:`analyzer.sizes.sizes_by_event` of the session."""
        return size_table(self.size_rows)


def infer_dialect(frames: pd.DataFrame) -> str | None:
    """'beta' or 'ga' from the event types seen (the first dialect-only type wins), else None."""
    if frames.empty:
        return None
    for event_type in frames["event_type"].dropna().drop_duplicates():
        dialect = dialect_of_event(str(event_type))
        if dialect is not None:
            return dialect
    return None


def jsonable(value: Any) -> Any:
    """``value`` with NaN/NA as None and numpy types as Python types, ready for ``json.dumps``."""
    return plain(value)


def analyze_session(session_frames: pd.DataFrame, facts: Mapping[Any, Any]) -> SessionAnalysis:
    """Conversation, turns and sizes of one session (pure)."""
    capture = Capture(session_frames, pd.DataFrame([dict(facts)]))
    (analysis,) = analyze_capture(capture)
    return analysis


def analyze_capture(capture: Capture) -> Iterator[SessionAnalysis]:
    """:func:`analyze_session` for each session of a capture, in start order. Each pandas
    operation runs once over the whole capture rather than once per session; what is left per
    session is plain Python over its few rows."""
    frames = _sorted_frames(capture.frames)
    if frames.empty:
        return (_without_frames(facts) for facts in _clean_facts(capture.sessions))
    return _analyses(frames_to_arrow(frames), capture.sessions)


def analyze_window(table: pa.Table, sessions: Sessions) -> Iterator[SessionAnalysis]:
    """:func:`analyze_capture` of a window of frames in Arrow, already sorted by session, then
    seq (``Dataset.iter_windows``), and its sessions: no pandas table of the frames is built."""
    if not table.num_rows:
        return (_without_frames(facts) for facts in _clean_facts(sessions))
    return _analyses(table, sessions)


def _clean_facts(sessions: Sessions) -> list[dict[str, Any]]:
    """Each session's facts as plain JSON values. A table's are taken out column by column:
    ``to_dict`` takes each Arrow-backed string out on its own (~10x slower)."""
    if isinstance(sessions, list):
        return [{str(k): plain(v) for k, v in row.items()} for row in sessions]
    names = [str(c) for c in sessions.columns]
    columns = [sessions[c].tolist() for c in sessions.columns]
    return [
        {name: plain(value) for name, value in zip(names, row, strict=True)}
        for row in zip(*columns, strict=True)
    ]


def _problems(table: pa.Table) -> dict[str, dict[str, int]]:
    """Frames the recorder could not fully understand, by session and reason."""
    if "problem" not in table.column_names:
        return {}
    found = table.filter(pc.is_valid(table.column("problem"))).select(["session_id", "problem"])
    counts: dict[str, dict[str, int]] = {}
    for session_id, problem in zip(*found.to_pydict().values(), strict=True):
        mine = counts.setdefault(str(session_id), {})
        mine[problem] = mine.get(problem, 0) + 1
    return {sid: dict(sorted(c.items())) for sid, c in counts.items()}


def _analyses(table: pa.Table, sessions: Sessions) -> Iterator[SessionAnalysis]:
    clean = _clean_facts(sessions)
    facts_of = {str(f.get("session_id")): f for f in clean}
    events = event_table(table, facts_of)
    found = conversations(events, _problems(table))
    item_rows = {sid: c.item_rows for sid, c in found.items()}
    turn_rows = turns_from_events(events, item_rows)
    setups = session_setups(events)
    provider_ids = provider_session_ids(table)
    sizes = WindowSizes.of(table)
    dialects = _dialects(table)
    for facts in clean:
        sid = str(facts.get("session_id"))
        if sid not in sizes.ranges:
            yield _without_frames(facts)
            continue
        conversation = found.get(sid, Conversation())
        yield SessionAnalysis(
            session_id=sid,
            facts={**facts, "provider_session_id": provider_ids.get(sid)},
            dialect=facts.get("dialect") or dialects.get(sid),
            turn_rows=turn_rows.get(sid, []),
            conversation=conversation,
            window_sizes=sizes,
            setup=setups.get(sid, {}),
        )


def _without_frames(facts: dict[str, Any]) -> SessionAnalysis:
    """A session known from its facts only (no frame of it was read)."""
    return SessionAnalysis(
        str(facts.get("session_id")), facts, facts.get("dialect"), [], Conversation()
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
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        frames = frames.reset_index(drop=True)
    return _for_analysis(frames)


# Compared and filtered dozens of times per analysis: as categories, each comparison is one
# over small integer codes instead of over a million strings.
_CATEGORY_COLUMNS = ("direction", "event_type")


def _for_analysis(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` with the dtypes the analysis runs fastest on: categories for the columns it
    compares, and Python strings (object) rather than Arrow-backed ones for those it walks in
    Python (each Arrow-backed element costs ~1 us to take out)."""
    convert: dict[str, Any] = {
        c: "category"
        for c in _CATEGORY_COLUMNS
        if c in frames and not isinstance(frames[c].dtype, pd.CategoricalDtype)
    }
    for column, dtype in frames.dtypes.items():
        if isinstance(dtype, pd.StringDtype) and column not in convert:
            convert[str(column)] = object
    return frames.astype(convert) if convert else frames


def _dialects(table: pa.Table) -> dict[str, str]:
    """:func:`infer_dialect` of each session that has one: the dialect of the first of its
    event types (in arrival order) that tells."""
    typed = table.select(["session_id", "event_type", "seq"]).filter(
        pc.is_valid(table.column("event_type"))
    )
    firsts = (
        pa.table(
            {
                "session_id": pc.cast(typed.column("session_id"), pa.string()),
                "event_type": pc.cast(typed.column("event_type"), pa.string()),
                "seq": typed.column("seq"),
            }
        )
        .group_by(["session_id", "event_type"], use_threads=False)
        .aggregate([("seq", "min")])
        .sort_by([("session_id", "ascending"), ("seq_min", "ascending")])
    )
    found: dict[str, str] = {}
    for session_id, event_type in zip(
        firsts.column("session_id").to_pylist(),
        firsts.column("event_type").to_pylist(),
        strict=True,
    ):
        if session_id not in found:
            dialect = dialect_of_event(event_type)
            if dialect is not None:
                found[session_id] = dialect
    return found


def all_turns(analyses: list[SessionAnalysis]) -> pd.DataFrame:
    """The turn tables of all sessions, one after the other."""
    return turn_table([row for a in analyses for row in a.turn_rows])


def _usage(row: Mapping[Any, Any]) -> dict[str, int | None] | None:
    if _missing(row["total_tokens"]):
        return None
    return {c: None if _missing(row[c]) else int(row[c]) for c in TOKEN_COLUMNS}


def _missing(value: Any) -> bool:
    """``pd.isna`` of a scalar, for the values turn rows hold (without its ~1 us a call)."""
    if type(value) is float:
        return value != value
    return is_na(value)


def _num(value: Any) -> Any:
    if type(value) is float:  # most cells
        return None if value != value else value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float | np.floating):
        return float(value)
    return plain(value)


def _opt(value: Any) -> Any:
    """A turn cell: NaN (pandas' missing string) becomes None."""
    if value is None or type(value) in _PLAIN_TYPES:  # most cells: no conversion
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return plain(value)


_PLAIN_TYPES = (str, bool, int)


def _latency_keys(stats: dict[str, Any]) -> dict[str, Any]:
    """Latency summaries keyed like a turn's ``latency_ms`` (``first_audio``...)."""
    return {key: stats[column] for key, column in TURN_LATENCIES.items() if column in stats}


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
        "started": iso_ms(row["turn_start_s"]),
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
        "tool_time_ms": _num(row["tool_time_ms"]),
        "answer_response_id": _opt(row["answer_response_id"]),
        **transcription_turn(row),
    }


# A transcription session's ``cost``: its bill is its ``transcription_cost``.
NO_REPLY_COST: dict[str, Any] = {
    "usd": None,
    "priced_as": None,
    "note": "a transcription session has no responses; see transcription_cost",
}

# The turn columns a session's usage, cost, latency and streaming summaries read; the report's
# summary also reads ``interrupted``.
_SESSION_SUMMARY_COLUMNS: tuple[str, ...] = (
    *LATENCY_METRICS,
    *TOKEN_COLUMNS,
    "reply_audio_deltas",
    "stream_ratio",
    "would_stall",
    "stall_count",
    "stall_ms",
)
SUMMARY_TURN_COLUMNS: tuple[str, ...] = ("interrupted", *_SESSION_SUMMARY_COLUMNS)


def session_dict(
    analysis: SessionAnalysis, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """One session of the report."""
    facts = analysis.facts
    turns = columns_of(analysis.turn_rows, _SESSION_SUMMARY_COLUMNS)
    start, end = facts.get("start_s"), facts.get("end_s")
    kind = analysis.setup.get("kind", "conversation")
    model = facts.get("model")
    if model is None and kind == "transcription":
        model = analysis.setup.get("transcription_model")
    turn_dicts = [turn_dict(row) for row in analysis.turn_rows]
    return {
        "session_id": analysis.session_id,
        "run_id": facts.get("run_id"),
        "kind": kind,
        "dialect": analysis.dialect,
        "model": model,
        "provider": provider_of(facts.get("host"), facts.get("path")),
        "url": facts.get("url"),
        "provider_session_id": facts.get("provider_session_id"),
        "start_s": start,
        "started": iso_ms(start),
        "end_s": end,
        "duration_s": round(end - start, 3) if start is not None and end is not None else None,
        "close_code": facts.get("close_code"),
        "close_reason": facts.get("close_reason"),
        "audio_kept": facts.get("audio_kept"),
        "turns": turn_dicts,
        "sizes": analysis.size_totals(),
        "usage": token_totals(turns),
        "cost": session_cost(turns, facts.get("model"), prices)
        if kind != "transcription"
        else NO_REPLY_COST,
        **session_transcription(turn_dicts, analysis.setup.get("transcription_model"), prices),
        "latency_ms": _latency_keys(latency_stats(turns)),
        "streaming": streaming_stats(turns),
        "items": len(analysis.conversation.item_rows),
        "errors": [{k: _opt(v) for k, v in e.items()} for e in analysis.conversation.error_rows],
        "unknown_events": dict(analysis.conversation.unknown_events),
        "problems": dict(analysis.conversation.problems),
    }


def summarize(
    analyses: list[SessionAnalysis], sessions: list[dict[str, Any]], capture: Capture | None
) -> dict[str, Any]:
    """The ``summary`` of the report: every session together."""
    return summary_of(
        all_turns(analyses),
        [row for a in analyses for row in a.size_rows],
        sessions,
        capture.sources if capture is not None else [],
        capture.warnings if capture is not None else [],
    )


def summary_of(
    turns: TurnColumns,
    size_rows: Sequence[Mapping[str, Any]],
    sessions: Sequence[Mapping[str, Any]],
    sources: Sequence[Any],
    warnings: Sequence[str],
) -> dict[str, Any]:
    """The ``summary`` from every session's turns (at least :data:`SUMMARY_TURN_COLUMNS`),
    size rows (:data:`analyzer.sizes.BY_EVENT_COLUMNS`) and report dicts (``start_s``, ``cost``,
    ``dialect`` and ``errors`` are read)."""
    costs = [s["cost"]["usd"] for s in sessions if s.get("kind") != "transcription"]
    dialects: dict[str, int] = {}
    for s in sessions:
        key = s["dialect"] or "unknown"
        dialects[key] = dialects.get(key, 0) + 1
    return {
        "sessions": len(sessions),
        "turns": row_count(turns),
        "interrupted_turns": int(np.count_nonzero(np.asarray(turns["interrupted"], dtype=bool))),
        "errors": sum(len(s["errors"]) for s in sessions),
        "dialects": dialects,
        "sizes": size_totals(size_rows) if size_rows else None,
        "usage": token_totals(turns),
        "cost_usd": round(sum(c for c in costs if c is not None), 6)
        if any(c is not None for c in costs)
        else None,
        "cost_unpriced_sessions": sum(1 for c in costs if c is None),
        **summary_transcription(sessions),
        "latency_ms": _latency_keys(latency_stats(turns)),
        "streaming": streaming_stats(turns),
        "sources": [str(p) for p in sources],
        "warnings": list(warnings),
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
