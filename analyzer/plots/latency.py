"""Latency figures of turn tables: a session's turn timeline and the distribution of each
latency metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analyzer.plots.figures import BAR_HEIGHT, COLORS, empty, figure, floats, short_id

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


def session_time_zero(turns: pd.DataFrame) -> float:
    """The earliest capture time among the turns' time columns (time 0 of a timeline)."""
    columns = [c for c in ("speech_started_s", "turn_start_s", "response_created_s") if c in turns]
    values = np.concatenate([floats(turns[c]) for c in columns]) if columns else np.array([])
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
    reply = floats(turns["reply_audio_ms"])
    played = floats(turns["played_ms"]) if "played_ms" in turns else np.full(len(turns), np.nan)
    cut = np.where(~np.isnan(played), np.minimum(reply, played), reply)
    return np.where(reply > 0, cut, np.nan)


def _heard_speech(ax: Any, session: pd.DataFrame, y: np.ndarray, t0: float) -> None:
    """The user's speech as found in the audio (analyzer.heard), a thin bar beside the
    server's VAD bar: every protocol has it, with or without a server VAD."""
    if "user_speech_start_s" not in session:
        return
    start = floats(session["user_speech_start_s"]) - t0
    stop = floats(session["user_speech_end_s"]) - t0
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
    fig, ax = figure(10, max(2.2, 0.55 * len(session) + 1.4))
    ax.set_title(f"Turn timeline, session {short_id(str(session_id))}")
    if session.empty:
        empty(ax, "no turns in this session")
        return fig
    t0 = session_time_zero(session) if t0_s is None else t0_s
    y = floats(session["index"])

    start = floats(session["speech_started_s"]) - t0
    stop = floats(session["speech_stopped_s"]) - t0
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
    first_audio = floats(session["first_audio_s"]) - t0
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
    turn_start = floats(session["turn_start_s"]) - t0
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
        x = floats(session[column]) - t0
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
    fig, ax = figure(9, 4.5)
    ax.set_title(title or f"Latency over {len(turns)} turns")
    missing = []
    for metric in metrics:
        values = floats(turns[metric]) if metric in turns else np.array([])
        x, y = ecdf(values)
        label = METRIC_LABELS.get(metric, metric)
        if x.size == 0:
            missing.append(label)
            continue
        ax.step(x, y, where="post", label=f"{label}  (p50 {np.median(x):.0f} ms, n={x.size})")
    if not ax.lines:
        empty(ax, "no latencies to show")
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
