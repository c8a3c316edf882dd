"""One self-contained HTML file per capture: summary, latency, conversation with audio, payload.

Nothing is loaded from the network: CSS is inline, plots are PNG ``data:`` images, audio is
``data:audio/wav`` players, and a Content-Security-Policy forbids everything else (no script at
all). Every captured string is escaped with :func:`html.escape`, so a transcript holding markup
shows as text. Building the page (:func:`build_html_report`) is kept apart from reading captures
and writing the file (:func:`render_html_report`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analyzer import plots
from analyzer.analysis import SessionAnalysis, all_turns, analyze_capture
from analyzer.audio import AudioCapture, load_audio
from analyzer.html_parts import (
    CSP,
    CSS,
    MISSING,
    AudioBudget,
    _img,
    _note,
    _num,
    _plain_size,
    _size,
    _table,
    esc,
)
from analyzer.html_session import session_section
from analyzer.latency import latency_summary
from analyzer.metric_names import metric_name
from analyzer.pricing import Prices
from analyzer.private_files import open_private
from analyzer.progress import track
from analyzer.reader import Capture, find_capture_files, merge_captures, read_capture
from analyzer.report import session_dict, summarize
from analyzer.sizes import sizes_rollup

# Audio embedded in one report, as WAV/mp3 bytes before base64 (which adds a third).
DEFAULT_MAX_AUDIO_BYTES = 24 * 1024 * 1024


# The whole-session stereo player's rate: 16 kHz keeps speech clear at 2/3 of the size of 24 kHz.
@dataclass
class HtmlReportResult:
    """What :func:`render_html_report` wrote."""

    path: Path
    bytes_written: int
    sessions: int
    audio_players: int
    audio_skipped: int
    warnings: list[str] = field(default_factory=list)


def _summary_section(summary: Mapping[str, Any], capture: Capture) -> str:
    sizes = summary.get("sizes") or {}
    usage = summary.get("usage") or {}
    latency = summary.get("latency_ms") or {}
    first_audio = (latency.get("first_audio") or {}).get("p50")
    perceived = (latency.get("perceived_first_audio") or {}).get("p50")
    share = sizes.get("audio_share")
    cards = [
        ("sessions", esc(summary.get("sessions"))),
        ("turns", esc(summary.get("turns"))),
        ("interrupted", esc(summary.get("interrupted_turns"))),
        ("server errors", esc(summary.get("errors"))),
        ("p50 first_audio (speech stopped → first audio)", _num(first_audio, 0, " ms")),
        ("p50 perceived_first_audio (+ VAD silence)", _num(perceived, 0, " ms")),
        ("on the wire", _size(sizes.get("total_bytes"))),
        ("audio share", _num(None if share is None else 100 * share, 1, " %")),
        (
            "input / output tokens",
            f"{_num(usage.get('input_tokens'))} / {_num(usage.get('output_tokens'))}",
        ),
        ("cost estimate", _num(summary.get("cost_usd"), 4, " USD")),
    ]
    parts = ['<div class="cards">']
    parts += [
        f'<div class="card"><b>{v}</b><span class="muted">{esc(k)}</span></div>' for k, v in cards
    ]
    parts.append("</div>")
    sources = ", ".join(esc(p.name) for p in capture.sources) or MISSING
    parts.append(f'<p class="muted">Read from {sources}.</p>')
    for warning in summary.get("warnings") or []:
        parts.append(_note(warning))
    return '<h2 id="summary">Summary</h2>' + "".join(parts)


def _latency_section(turns: pd.DataFrame) -> str:
    summary = latency_summary(turns, per_session=False)
    rows = []
    for row in summary.to_dict("records"):
        metric = str(row["metric"])
        rows.append(
            [
                esc(metric_name(metric)),
                esc(plots.METRIC_LABELS.get(metric, metric)),
                _num(row["count"]),
                *(_num(row[k], 1) for k in ("p50", "p90", "p99", "max")),
            ]
        )
    table = _table(
        ["metric", "measures", "turns", "p50 (ms)", "p90 (ms)", "p99 (ms)", "max (ms)"],
        rows,
        {2, 3, 4, 5, 6},
    )
    explain = (
        "<p class=\"muted\">Times run from when the user's turn ended: the server VAD's "
        "<code>speech_stopped</code>, or the client's <code>input_audio_buffer.commit</code> / "
        "<code>response.create</code>. <b>speech stopped → first audio</b> is what a user feels; "
        "the VAD waited <code>silence_duration_ms</code> before it declared the end of speech, "
        "so <b>perceived</b> adds that. Capture times are the proxy's, so network time between "
        "the proxy and the client is not included.</p>"
    )
    figure = _img(plots.plot_latency_distribution(turns), "latency distribution")
    return f'<h2 id="latency">Latency</h2>{explain}{table}{figure}'


def _payload_section(analyses: Sequence[SessionAnalysis]) -> str:
    frames = [a.sizes for a in analyses if len(a.sizes)]
    if not frames:
        return '<h2 id="payload">Payload</h2><p class="muted">No frames.</p>'
    sizes = pd.concat(frames, ignore_index=True)
    by_direction = sizes_rollup(sizes, ("direction",))
    rows = [
        [
            esc(r["direction"]),
            _num(r["frames"]),
            _size(r["bytes"]),
            _size(r["audio_b64_bytes"]),
            _size(r["audio_bytes"]),
            _num(None if pd.isna(r["audio_share"]) else 100 * r["audio_share"], 1, " %"),
        ]
        for r in by_direction.to_dict("records")
    ]
    table = _table(
        ["direction", "frames", "on the wire", "audio as base64", "audio decoded", "audio share"],
        rows,
        {1, 2, 3, 4, 5},
    )
    figure = _img(plots.plot_payload_breakdown(sizes), "payload by event type")
    return f'<h2 id="payload">Payload</h2>{table}{figure}'


def _tokens_section(turns: pd.DataFrame) -> str:
    if not len(turns) or not turns["total_tokens"].notna().any():
        return ""
    return (
        '<h2 id="tokens">Tokens</h2><p class="muted">Input tokens re-count the whole '
        "conversation at every response: that is what is billed, not double counting.</p>"
        + _img(plots.plot_tokens_per_turn(turns), "tokens per turn")
    )


# --- public ---------------------------------------------------------------------------------


def build_html_report(
    capture: Capture,
    audio: AudioCapture | None = None,
    prices: Mapping[str, Prices] | None = None,
    max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    title: str = "rt-analyze report",
    progress: bool | None = None,
) -> tuple[str, AudioBudget]:
    """The report page for ``capture`` (and its ``audio``, if loaded), and what audio went in.

    Players are embedded in conversation order until ``max_audio_bytes`` of audio is used; the
    rest get a note instead."""
    analyses = list(
        track(
            analyze_capture(capture),
            "analyzing sessions",
            total=len(capture.sessions),
            enabled=progress,
        )
    )
    reports = [session_dict(a, prices) for a in analyses]
    summary = summarize(analyses, reports, capture)
    turns = all_turns(analyses)
    budget = AudioBudget(max_audio_bytes)
    audio_by_session = {s.session_id: s for s in audio.sessions} if audio is not None else {}
    if audio is not None:
        summary = dict(summary, warnings=[*summary.get("warnings", []), *audio.warnings])

    sessions_html = []
    numbered = list(enumerate(zip(analyses, reports, strict=True), start=1))
    for number, (analysis, report) in track(numbered, "rendering sessions", enabled=progress):
        sessions_html.append(
            session_section(
                number, analysis, report, audio_by_session.get(analysis.session_id), budget
            )
        )
    if audio is None:
        sessions_html.insert(0, _note("Audio was not loaded: no players in this report."))
    elif budget.skipped:
        sessions_html.insert(
            0,
            _note(
                f"{budget.skipped} audio player(s) left out to keep this file under "
                f"{_plain_size(max_audio_bytes)} of audio; export them with `rt-analyze audio`."
            ),
        )
    nav = " ".join(f'<a href="#session-{n}">session {n}</a>' for n in range(1, len(analyses) + 1))
    body = "".join(
        [
            f"<h1>{esc(title)}</h1>",
            f'<nav><a href="#summary">summary</a><a href="#latency">latency</a>'
            f'<a href="#payload">payload</a>{nav}</nav>',
            _summary_section(summary, capture),
            _latency_section(turns) if len(turns) else "",
            _tokens_section(turns),
            _payload_section(analyses),
            '<h2 id="sessions">Sessions</h2>',
            *sessions_html,
        ]
    )
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
    return page, budget


def read_for_report(paths: Sequence[Path] | Path, progress: bool | None = None) -> Capture:
    """Read captures file by file, with a progress bar on stderr when there are several."""
    if isinstance(paths, Path):
        paths = [paths]
    files = find_capture_files(list(paths))
    if len(files) == 1:
        return read_capture(files)
    return merge_captures(
        [read_capture([f]) for f in track(files, "reading captures", enabled=progress)]
    )


def render_html_report(
    captures: Sequence[Path] | Path | Capture,
    out_path: Path,
    prices: Mapping[str, Prices] | None = None,
    max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    include_audio: bool = True,
    progress: bool | None = None,
) -> HtmlReportResult:
    """Write the HTML report of ``captures`` to ``out_path`` (mode 0600: it holds transcripts
    and voices).

    ``captures`` is paths (files or directories; read file by file with a progress bar when
    there are several) or a :class:`Capture` already read with the default columns. Audio is
    read from the capture files (``Capture.sources``) unless ``include_audio`` is False; players
    stop at ``max_audio_bytes`` of audio, with a note. The result's ``warnings`` are those of
    reading the audio, plus the capture's when this function read it. Raises
    :class:`analyzer.reader.CaptureError`."""
    given = isinstance(captures, Capture)
    capture = captures if isinstance(captures, Capture) else read_for_report(captures, progress)
    audio = load_audio(capture.sources) if include_audio and capture.sources else None
    page, budget = build_html_report(
        capture, audio, prices=prices, max_audio_bytes=max_audio_bytes, progress=progress
    )
    data = page.encode("utf-8")
    # Transcripts and voices are personal data: the report is private like the captures.
    with os.fdopen(open_private(out_path), "wb") as f:
        f.write(data)
    warnings = ([] if given else list(capture.warnings)) + (audio.warnings if audio else [])
    return HtmlReportResult(
        path=out_path,
        bytes_written=len(data),
        sessions=len(capture.sessions),
        audio_players=budget.players,
        audio_skipped=budget.skipped,
        warnings=warnings,
    )
