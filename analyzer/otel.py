"""Turns as OpenTelemetry traces, in the OTLP/JSON encoding (``ExportTraceServiceRequest``).

One trace per session (``traceId`` derived from run id and session id, so re-exports are stable):
a ``realtime.session`` root span, one ``realtime.turn`` span per turn (turn start to the end of
the reply), and under each turn a ``realtime.response`` span (the reply's creation to its end)
and a ``realtime.audio`` span (first to last reply audio). The turn span carries the moments as
events named like the turn table's columns, the same for every protocol (``speech_stopped``,
``response_created``, ``first_audio``, ``response_done``, ``transcription``...). Per the OTLP/JSON
mapping, ids are lowercase hex, 64-bit integers (times, ``intValue``) are decimal strings and
enums are integers. Spans are grouped by proxy host (the ``host.name`` resource attribute).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analyzer.turns import TIME_COLUMNS

SCOPE_NAME = "rt-analyze"
SERVICE_NAME = "rt-analyze"
SPAN_KIND_INTERNAL = 1
STATUS_CODE_ERROR = 2

# Turn-table columns that are moments of the turn (its start is the span's own): each an event
# on the turn span, named as the column without its unit (``response_created``), the same for
# every protocol.
TURN_EVENTS: tuple[tuple[str, str], ...] = tuple(
    (column, column.removesuffix("_s")) for column in TIME_COLUMNS if column != "turn_start_s"
)
# Turn-table column -> span attribute.
TURN_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("trigger", "rt.turn.trigger"),
    ("user_item_id", "rt.user_item_id"),
    ("response_id", "rt.response_id"),
    ("assistant_item_id", "rt.assistant_item_id"),
    ("status", "rt.response.status"),
    ("status_reason", "rt.response.status_reason"),
    ("interrupted", "rt.turn.interrupted"),
    ("latency_response_created_ms", "rt.latency.response_created_ms"),
    ("latency_first_transcript_ms", "rt.latency.first_transcript_ms"),
    ("latency_first_audio_ms", "rt.latency.first_audio_ms"),
    ("latency_first_text_ms", "rt.latency.first_text_ms"),
    ("latency_response_done_ms", "rt.latency.response_done_ms"),
    ("latency_transcription_ms", "rt.latency.transcription_ms"),
    ("perceived_first_audio_ms", "rt.latency.perceived_first_audio_ms"),
    ("silence_duration_ms", "rt.vad.silence_duration_ms"),
    ("user_audio_ms", "rt.user_audio_ms"),
    ("reply_audio_bytes", "rt.reply.audio_bytes"),
    ("reply_audio_ms", "rt.reply.audio_ms"),
    ("stream_ratio", "rt.reply.stream_ratio"),
    ("would_stall", "rt.reply.would_stall"),
    ("stall_count", "rt.reply.stall_count"),
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
    ("total_tokens", "rt.usage.total_tokens"),
)
_INT_ATTRIBUTES = frozenset(
    {
        "reply_audio_bytes",
        "stall_count",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    }
)


def _id(length: int, *parts: Any) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    return digest[:length]


def trace_id(run_id: Any, session_id: Any) -> str:
    """32 hex digits, the same for a session every time it is exported."""
    return _id(32, "trace", run_id, session_id)


def span_id(*parts: Any) -> str:
    """16 hex digits (never all zero, which OTLP reserves)."""
    value = _id(16, "span", *parts)
    return value if value.strip("0") else "0000000000000001"


def _known(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def unix_nano(time_s: float) -> str:
    """Epoch seconds as the decimal string of nanoseconds (to the microsecond: the float's
    precision at today's epoch is a fraction of a microsecond)."""
    return str(round(time_s * 1_000_000) * 1000)


def any_value(value: Any, as_int: bool = False) -> dict[str, Any]:
    """An OTLP ``AnyValue``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return {"boolValue": value}
    if as_int or isinstance(value, int):
        return {"intValue": str(round(value))}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def attributes(pairs: Iterable[tuple[str, Any]], ints: Iterable[str] = ()) -> list[dict[str, Any]]:
    """OTLP ``KeyValue`` list of the known values (None / NaN left out)."""
    as_int = set(ints)
    return [
        {"key": key, "value": any_value(value, key in as_int)}
        for key, value in pairs
        if _known(value)
    ]


def _span(
    trace: str,
    span: str,
    parent: str | None,
    name: str,
    start_s: float,
    end_s: float,
    attrs: list[dict[str, Any]],
    events: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace,
        "spanId": span,
        "name": name,
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": unix_nano(start_s),
        "endTimeUnixNano": unix_nano(max(end_s, start_s)),
        "attributes": attrs,
    }
    if parent is not None:
        out["parentSpanId"] = parent
    if events:
        out["events"] = events
    if error is not None:
        out["status"] = {"code": STATUS_CODE_ERROR, "message": error}
    return out


def _first(*values: Any) -> float | None:
    for value in values:
        if _known(value):
            return float(value)
    return None


def turn_spans(turn: Mapping[str, Any], trace: str, parent: str | None) -> list[dict[str, Any]]:
    """The turn span and its child spans of one turn-table row (none when it has no time)."""
    times = [float(turn[c]) for c, _ in TURN_EVENTS if c in turn and _known(turn[c])]
    start = _first(turn.get("turn_start_s"), turn.get("response_created_s"))
    if start is None and times:
        start = min(times)
    if start is None:
        return []
    end = max([start, *times])
    key = (trace, int(turn["index"]))
    turn_id = span_id(*key, "turn")
    ints = {attr for column, attr in TURN_ATTRIBUTES if column in _INT_ATTRIBUTES}
    attrs = attributes(
        [
            ("rt.session_id", turn.get("session_id")),
            ("rt.run_id", turn.get("run_id")),
            ("rt.turn.index", int(turn["index"])),
            *((attr, turn.get(column)) for column, attr in TURN_ATTRIBUTES),
        ],
        ints,
    )
    calls = list(turn.get("function_calls") or [])
    if calls:
        attrs.append({"key": "rt.function_calls", "value": any_value([str(c) for c in calls])})
    events = [
        {"timeUnixNano": unix_nano(float(turn[c])), "name": name, "attributes": []}
        for c, name in TURN_EVENTS
        if c in turn and _known(turn[c])
    ]
    events.sort(key=lambda e: int(str(e["timeUnixNano"])))
    status = turn.get("status")
    error = f"response {status}" if status == "failed" else None
    spans = [_span(trace, turn_id, parent, "realtime.turn", start, end, attrs, events, error)]
    created, done = _first(turn.get("response_created_s")), _first(turn.get("response_done_s"))
    if created is not None and done is not None:
        spans.append(
            _span(
                trace,
                span_id(*key, "response"),
                turn_id,
                "realtime.response",
                created,
                done,
                attributes(
                    [("rt.response_id", turn.get("response_id")), ("rt.response.status", status)]
                ),
                error=error,
            )
        )
    first, last = _first(turn.get("first_audio_s")), _first(turn.get("last_audio_s"))
    if first is not None and last is not None:
        spans.append(
            _span(
                trace,
                span_id(*key, "audio"),
                turn_id,
                "realtime.audio",
                first,
                last,
                attributes(
                    [
                        ("rt.reply.audio_ms", turn.get("reply_audio_ms")),
                        ("rt.reply.stream_ratio", turn.get("stream_ratio")),
                        ("rt.reply.would_stall", turn.get("would_stall")),
                    ]
                ),
            )
        )
    return spans


def session_spans(
    facts: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A session's root span and its turns' spans (``rows``: its turn rows, with ``run_id``)."""
    run_id, session_id = facts.get("run_id"), facts.get("session_id")
    trace = trace_id(run_id, session_id)
    starts = [r["turn_start_s"] for r in rows if _known(r.get("turn_start_s"))]
    start = _first(facts.get("start_s"), min(starts) if starts else None)
    root: str | None = None
    spans: list[dict[str, Any]] = []
    if start is not None:
        root = span_id(trace, "session")
        end = _first(facts.get("end_s")) or start
        spans.append(
            _span(
                trace,
                root,
                None,
                "realtime.session",
                start,
                end,
                attributes(
                    [
                        ("rt.session_id", session_id),
                        ("rt.run_id", run_id),
                        ("rt.model", facts.get("model")),
                        ("rt.dialect", facts.get("dialect")),
                        ("server.address", facts.get("host")),
                        ("url.path", facts.get("path")),
                        ("rt.turns", len(rows)),
                        ("rt.close_code", facts.get("close_code")),
                    ],
                    ("rt.close_code",),
                ),
            )
        )
    for row in rows:
        spans.extend(turn_spans({str(k): v for k, v in row.items()}, trace, root))
    return spans


def otlp_traces(
    sessions: Iterable[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]], version: str = ""
) -> dict[str, Any]:
    """The OTLP/JSON ``ExportTraceServiceRequest`` of (session facts, its turn rows) pairs.
    Facts need ``session_id`` and ``run_id``; ``proxy_host`` becomes the resource's
    ``host.name``."""
    by_host: dict[str | None, list[dict[str, Any]]] = {}
    for facts, turns in sessions:
        host = facts.get("proxy_host")
        by_host.setdefault(host if _known(host) else None, []).extend(session_spans(facts, turns))
    resource_spans = []
    for host, spans in by_host.items():
        resource = attributes([("service.name", SERVICE_NAME), ("host.name", host)])
        scope: dict[str, Any] = {"name": SCOPE_NAME}
        if version:
            scope["version"] = version
        resource_spans.append(
            {"resource": {"attributes": resource}, "scopeSpans": [{"scope": scope, "spans": spans}]}
        )
    return {"resourceSpans": resource_spans}
