"""Terminal tables (rich) for reports, latency, sizes and conversations."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape

from analyzer.layout import MISSING, Column, Fitted, console_width, fit_table
from analyzer.metric_names import PERCENTILE_MIN_COUNT, metric_name
from analyzer.report import TURN_LATENCIES

# Terminal control characters (ESC sequences clear screens, retitle windows, forge links).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: Any) -> str:
    """Captured text made inert for the terminal: no control characters, no rich markup."""
    return escape(_CONTROL.sub("\ufffd", str(text)))


def fmt(value: Any, digits: int = 0) -> str:
    """A cell: numbers rounded (thousands separated), missing values as ``-``."""
    if value is None or value is pd.NA:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return safe(value)


def short(text: Any, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return MISSING
    one_line = " ".join(str(text).split())
    return safe(one_line if len(one_line) <= width else one_line[: width - 1] + "…")


def frame_table(
    frame: pd.DataFrame,
    console: Console,
    title: str | None = None,
    digits: Mapping[str, int] | None = None,
    widths: Mapping[str, int] | None = None,
    columns: Mapping[str, Column] | None = None,
) -> Fitted:
    """A DataFrame's rows fitted to the console: numeric columns keep their digits, text columns
    (``widths``: cut to so many characters) wrap; ``columns`` names and ranks a column."""
    digits = digits or {}
    widths = widths or {}
    specs = []
    for name in frame.columns:
        series = frame[name]
        text = not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        spec = (columns or {}).get(str(name)) or Column(str(name), text=text)
        specs.append(spec)
    rows = [
        [
            short(value, widths[str(name)])
            if str(name) in widths
            else fmt(value, digits.get(str(name), 0))
            for name, value in zip(frame.columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]
    return fit_table(specs, rows, console_width(console), title)


FEW = "*"


def percentile_cell(name: str, value: Any, count: Any) -> str:
    """A percentile, marked when too few values stand behind it."""
    cell = fmt(value)
    needed = PERCENTILE_MIN_COUNT.get(name)
    if needed is not None and cell != MISSING and isinstance(count, int) and count < needed:
        cell += FEW
    return cell


def few_note(cells: Sequence[Sequence[str]]) -> str | None:
    """The footnote for percentiles marked by :func:`percentile_cell`, when any is."""
    if not any(c.endswith(FEW) for row in cells for c in row):
        return None
    return (
        f"{FEW} fewer than {PERCENTILE_MIN_COUNT['p90']} values for p90 or "
        f"{PERCENTILE_MIN_COUNT['p99']} for p99: close to the maximum, not a percentile"
    )


PERCENTILE_COLUMNS = (
    Column("count", priority=5),
    Column("p50", "ms", priority=6),
    Column("p90", "ms", priority=5),
    Column("p99", "ms", priority=3),
    Column("max", "ms", priority=4),
)


def render_stats(title: str, stats: Mapping[str, Mapping[str, Any]], console: Console) -> None:
    rows = []
    for metric, values in stats.items():
        if not values.get("count"):
            continue  # a latency no turn has (text replies in a voice session, ...)
        count = values.get("count")
        rows.append(
            [
                safe(metric),
                fmt(count),
                *(percentile_cell(n, values.get(n), count) for n in ("p50", "p90", "p99", "max")),
            ]
        )
    columns = [Column("metric", priority=9, justify="left"), *PERCENTILE_COLUMNS]
    fit_table(columns, rows, console_width(console), title).print(console)
    note = few_note(rows)
    if note:
        console.print(f"[dim]{note}[/dim]")


def render_latency(summary: pd.DataFrame, streaming: pd.DataFrame, console: Console) -> None:
    """Latency percentiles per scope (metrics no turn has left out), then streaming health."""
    rows = [
        [
            short(row["scope"], 13),
            safe(metric_name(row["metric"])),
            fmt(row["count"]),
            *(percentile_cell(n, row[n], row["count"]) for n in ("p50", "p90", "p99", "max")),
        ]
        for row in summary.to_dict("records")
        if row["count"]
    ]
    columns = [
        Column("scope", text=True, priority=8, min_width=13),
        Column("metric", priority=9, justify="left"),
        *PERCENTILE_COLUMNS,
    ]
    width = console_width(console)
    fit_table(columns, rows, width, "latency per session and overall").print(console)
    note = few_note(rows)
    if note:
        console.print(f"[dim]{note}[/dim]")
    frame_table(
        streaming,
        console,
        "streaming health",
        digits={"stream_ratio_min": 2, "stream_ratio_p50": 2},
        widths={"scope": 13},
        columns=STREAMING_COLUMNS,
    ).print(console)


STREAMING_COLUMNS = {
    "scope": Column("scope", text=True, priority=9, min_width=13),
    "responses_with_audio": Column("responses_with_audio", priority=5),
    "stream_ratio_min": Column("stream_ratio_min", "x", priority=8),
    "stream_ratio_p50": Column("stream_ratio_p50", "x", priority=6),
    "would_stall": Column("would_stall", priority=7),
    "stall_count": Column("stall_count", priority=4),
    "stall_ms_max": Column("stall_ms_max", "ms", priority=3),
}
SIZE_COLUMNS = {
    "direction": Column("direction", text=True, priority=8, min_width=9),
    "event_type": Column("event_type", text=True, priority=9, min_width=16),
    "session_id": Column("session_id", text=True, priority=9, min_width=13),
    "frames": Column("frames", priority=7),
    "bytes": Column("bytes", priority=6),
    "audio_b64_bytes": Column("audio_b64_bytes", priority=3),
    "audio_bytes": Column("audio_bytes", priority=4),
    "audio_share": Column("audio_share", "%", priority=5),
}


def render_sizes(table: pd.DataFrame, console: Console, title: str) -> None:
    """Size rows with the audio share as a percentage."""
    shown = table.copy()
    if "audio_share" in shown:
        shown["audio_share"] = [
            MISSING if pd.isna(v) else f"{v * 100:.1f}" for v in shown["audio_share"].tolist()
        ]
    widths = {"session_id": 13} if "session_id" in shown else None
    frame_table(shown, console, title, widths=widths, columns=SIZE_COLUMNS).print(console)


# ``latency --per-turn``: the turn table's columns, each latency under its one name in ms.
PER_TURN_PRIORITY = {"first_audio": 8, "perceived_first_audio": 7, "response_done": 6}
PER_TURN_COLUMNS: dict[str, Column] = {
    "session_id": Column("session_id", text=True, priority=9, min_width=13),
    "index": Column("#", priority=10),
    "trigger": Column("trigger", text=True, priority=5, min_width=7),
    "status": Column("status", text=True, priority=1, min_width=9),
    "interrupted": Column("interrupted", text=True, priority=4, min_width=11),
    **{
        column: Column(name, "ms", priority=PER_TURN_PRIORITY.get(name, 3))
        for name, column in TURN_LATENCIES.items()
    },
    "tool_time_ms": Column("tool_time", "ms", priority=4),
    "silence_duration_ms": Column("silence_duration", "ms", priority=2),
    "stream_ratio": Column("stream_ratio", "x", priority=2),
    "would_stall": Column("would_stall", text=True, priority=2, min_width=5),
}


def render_turn_latencies(table: pd.DataFrame, console: Console) -> None:
    """One row per turn: its latencies (ms), streaming ratio and stall."""
    frame_table(
        table,
        console,
        "latency per turn",
        digits={"stream_ratio": 2},
        widths={"session_id": 13},
        columns=PER_TURN_COLUMNS,
    ).print(console)


def render_conversation(items: pd.DataFrame, console: Console) -> None:
    """Each session's items in order: who, what kind, status and what was said."""
    for session_id, group in items.groupby("session_id", sort=False):
        rows = [
            [
                str(item["position"]),
                fmt(_none(item["role"])),
                fmt(_none(item["kind"])),
                fmt(_none(item["status"])),
                short(_said(item), 200),
                _notes(item),
                fmt(_none(item.get("response_id"))),
                fmt(_none(item.get("first_seen"))),
            ]
            for item in group.to_dict("records")
        ]
        provider = (
            _none(group["provider_session_id"].iloc[0]) if "provider_session_id" in group else None
        )
        title = f"session {safe(session_id)}" + (
            f"  provider id {safe(provider)}" if provider else ""
        )
        fit_table(CONVERSATION_COLUMNS, rows, console_width(console), title).print(console)


CONVERSATION_COLUMNS = (
    Column("#", priority=10),
    Column("role", priority=8, justify="left"),
    Column("kind", text=True, priority=6, min_width=8),
    Column("status", text=True, priority=5, min_width=9),
    Column("said", text=True, priority=9, min_width=20),
    Column("notes", text=True, priority=7, min_width=10),
    Column("response_id", text=True, priority=1, min_width=12, whole_words=True),
    Column("first_seen (UTC)", priority=0, justify="left"),
)


def _none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _said(item: Mapping[Any, Any]) -> str | None:
    for key in ("transcript", "text"):
        if _none(item.get(key)) is not None:
            return str(item[key])
    if _none(item.get("name")) is not None:
        return f"{item['name']}({_none(item.get('arguments')) or ''})"
    if _none(item.get("output")) is not None:
        return f"-> {item['output']}"
    return None


def _notes(item: Mapping[Any, Any]) -> str:
    notes: list[str] = []
    if item.get("truncated"):
        end = _none(item.get("truncated_audio_end_ms"))
        notes.append("truncated" + (f" at {fmt(end)} ms" if end is not None else ""))
    if _none(item.get("transcription_error")) is not None:
        notes.append(f"transcription failed: {safe(item['transcription_error'])}")
    if item.get("deleted"):
        notes.append("deleted")
    if item.get("from_client"):
        notes.append("sent by client, not confirmed")
    return "; ".join(notes)


def render_slowest(rows: Sequence[Mapping[str, Any]], metric: str, console: Console) -> None:
    """The slowest turns: the numbers keep their width, what the user said wraps."""
    cells = [
        [
            # An id prefix is enough to tell sessions apart and to pass back to --session.
            safe(str(row["session_id"])[:8]),
            str(row["turn"]),
            safe(row["started"] or MISSING),
            fmt(row["latency_ms"]),
            fmt(row["trigger"]),
            short(row["user_said"], 200),
        ]
        for row in rows
    ]
    columns = (
        Column("session", priority=9, justify="left"),
        Column("turn", priority=9),
        Column("started (UTC)", priority=5, justify="left"),
        Column(metric, "ms", priority=10),
        Column("trigger", text=True, priority=4, min_width=7),
        Column("user said", text=True, priority=8, min_width=16),
    )
    fit_table(columns, cells, console_width(console), f"slowest turns by {metric}").print(console)
