"""Where the bytes and tokens go: payload size by event type and tokens per turn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analyzer.plots.figures import COLORS, empty, figure, floats, short_id

TOKEN_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("input_text_tokens", "input text"),
    ("input_audio_tokens", "input audio"),
)
OUTPUT_SEGMENTS: tuple[tuple[str, str], ...] = (
    ("output_text_tokens", "output text"),
    ("output_audio_tokens", "output audio"),
)


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
    fig, ax = figure(10, max(2.2, 0.36 * len(table) + 1.4))
    total = int(table["bytes"].sum()) if len(table) else 0
    audio = int(table["audio_b64_bytes"].sum()) if len(table) else 0
    share = f", {100 * audio / total:.1f}% audio" if total else ""
    ax.set_title(f"Payload by event: {_kib(total)} on the wire{share}")
    if table.empty:
        empty(ax, "no frames")
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


def _turn_labels(turns: pd.DataFrame) -> list[str]:
    sessions = turns["session_id"].astype(str)
    if sessions.nunique() <= 1:
        return [str(int(i)) for i in turns["index"]]
    return [f"{short_id(s, 4)}#{int(i)}" for s, i in zip(sessions, turns["index"], strict=True)]


def plot_tokens_per_turn(turns: pd.DataFrame) -> Figure:
    """Tokens of each response that reported usage: per turn an input bar (text, audio; the
    cached part outlined over it) and an output bar (text, audio). Input re-counts the whole
    conversation each turn, which is why it grows."""
    fig, ax = figure(10, 4)
    reported = turns[floats(turns["total_tokens"]) >= 0] if len(turns) else turns
    ax.set_title(f"Tokens per turn ({len(reported)} responses with usage)")
    if reported.empty:
        empty(ax, "no response reported usage")
        return fig
    x = np.arange(len(reported), dtype=float)
    width = 0.38
    for offset, segments in ((-width / 2, TOKEN_SEGMENTS), (width / 2, OUTPUT_SEGMENTS)):
        bottom = np.zeros(len(reported))
        for column, label in segments:
            heights = np.nan_to_num(floats(reported[column]))
            ax.bar(
                x + offset, heights, width=width, bottom=bottom, color=COLORS[label], label=label
            )
            bottom = bottom + heights
    cached = np.nan_to_num(floats(reported["input_cached_tokens"]))
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
