"""The JSON report of ``rt-analyze report``: each session's turns, usage, cost, latency and
streaming summaries, and the summary of them all."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from analyzer.analysis import SessionAnalysis, all_turns, analyze_capture
from analyzer.formats import provider_of
from analyzer.heard import heard_turns
from analyzer.identity import iso_ms
from analyzer.jsonio import is_na, plain
from analyzer.latency import (
    TurnColumns,
    latency_stats,
    row_count,
    streaming_stats,
)
from analyzer.pricing import Prices
from analyzer.reader import Capture
from analyzer.report_transcription import (
    session_transcription,
    summary_transcription,
    transcription_turns,
)
from analyzer.session_summary import SUMMARY_INPUTS
from analyzer.session_usage import with_duration_cost
from analyzer.sizes import (
    size_totals,
    token_totals,
)
from analyzer.turns import TOKEN_COLUMNS, TURN_COLUMNS, TURN_ID_COLUMNS

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
    "heard_first_audio": "latency_heard_first_audio_ms",
    "heard_first_voice": "latency_heard_first_voice_ms",
    "barge_in_stop": "latency_barge_in_stop_ms",
    "barge_in_cancel": "latency_barge_in_cancel_ms",
    "answer_first_audio": "latency_answer_first_audio_ms",  # analyzer.tool_turns
}


def jsonable(value: Any) -> Any:
    """``value`` with NaN/NA as None and numpy types as Python types, ready for ``json.dumps``."""
    return plain(value)


def _missing(value: Any) -> bool:
    """``pd.isna`` of a scalar, for the values turn rows hold (without its ~1 us a call)."""
    if type(value) is float:
        return value != value
    return is_na(value)


def _num(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float | np.floating):
        return float(value)
    return plain(value)


def nums(values: Iterable[Any]) -> list[Any]:
    """Numbers of a turn column as JSON: NaN -> None, numpy's as Python's, ints kept."""
    return [(None if v != v else v) if type(v) is float else _num(v) for v in values]


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


def turn_dicts(rows: Sequence[Mapping[Any, Any]]) -> list[dict[str, Any]]:
    """The report's turns, from turn rows: built column by column (each cleaned at once), then
    one dict per turn."""

    transposed = zip(*map(_turn_cells, rows), strict=True) if rows else [()] * len(TURN_COLUMNS)
    column: Callable[[str], Sequence[Any]] = dict(
        zip(TURN_COLUMNS, transposed, strict=True)
    ).__getitem__

    def opts(name: str) -> list[Any]:
        return [v if v is None or type(v) in _PLAIN_TYPES else _opt(v) for v in column(name)]

    totals = column("total_tokens")
    tokens = [nums(column(c)) for c in TOKEN_COLUMNS]
    columns: dict[str, list[Any]] = {
        "index": [int(v) for v in column("index")],
        **{c: opts(c) for c in TURN_ID_COLUMNS},
        "interrupted": [bool(v) for v in column("interrupted")],
        "played_ms": nums(column("played_ms")),
        **{c: opts(c) for c in ("user_transcript", "assistant_transcript", "assistant_text")},
        "turn_start_s": nums(column("turn_start_s")),
        "started": [iso_ms(v) for v in column("turn_start_s")],
        "latency_ms": _dicts(TURN_LATENCIES, [nums(column(c)) for c in TURN_LATENCIES.values()]),
        **{c: nums(column(c)) for c in ("silence_duration_ms", "user_audio_ms")},
        "reply_audio_bytes": [int(v) for v in column("reply_audio_bytes")],
        **{c: nums(column(c)) for c in ("reply_audio_ms", "stream_ratio")},
        "would_stall": opts("would_stall"),
        "stall_count": nums(column("stall_count")),
        "usage": [
            None if _missing(total) else dict(zip(TOKEN_COLUMNS, _ints(values), strict=True))
            for total, *values in zip(totals, *tokens, strict=True)
        ],
        "function_calls": [[str(name) for name in v] for v in column("function_calls")],
        "tool_time_ms": nums(column("tool_time_ms")),
        "answer_response_id": opts("answer_response_id"),
        **transcription_turns(column),
        **heard_turns(column),
    }
    return _dicts(columns, list(columns.values()))


def _ints(values: Iterable[Any]) -> list[int | None]:
    return [None if v is None else int(v) for v in values]


def _dicts(keys: Iterable[str], columns: Sequence[list[Any]]) -> list[dict[str, Any]]:
    """One dict of ``keys`` per row of ``columns``."""
    names = list(keys)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


# A turn row's cells, in the order of TURN_COLUMNS (one C call per row, not one per cell).
_turn_cells = itemgetter(*TURN_COLUMNS)


# A transcription session's ``cost``: its bill is its ``transcription_cost``.
NO_REPLY_COST: dict[str, Any] = {
    "usd": None,
    "priced_as": None,
    "note": "a transcription session has no responses; see transcription_cost",
}

# The turn columns the report's summary reads: the session summaries' and ``interrupted``.
SUMMARY_TURN_COLUMNS: tuple[str, ...] = ("interrupted", *SUMMARY_INPUTS)


def session_dicts(
    analyses: Sequence[SessionAnalysis], prices: Mapping[str, Prices] | None = None
) -> list[dict[str, Any]]:
    """:func:`session_dict` of sessions analyzed together (a window): the turns of all of them
    built at once (a session has a few turns: column by column pays over many)."""
    turns = turn_dicts([row for a in analyses for row in a.turn_rows])
    ends = list(itertools.accumulate(len(a.turn_rows) for a in analyses))
    return [
        session_dict(a, prices, turns[end - len(a.turn_rows) : end])
        for a, end in zip(analyses, ends, strict=True)
    ]


def session_dict(
    analysis: SessionAnalysis,
    prices: Mapping[str, Prices] | None = None,
    turns: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One session of the report (``turns``: its :func:`turn_dicts`, if already built)."""
    facts = analysis.facts
    summaries, sid = analysis.summaries, analysis.session_id
    start, end = facts.get("start_s"), facts.get("end_s")
    kind = analysis.setup.get("kind", "conversation")
    model = facts.get("model")
    if model is None and kind == "transcription":
        model = analysis.setup.get("transcription_model")
    if turns is None:
        turns = turn_dicts(analysis.turn_rows)
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
        "turns": turns,
        "sizes": analysis.size_totals(),
        "usage": summaries.tokens_of(sid),
        "cost": with_duration_cost(
            summaries.cost_of(sid, facts.get("model"), prices),
            analysis.setup.get("audio_seconds"),
            facts.get("model"),
            prices,
        )
        if kind != "transcription"
        else NO_REPLY_COST,
        **session_transcription(turns, analysis.setup.get("transcription_model"), prices),
        "latency_ms": _latency_keys(summaries.latency_of(sid)),
        "streaming": summaries.streaming_of(sid),
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
    sessions = session_dicts(analyses, prices)
    report = {"sessions": sessions, "summary": summarize(analyses, sessions, capture)}
    cleaned: dict[str, Any] = jsonable(report)
    return cleaned
