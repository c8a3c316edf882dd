"""Terminal tables (rich) for reports, latency, sizes and conversations."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analyzer.heard import heard_notes
from analyzer.report import TURN_LATENCIES

MISSING = "-"
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
    title: str | None = None,
    digits: Mapping[str, int] | None = None,
    widths: Mapping[str, int] | None = None,
) -> Table:
    """A rich table of a DataFrame's rows; numeric columns right-aligned."""
    table = Table(title=title, title_justify="left")
    digits = digits or {}
    widths = widths or {}
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        )
        table.add_column(
            str(column),
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=not numeric and column not in widths,
        )
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            if column in widths:
                cells.append(short(value, widths[column]))
            else:
                cells.append(fmt(value, digits.get(str(column), 0)))
        table.add_row(*cells)
    return table


def _stats_table(title: str, stats: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("latency (ms)")
    for name in ("count", "p50", "p90", "p99", "max"):
        table.add_column(name, justify="right")
    for metric, values in stats.items():
        if not values.get("count"):
            continue  # a latency no turn has (text replies in a voice session, ...)
        table.add_row(metric, *(fmt(values.get(n)) for n in ("count", "p50", "p90", "p99", "max")))
    return table


def render_report(report: Mapping[str, Any], console: Console) -> None:
    """Each session's turns, sizes, tokens and cost, then the summary."""
    for session in report["sessions"]:
        if session.get("kind") == "transcription":
            _render_transcription_session(session, console)
            continue
        duration = session.get("duration_s")
        console.print(
            f"[bold]session {safe(session['session_id'])}[/bold]  dialect "
            f"{safe(session['dialect'] or '?')}  model {safe(session['model'] or '?')}  "
            f"{len(session['turns'])} turn(s)"
            + (f"  {duration:.1f} s" if duration is not None else "")
        )
        turns = Table(title_justify="left")
        for name, justify in (
            ("#", "right"),
            ("trigger", "left"),
            ("status", "left"),
            ("interrupted", "left"),
            ("created", "right"),
            ("1st transcript", "right"),
            ("1st audio", "right"),
            ("perceived", "right"),
            ("heard", "right"),  # end of speech in the audio -> first reply audio
            ("done", "right"),
            ("transcription", "right"),
            ("user", "left"),
            ("assistant", "left"),
        ):
            turns.add_column(name, justify=justify)  # type: ignore[arg-type]
        for turn in session["turns"]:
            latency = turn["latency_ms"]
            status = safe(turn["status"] or MISSING)
            if turn["status_reason"]:
                status += f" ({safe(turn['status_reason'])})"
            interrupted = fmt(turn["interrupted"])
            if turn["played_ms"] is not None:
                interrupted += f", played {fmt(turn['played_ms'])} ms"
            interrupted += heard_notes(turn)
            turns.add_row(
                str(turn["index"]),
                safe(turn["trigger"] or MISSING),
                status,
                interrupted,
                *(
                    fmt(latency[key])
                    for key in (
                        "response_created",
                        "first_transcript",
                        "first_audio",
                        "perceived_first_audio",
                        "heard_first_audio",
                        "response_done",
                        "transcription",
                    )
                ),
                short(turn["user_transcript"], 30),
                short(turn["assistant_transcript"] or turn["assistant_text"], 40),
            )
        console.print(turns)
        sizes = session["sizes"]
        share = sizes["audio_share"]
        usage = session["usage"]
        cost = session["cost"]
        console.print(
            f"frames {fmt(sizes['frames'])}  bytes {fmt(sizes['total_bytes'])}  audio "
            f"{fmt(sizes['audio_bytes'])} bytes decoded"
            + (f" ({share:.1%} of the bytes as base64)" if share is not None else "")
        )
        console.print(
            f"tokens in {fmt(usage['input_tokens'])} out {fmt(usage['output_tokens'])} "
            f"total {fmt(usage['total_tokens'])}  cost "
            + (
                f"~${cost['usd']:.4f} (as {safe(cost['priced_as'])}, estimate)"
                if cost["usd"] is not None
                else f"unknown ({safe(cost['note'])})"
            )
        )
        if (session.get("transcription_usage") or {}).get("transcriptions"):
            console.print(_transcription_line(session))
        _render_problems(session, console)
    summary = report["summary"]
    console.print(
        f"[bold]{summary['sessions']} session(s), {summary['turns']} turn(s), "
        f"{summary['interrupted_turns']} interrupted, {summary['errors']} error(s)[/bold]"
    )
    console.print(_stats_table("all turns", summary["latency_ms"]))
    if summary["cost_usd"] is not None:
        console.print(f"estimated cost ~${summary['cost_usd']:.4f} (list prices, an estimate)")
    if summary.get("transcription_cost_usd") is not None:
        console.print(
            f"estimated transcription cost ~${summary['transcription_cost_usd']:.4f} "
            "(list prices, an estimate)"
        )


def _render_problems(session: Mapping[str, Any], console: Console) -> None:
    """A session's error events and unknown event types, then a blank line."""
    for error in session["errors"]:
        console.print(
            f"[red]error[/red] {safe(error.get('type') or '')} "
            f"{safe(error.get('code') or '')}: {safe(error.get('message') or '')}"
        )
    if session["unknown_events"]:
        unknown = ", ".join(f"{safe(k)} x{v}" for k, v in session["unknown_events"].items())
        console.print(f"unknown event types: {unknown}")
    console.print()


def _transcription_line(session: Mapping[str, Any]) -> str:
    """Input transcription's tokens (or audio seconds) and cost."""
    usage = session["transcription_usage"]
    cost = session["transcription_cost"]
    said = (
        f"in {fmt(usage['input_tokens'])} out {fmt(usage['output_tokens'])} "
        f"total {fmt(usage['total_tokens'])}"
        if usage["total_tokens"] is not None
        else f"{fmt(usage['audio_seconds'], 1)} s of audio"
    )
    return (
        f"transcription ({safe(session.get('transcription_model') or '?')}) tokens {said}  cost "
        + (
            f"~${cost['usd']:.4f} (as {safe(cost['priced_as'])}, estimate)"
            if cost["usd"] is not None
            else f"unknown ({safe(cost['note'])})"
        )
    )


def _render_transcription_session(session: Mapping[str, Any], console: Console) -> None:
    """A speech-to-text session: per utterance the time to the first and the final transcript,
    its deltas and usage; no reply columns (nothing replies)."""
    duration = session.get("duration_s")
    console.print(
        f"[bold]session {safe(session['session_id'])}[/bold]  transcription  dialect "
        f"{safe(session['dialect'] or '?')}  model {safe(session['model'] or '?')}  "
        f"{len(session['turns'])} utterance(s)"
        + (f"  {duration:.1f} s" if duration is not None else "")
    )
    table = Table(title_justify="left")
    for name, justify in (
        ("#", "right"),
        ("trigger", "left"),
        ("1st delta", "right"),
        ("final", "right"),
        ("deltas", "right"),
        ("tokens in", "right"),
        ("out", "right"),
        ("logprob", "right"),
        ("transcript", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for turn in session["turns"]:
        usage = turn["transcription_usage"] or {}
        logprobs = turn["transcription_logprobs"] or {}
        table.add_row(
            str(turn["index"]),
            safe(turn["trigger"] or MISSING),
            fmt(turn["latency_ms"]["transcription_first_delta"]),
            fmt(turn["latency_ms"]["transcription"]),
            fmt(turn["transcription_deltas"]),
            fmt(usage.get("input_tokens")),
            fmt(usage.get("output_tokens")),
            fmt(logprobs.get("mean"), 2),
            short(turn["user_transcript"], 50),
        )
    console.print(table)
    sizes = session["sizes"]
    console.print(
        f"frames {fmt(sizes['frames'])}  bytes {fmt(sizes['total_bytes'])}  audio "
        f"{fmt(sizes['audio_bytes'])} bytes decoded"
    )
    console.print(_transcription_line(session))
    _render_problems(session, console)


def render_latency(summary: pd.DataFrame, streaming: pd.DataFrame, console: Console) -> None:
    """Latency percentiles per scope, then streaming health."""
    names = {column: key for key, column in TURN_LATENCIES.items()}
    shown = summary.assign(metric=summary["metric"].map(lambda m: names.get(m, m)))
    console.print(frame_table(shown, "latency (ms) per session and overall", widths={"scope": 36}))
    console.print(
        frame_table(
            streaming, "streaming health", digits={"stream_ratio_min": 2, "stream_ratio_p50": 2}
        )
    )


def render_sizes(table: pd.DataFrame, console: Console, title: str) -> None:
    """Size rows with the audio share as a percentage."""
    shown = table.copy()
    if "audio_share" in shown:
        shown["audio_share"] = [
            MISSING if pd.isna(v) else f"{v:.1%}" for v in shown["audio_share"].tolist()
        ]
    console.print(frame_table(shown, title))


def render_conversation(items: pd.DataFrame, console: Console) -> None:
    """Each session's items in order: who, what kind, status and what was said."""
    for session_id, group in items.groupby("session_id", sort=False):
        table = Table(title=f"session {safe(session_id)}", title_justify="left")
        for name in ("#", "role", "kind", "status", "said", "notes"):
            table.add_column(name, justify="right" if name == "#" else "left", overflow="fold")
        for item in group.to_dict("records"):
            table.add_row(
                str(item["position"]),
                fmt(_none(item["role"])),
                fmt(_none(item["kind"])),
                fmt(_none(item["status"])),
                short(_said(item), 80),
                _notes(item),
            )
        console.print(table)


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


def render_errors(errors: Sequence[Mapping[str, Any]], console: Console) -> None:
    """The server's error events, one line each."""
    for error in errors:
        console.print(
            f"[red]error[/red] session {safe(error.get('session_id'))}: "
            f"{safe(error.get('type') or '')} {safe(error.get('code') or '')}: "
            f"{safe(error.get('message') or '')}"
        )


def render_slowest(rows: Sequence[Mapping[str, Any]], metric: str, console: Console) -> None:
    """The slowest turns: the numbers keep their width, what the user said wraps."""
    table = Table(title=f"slowest turns by {metric}", title_justify="left")
    table.add_column("session", no_wrap=True)
    table.add_column("turn", justify="right", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column(f"{metric} (ms)", justify="right", no_wrap=True)
    table.add_column("trigger", no_wrap=True)
    table.add_column("user said", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(
            # An id prefix is enough to tell sessions apart and to pass back to --session.
            safe(str(row["session_id"])[:8]),
            str(row["turn"]),
            safe(row["started"] or MISSING),
            fmt(row["latency_ms"]),
            fmt(row["trigger"]),
            short(row["user_said"], 200),
        )
    console.print(table)
