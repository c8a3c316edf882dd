"""The report in the terminal: per session its turn table (fitted to the width), sizes, tokens,
cost and problems, then the summary's latency percentiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from analyzer.heard import heard_notes
from analyzer.layout import MISSING, Column, console_width, fit_table
from analyzer.render import fmt, render_stats, safe, short

# The report's turn table: each latency under its one name (the report's and ``--metric``'s;
# the turn table's column is ``latency_<name>_ms``), in ms; what goes first when narrow.
REPORT_LATENCIES: tuple[tuple[str, int], ...] = (
    ("response_created", 2),
    ("first_transcript", 1),
    ("first_audio", 8),
    ("perceived_first_audio", 6),
    ("heard_first_audio", 6),  # end of speech in the audio -> first reply audio (analyzer.heard)
    ("response_done", 5),
    ("transcription", 0),
    ("answer_first_audio", 7),
)
REPORT_TURN_COLUMNS: tuple[Column, ...] = (
    Column("#", priority=10),
    Column("trigger", text=True, priority=4, min_width=7),
    Column("status", text=True, priority=3, min_width=9),
    Column("interrupted", text=True, priority=7, min_width=11),
    *(Column(name, "ms", priority=priority) for name, priority in REPORT_LATENCIES),
    Column("tool_time", "ms", priority=4),
    Column("user", text=True, priority=9, min_width=12),
    Column("assistant", text=True, priority=8, min_width=12),
    Column("response_id", text=True, priority=-1, min_width=12, whole_words=True),
)


def _turn_cells(turn: Mapping[str, Any]) -> list[str]:
    latency = turn["latency_ms"]
    status = safe(turn["status"] or MISSING)
    if turn["status_reason"]:
        status += f" ({safe(turn['status_reason'])})"
    interrupted = fmt(turn["interrupted"])
    if turn["played_ms"] is not None:
        interrupted += f", played {fmt(turn['played_ms'])} ms"
    interrupted += heard_notes(turn)
    return [
        str(turn["index"]),
        safe(turn["trigger"] or MISSING),
        status,
        interrupted,
        *(fmt(latency[name]) for name, _ in REPORT_LATENCIES),
        fmt(turn.get("tool_time_ms")),
        short(turn["user_transcript"], 60),
        short(turn["assistant_transcript"] or turn["assistant_text"], 80),
        safe(turn["response_id"] or MISSING),
    ]


def render_report(report: Mapping[str, Any], console: Console) -> None:
    """Each session's turns, sizes, tokens and cost, then the summary."""
    for session in report["sessions"]:
        if session.get("kind") == "transcription":
            _render_transcription_session(session, console)
            continue
        console.print(_session_header(session, "", "turn(s)"))
        rows = [_turn_cells(turn) for turn in session["turns"]]
        fit_table(REPORT_TURN_COLUMNS, rows, console_width(console)).print(console)
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
    render_stats("all turns", summary["latency_ms"], console)
    if summary["cost_usd"] is not None:
        console.print(f"estimated cost ~${summary['cost_usd']:.4f} (list prices, an estimate)")
    if summary.get("transcription_cost_usd") is not None:
        console.print(
            f"estimated transcription cost ~${summary['transcription_cost_usd']:.4f} "
            "(list prices, an estimate)"
        )


def _session_header(session: Mapping[str, Any], kind: str, counted: str) -> str:
    """``session <id>  [kind]dialect ..  model ..  N <counted>  <duration>`` and its ids."""
    duration = session.get("duration_s")
    return (
        f"[bold]session {safe(session['session_id'])}[/bold]  {kind}dialect "
        f"{safe(session['dialect'] or '?')}  model {safe(session['model'] or '?')}  "
        f"{len(session['turns'])} {counted}"
        + (f"  {duration:.1f} s" if duration is not None else "")
        + _identity(session)
    )


def _identity(session: Mapping[str, Any]) -> str:
    """The session's start (ISO 8601, UTC) and the provider's id for it, when known."""
    started = session.get("started")
    provider = session.get("provider_session_id")
    said = (f"started {safe(started)}  " if started else "") + (
        f"provider id {safe(provider)}" if provider else ""
    )
    return "\n" + said.rstrip() if said else ""


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
    console.print(_session_header(session, "transcription  ", "utterance(s)"))
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
