"""The pieces an HTML report is built of: escaping, numbers, tables, images and audio players,
its CSS and Content-Security-Policy."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analyzer import plots
from analyzer.audio import ItemAudio, SessionAudio, session_stereo
from analyzer.audio.model import DECODABLE
from analyzer.audio.wav import wav_header

EMBED_STEREO_RATE_HZ = 16000
CSP = (
    "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)
MISSING = "–"

CSS = """
:root { --user: #dbe8f6; --assistant: #fde9d5; --tool: #e8f3e2; --muted: #666; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d1d1f; background: #f6f6f7; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 8px; }
section.session { background: #fff; border: 1px solid #e2e2e5; border-radius: 8px;
  padding: 4px 18px 18px; margin: 18px 0; }
.muted { color: var(--muted); }
.note { color: #7a4b00; background: #fff6e0; border-left: 3px solid #e0a100; padding: 4px 8px;
  margin: 6px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { background: #fff; border: 1px solid #e2e2e5; border-radius: 8px; padding: 8px 14px;
  min-width: 140px; }
.card b { display: block; font-size: 20px; }
table { border-collapse: collapse; margin: 8px 0; background: #fff; font-size: 13px; }
th, td { border: 1px solid #e2e2e5; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
img.plot { max-width: 100%; height: auto; display: block; margin: 8px 0;
  border: 1px solid #eee; background: #fff; }
.chat { display: flex; flex-direction: column; gap: 8px; margin: 10px 0; }
.msg { max-width: 78%; border-radius: 10px; padding: 8px 12px; }
.msg.user { align-self: flex-start; background: var(--user); }
.msg.assistant { align-self: flex-end; background: var(--assistant); }
.msg.tool, .msg.system { align-self: center; background: var(--tool); font-size: 13px; }
.msg .who { font-size: 12px; color: var(--muted); margin-bottom: 2px; }
.msg .said { white-space: pre-wrap; overflow-wrap: anywhere; }
.msg code { white-space: pre-wrap; overflow-wrap: anywhere; }
audio { display: block; width: 100%; min-width: 280px; max-width: 420px; height: 32px;
  margin-top: 6px; }
nav a { margin-right: 10px; }
"""


@dataclass
class AudioBudget:
    """How much audio a report may embed, and how much went in."""

    limit_bytes: int
    used_bytes: int = 0
    players: int = 0
    skipped: int = 0

    def take(self, n_bytes: int) -> bool:
        if self.used_bytes + n_bytes > self.limit_bytes:
            self.skipped += 1
            return False
        self.used_bytes += n_bytes
        self.players += 1
        return True


# --- small HTML helpers ---------------------------------------------------------------------


def _value(value: Any) -> Any:
    """A cell with pandas' missing markers (NaN, NA) as None."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def esc(value: Any) -> str:
    """``value`` as HTML text: None/NaN as a dash, everything else ``str`` then escaped."""
    if _value(value) is None:
        return MISSING
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None or pd.isna(value):
        return MISSING
    return esc(f"{float(value):,.{digits}f}{unit}")


def _size(n_bytes: Any) -> str:
    if n_bytes is None or pd.isna(n_bytes):
        return MISSING
    n = float(n_bytes)
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale:
            return esc(f"{n / scale:,.1f} {unit}")
    return esc(f"{n:,.0f} B")


def _short(text: Any, width: int = 160) -> Any:
    """Long text cut to ``width`` characters (the chat below shows it whole)."""
    if isinstance(text, str) and len(text) > width:
        return text[: width - 1].rstrip() + "…"
    return text


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """A table of already-escaped cells; columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"
    )


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(plots.figure_png(fig)).decode("ascii")
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _audio(payload: bytes, mime: str, label: str) -> str:
    data = base64.b64encode(payload).decode("ascii")
    return (
        f'<audio controls preload="metadata" title="{esc(label)}" '
        f'src="data:{mime};base64,{data}"></audio>'
    )


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


# --- audio ----------------------------------------------------------------------------------


def _item_player(item: ItemAudio, budget: AudioBudget) -> str:
    if not item.raw:
        return ""
    if item.format.encoding in DECODABLE:
        payload, mime = item.file_bytes(), "audio/wav"
    elif item.extension == "mp3":
        payload, mime = item.raw, "audio/mpeg"
    else:
        return _note(f"{item.format.encoding} audio cannot be played here.")
    if not budget.take(len(payload)):
        return _note(f"audio not embedded ({_plain_size(len(payload))}): over the report's budget.")
    return _audio(payload, mime, f"{item.role} audio, item {item.item_id}")


def _plain_size(n_bytes: int) -> str:
    return html.unescape(_size(n_bytes))


def _stereo_player(session: SessionAudio, budget: AudioBudget) -> str:
    if session.samples_dropped:
        return _note("Recorded without audio samples (rt_audio=drop): nothing to play.")
    if not session.has_audio:
        return ""
    mix = session_stereo(session, EMBED_STEREO_RATE_HZ)
    if not len(mix):
        return ""
    size = 44 + mix.nbytes
    if not budget.take(size):
        return _note(
            f"Whole-session audio not embedded ({_plain_size(size)}): over the report's budget."
        )
    payload = wav_header(mix.nbytes, EMBED_STEREO_RATE_HZ, 2) + mix.tobytes()
    seconds = len(mix) / EMBED_STEREO_RATE_HZ
    return (
        f'<p class="muted">Whole session, {seconds:,.1f} s: user on the left channel, assistant '
        "on the right, each placed where it happened.</p>"
        + _audio(payload, "audio/wav", "whole session, stereo")
    )


# --- sections -------------------------------------------------------------------------------
