"""Matplotlib figures of turn tables and payload sizes, shared by the notebooks and the HTML report.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
no GUI backend; PNG and SVG go through Agg), so it can be saved, embedded or displayed by a
notebook. :func:`figure_data` reads back what a figure drew, for tests and notebooks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

# Latency metrics of the turn table, with the words a plot shows for them.
METRIC_LABELS: dict[str, str] = {
    "perceived_first_audio_ms": "perceived: end of speech -> first audio (+ VAD silence)",
    "latency_first_audio_ms": "speech stopped -> first audio",
    "latency_first_transcript_ms": "speech stopped -> first transcript",
    "latency_first_text_ms": "speech stopped -> first text",
    "latency_response_created_ms": "speech stopped -> response.created",
    "latency_response_done_ms": "speech stopped -> response.done",
    "latency_transcription_ms": "speech stopped -> input transcription",
    "latency_transcription_first_delta_ms": "speech stopped -> first input transcript delta",
}
DEFAULT_METRICS: tuple[str, ...] = (
    "perceived_first_audio_ms",
    "latency_first_audio_ms",
    "latency_response_created_ms",
    "latency_first_transcript_ms",
    "latency_transcription_ms",
    "latency_response_done_ms",
)
# Timeline markers: (turn table column, legend label, marker).
TIMELINE_MARKERS: tuple[tuple[str, str, str], ...] = (
    ("speech_stopped_s", "speech_stopped", "|"),
    ("response_created_s", "response.created", "o"),
    ("first_audio_s", "first audio", "^"),
    ("response_done_s", "response.done", "s"),
    ("barge_in_s", "barge-in (user speech in the audio)", "v"),
)
TOKEN_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("input_text_tokens", "input text"),
    ("input_audio_tokens", "input audio"),
)
OUTPUT_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("output_text_tokens", "output text"),
    ("output_audio_tokens", "output audio"),
)
COLORS: dict[str, str] = {
    "user": "#4C78A8",
    "reply": "#F58518",
    "interrupted": "#E45756",
    "audio": "#F58518",
    "json": "#54A24B",
    "input text": "#9ECAE9",
    "input audio": "#4C78A8",
    "cached": "#000000",
    "output text": "#FFBF79",
    "output audio": "#F58518",
}
BAR_HEIGHT = 0.34


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    return fig, ax


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def _floats(series: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_numeric(series, errors="coerce"), dtype=float)


def _short_id(session_id: str, length: int = 8) -> str:
    return session_id[:length]


# --- turn timeline --------------------------------------------------------------------------


def session_time_zero(turns: pd.DataFrame) -> float:
    """The earliest capture time among the turns' time columns (time 0 of a timeline)."""
    columns = [c for c in ("speech_started_s", "turn_start_s", "response_created_s") if c in turns]
    values = np.concatenate([_floats(turns[c]) for c in columns]) if columns else np.array([])
    values = values[~np.isnan(values)]
    return float(values.min()) if values.size else 0.0


def busiest_session(turns: pd.DataFrame) -> str | None:
    """The id of the session with the most turns (the earliest of equals), or None."""
    if turns.empty:
        return None
    counts = turns["session_id"].astype(str).value_counts(sort=False)
    return str(counts.idxmax())


def reply_play_ms(turns: pd.DataFrame) -> np.ndarray:
    """How long each turn's reply audio plays: ``reply_audio_ms``, cut at ``played_ms`` when the
    client truncated it (NaN when the reply had no audio)."""
    reply = _floats(turns["reply_audio_ms"])
    played = _floats(turns["played_ms"]) if "played_ms" in turns else np.full(len(turns), np.nan)
    cut = np.where(~np.isnan(played), np.minimum(reply, played), reply)
    return np.where(reply > 0, cut, np.nan)


def _heard_speech(ax: Any, session: pd.DataFrame, y: np.ndarray, t0: float) -> None:
    """The user's speech as found in the audio (analyzer.heard), a thin bar beside the
    server's VAD bar: every protocol has it, with or without a server VAD."""
    if "user_speech_start_s" not in session:
        return
    start = _floats(session["user_speech_start_s"]) - t0
    stop = _floats(session["user_speech_end_s"]) - t0
    heard = ~np.isnan(start) & ~np.isnan(stop)
    if heard.any():
        ax.barh(
            y[heard] - BAR_HEIGHT * 1.2,
            (stop - start)[heard],
            left=start[heard],
            height=BAR_HEIGHT / 3,
            color="#54A24B",
            label="user speech (in the audio)",
        )


def plot_turn_timeline(turns: pd.DataFrame, session_id: str, t0_s: float | None = None) -> Figure:
    """A Gantt chart of one session's turns, one row each, seconds from ``t0_s`` (default: the
    first turn's earliest event).

    Per turn: the user's speech (speech_started .. speech_stopped, VAD turns), markers at
    speech_stopped, response.created, first audio delta and response.done, and a bar for the
    reply's audio as it would play from its first delta (``reply_audio_ms``, cut at
    ``played_ms`` when the client truncated it). Interrupted turns are red, hatched and
    labelled.
    """
    session = turns[turns["session_id"].astype(str) == str(session_id)]
    session = session.sort_values("index", kind="stable")
    fig, ax = _figure(10, max(2.2, 0.55 * len(session) + 1.4))
    ax.set_title(f"Turn timeline, session {_short_id(str(session_id))}")
    if session.empty:
        _empty(ax, "no turns in this session")
        return fig
    t0 = session_time_zero(session) if t0_s is None else t0_s
    y = _floats(session["index"])

    start = _floats(session["speech_started_s"]) - t0
    stop = _floats(session["speech_stopped_s"]) - t0
    spoken = ~np.isnan(start) & ~np.isnan(stop)
    if spoken.any():
        ax.barh(
            y[spoken] - BAR_HEIGHT / 2,
            (stop - start)[spoken],
            left=start[spoken],
            height=BAR_HEIGHT,
            color=COLORS["user"],
            label="user speech",
        )

    _heard_speech(ax, session, y, t0)
    first_audio = _floats(session["first_audio_s"]) - t0
    play_s = reply_play_ms(session) / 1000.0
    interrupted = session["interrupted"].fillna(False).astype(bool).to_numpy()
    has_reply = ~np.isnan(first_audio) & ~np.isnan(play_s)
    for mask, label, color, hatch in (
        (has_reply & ~interrupted, "reply audio playing", COLORS["reply"], None),
        (has_reply & interrupted, "reply audio, interrupted", COLORS["interrupted"], "//"),
    ):
        if mask.any():
            ax.barh(
                y[mask] + BAR_HEIGHT / 2,
                play_s[mask],
                left=first_audio[mask],
                height=BAR_HEIGHT,
                color=color,
                hatch=hatch,
                edgecolor="white" if hatch else None,
                label=label,
            )

    client = session["trigger"].astype(object).isin(["commit", "response.create"]).to_numpy()
    turn_start = _floats(session["turn_start_s"]) - t0
    if (client & ~np.isnan(turn_start)).any():
        mask = client & ~np.isnan(turn_start)
        ax.plot(
            turn_start[mask],
            y[mask],
            linestyle="none",
            marker="D",
            color="#333",
            markersize=5,
            label="client commit / response.create",
        )
    for column, label, marker in TIMELINE_MARKERS:
        x = _floats(session[column]) - t0
        mask = ~np.isnan(x)
        if mask.any():
            ax.plot(
                x[mask],
                y[mask],
                linestyle="none",
                marker=marker,
                markersize=7 if marker == "|" else 5,
                label=label,
                color="#222" if marker == "|" else None,
            )

    for row_y, flag, x in zip(y, interrupted, first_audio + np.nan_to_num(play_s), strict=True):
        if flag and not math.isnan(x):
            ax.annotate(
                "interrupted",
                (x, row_y + BAR_HEIGHT / 2),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=COLORS["interrupted"],
            )

    labels = [
        f"turn {int(i)} ({trigger})" if isinstance(trigger, str) else f"turn {int(i)}"
        for i, trigger in zip(y, session["trigger"], strict=True)
    ]
    ax.set_yticks(y, labels)
    ax.set_ylim(y.max() + 0.7, y.min() - 0.7)
    ax.set_xlabel("seconds since the first turn began")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


# --- latency distribution -------------------------------------------------------------------


def ecdf(values: Sequence[float] | np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Sorted non-NaN values and their cumulative fractions (1/n .. 1)."""
    array = np.asarray(values, dtype=float)
    array = np.sort(array[~np.isnan(array)])
    return array, np.arange(1, array.size + 1) / max(array.size, 1)


def plot_latency_distribution(
    turns: pd.DataFrame, metrics: Sequence[str] = DEFAULT_METRICS, title: str | None = None
) -> Figure:
    """The cumulative distribution of each latency metric over every turn of ``turns`` (any
    number of sessions): one step line per metric with its median and count in the legend.
    Metrics with no values are listed as such."""
    fig, ax = _figure(9, 4.5)
    ax.set_title(title or f"Latency over {len(turns)} turns")
    missing = []
    for metric in metrics:
        values = _floats(turns[metric]) if metric in turns else np.array([])
        x, y = ecdf(values)
        label = METRIC_LABELS.get(metric, metric)
        if x.size == 0:
            missing.append(label)
            continue
        ax.step(x, y, where="post", label=f"{label}  (p50 {np.median(x):.0f} ms, n={x.size})")
    if not ax.lines:
        _empty(ax, "no latencies to show")
        return fig
    ax.set_xlabel("milliseconds")
    ax.set_ylabel("fraction of turns")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if missing:
        ax.text(
            0.0,
            -0.2,
            "no data: " + "; ".join(missing),
            transform=ax.transAxes,
            fontsize=7,
            color="#666",
            va="top",
        )
    return fig


# --- payload breakdown ----------------------------------------------------------------------


def payload_breakdown(sizes: pd.DataFrame, top: int = 14) -> pd.DataFrame:
    """``sizes_by_event`` rows summed per (direction, event type), largest first, split into
    ``audio_b64_bytes`` and ``other_bytes`` (JSON and text around the audio). Beyond ``top``
    rows the rest are summed into one ``(other events)`` row."""
    columns = ["direction", "event_type", "frames", "bytes", "audio_b64_bytes", "other_bytes"]
    if sizes.empty:
        return pd.DataFrame(columns=columns)
    table = (
        sizes.groupby(["direction", "event_type"], sort=False)[
            ["frames", "bytes", "audio_b64_bytes"]
        ]
        .sum()
        .reset_index()
        .sort_values(["bytes", "direction", "event_type"], ascending=[False, True, True])
        .reset_index(drop=True)
    )
    if len(table) > top:
        rest = table.iloc[top - 1 :]
        table = pd.concat(
            [
                table.iloc[: top - 1],
                pd.DataFrame(
                    [
                        {
                            "direction": "both",
                            "event_type": f"({len(rest)} other events)",
                            **rest[["frames", "bytes", "audio_b64_bytes"]].sum().to_dict(),
                        }
                    ]
                ),
            ],
            ignore_index=True,
        )
    table["other_bytes"] = table["bytes"] - table["audio_b64_bytes"]
    for column in ("frames", "bytes", "audio_b64_bytes", "other_bytes"):
        table[column] = table[column].astype("int64")
    return table[columns]


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"


def _byte_ticks(ax: Axes, largest: float) -> None:
    """Round tick steps in KiB or MiB (not round numbers of bytes)."""
    scale, unit = (1024 * 1024, "MiB") if largest >= 1024 * 1024 else (1024, "KiB")
    locator = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
    ticks = np.asarray(locator.tick_values(0, largest / scale), dtype=float)
    ticks = ticks[ticks <= largest / scale * 1.05]
    ax.set_xticks(ticks * scale, [f"{t:g} {unit}" if t else "0" for t in ticks])


def plot_payload_breakdown(sizes: pd.DataFrame, top: int = 14) -> Figure:
    """Wire bytes per event type and direction (``sizes_by_event`` of one or more sessions) as
    stacked horizontal bars: the audio's base64 text, then the JSON/text around it. Largest
    first; see :func:`payload_breakdown`."""
    table = payload_breakdown(sizes, top)
    fig, ax = _figure(10, max(2.2, 0.36 * len(table) + 1.4))
    total = int(table["bytes"].sum()) if len(table) else 0
    audio = int(table["audio_b64_bytes"].sum()) if len(table) else 0
    share = f", {100 * audio / total:.1f}% audio" if total else ""
    ax.set_title(f"Payload by event: {_kib(total)} on the wire{share}")
    if table.empty:
        _empty(ax, "no frames")
        return fig
    y = np.arange(len(table), dtype=float)
    audio_bytes = table["audio_b64_bytes"].to_numpy(dtype=float)
    other_bytes = table["other_bytes"].to_numpy(dtype=float)
    ax.barh(y, audio_bytes, color=COLORS["audio"], label="audio (base64)")
    ax.barh(y, other_bytes, left=audio_bytes, color=COLORS["json"], label="JSON / text")
    labels = [
        e if d == "both" else f"{d} · {e}"
        for d, e in zip(table["direction"], table["event_type"], strict=True)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(len(table) - 0.4, -0.6)
    for row_y, total_bytes in zip(y, table["bytes"], strict=True):
        ax.annotate(
            _kib(float(total_bytes)),
            (float(total_bytes), row_y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.set_xlabel("bytes on the wire")
    _byte_ticks(ax, float(table["bytes"].max()))
    ax.margins(x=0.15)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return fig


# --- tokens ---------------------------------------------------------------------------------


def _turn_labels(turns: pd.DataFrame) -> list[str]:
    sessions = turns["session_id"].astype(str)
    if sessions.nunique() <= 1:
        return [str(int(i)) for i in turns["index"]]
    return [f"{_short_id(s, 4)}#{int(i)}" for s, i in zip(sessions, turns["index"], strict=True)]


def plot_tokens_per_turn(turns: pd.DataFrame) -> Figure:
    """Tokens of each response that reported usage: per turn an input bar (text, audio; the
    cached part outlined over it) and an output bar (text, audio). Input re-counts the whole
    conversation each turn, which is why it grows."""
    fig, ax = _figure(10, 4)
    reported = turns[_floats(turns["total_tokens"]) >= 0] if len(turns) else turns
    ax.set_title(f"Tokens per turn ({len(reported)} responses with usage)")
    if reported.empty:
        _empty(ax, "no response reported usage")
        return fig
    x = np.arange(len(reported), dtype=float)
    width = 0.38
    for offset, segments in ((-width / 2, TOKEN_SEGMENTS), (width / 2, OUTPUT_SEGMENTS)):
        bottom = np.zeros(len(reported))
        for column, label in segments:
            heights = np.nan_to_num(_floats(reported[column]))
            ax.bar(
                x + offset, heights, width=width, bottom=bottom, color=COLORS[label], label=label
            )
            bottom = bottom + heights
    cached = np.nan_to_num(_floats(reported["input_cached_tokens"]))
    if cached.any():
        ax.bar(
            x - width / 2,
            cached,
            width=width,
            fill=False,
            hatch="xx",
            edgecolor=COLORS["cached"],
            linewidth=0.8,
            label="of which cached",
        )
    ax.set_xticks(x, _turn_labels(reported), fontsize=8)
    ax.set_xlabel("turn (left bar input, right bar output)")
    ax.set_ylabel("tokens")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


# --- output ---------------------------------------------------------------------------------


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _bars(container: BarContainer) -> dict[str, Any]:
    patches = list(container.patches)
    return {
        "label": str(container.get_label()),
        "x": [float(p.get_x()) for p in patches],
        "y": [float(p.get_y()) for p in patches],
        "width": [float(p.get_width()) for p in patches],
        "height": [float(p.get_height()) for p in patches],
    }


def _line(line: Line2D) -> dict[str, Any]:
    return {
        "label": str(line.get_label()),
        "x": [float(v) for v in np.asarray(line.get_xdata(), dtype=float)],
        "y": [float(v) for v in np.asarray(line.get_ydata(), dtype=float)],
    }


def figure_data(fig: Figure) -> list[dict[str, Any]]:
    """What each axes of ``fig`` drew, read back from its artists: title, lines (label, x, y)
    and bar containers (label and each bar's x, y, width, height). JSON-ready."""
    return [
        {
            "title": ax.get_title(),
            "lines": [_line(line) for line in ax.lines],
            "bars": [_bars(c) for c in ax.containers if isinstance(c, BarContainer)],
        }
        for ax in fig.axes
    ]
