"""The HTML report's section of one session: its facts, turn table, timeline plot and the
conversation with a player for each utterance and reply (escaped text, embedded audio)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analyzer import plots
from analyzer.analysis import SessionAnalysis
from analyzer.audio import ItemAudio, SessionAudio
from analyzer.html_parts import (
    AudioBudget,
    _facts,
    _img,
    _item_player,
    _num,
    _short,
    _size,
    _stereo_player,
    _table,
    _value,
    esc,
)

_TURN_HEADERS = (
    "#",
    "trigger",
    "status",
    "first_audio (ms)",
    "perceived_first_audio (ms)",
    "response_done (ms)",
    "transcription (ms)",
    "answer_first_audio (ms)",
    "reply_audio (ms)",
    "in / out tokens",
    "user said",
    "assistant said",
)


def _turn_rows(turns: pd.DataFrame) -> list[list[str]]:
    rows = []
    for turn in turns.to_dict("records"):
        status = esc(turn["status"])
        if turn["interrupted"]:
            status += " (interrupted" + (
                f" at {_num(turn['played_ms'])} ms)" if not pd.isna(turn["played_ms"]) else ")"
            )
        said = _value(turn["assistant_transcript"]) or _value(turn["assistant_text"])
        rows.append(
            [
                esc(turn["index"]),
                esc(turn["trigger"]),
                status,
                _num(turn["latency_first_audio_ms"]),
                _num(turn["perceived_first_audio_ms"]),
                _num(turn["latency_response_done_ms"]),
                _num(turn["latency_transcription_ms"]),
                _num(turn["latency_answer_first_audio_ms"]),  # a tool call's whole wait
                _num(turn["reply_audio_ms"]),
                f"{_num(turn['input_tokens'])} / {_num(turn['output_tokens'])}",
                esc(_short(turn["user_transcript"])),
                esc(_short(said)),
            ]
        )
    return rows


def _said(item: Mapping[Any, Any]) -> tuple[str, str]:
    """(css class, inner HTML) of one conversation item's bubble."""

    def value(key: str) -> Any:
        return _value(item.get(key))

    kind = value("kind")
    if kind == "function_call":
        return "tool", f"<code>{esc(value('name'))}({esc(value('arguments') or '')})</code>"
    if kind == "function_call_output":
        return "tool", f"<code>→ {esc(value('output'))}</code>"
    role = value("role")
    css = role if role in ("user", "assistant", "system") else "tool"
    text = value("transcript") or value("text")
    inner = (
        f'<div class="said">{esc(text)}</div>'
        if text is not None
        else '<div class="said muted">(no transcript)</div>'
    )
    return css, inner


def _chat(
    items: pd.DataFrame,
    audio: Mapping[str, ItemAudio],
    latency_by_item: Mapping[str, tuple[float, Any]],
    budget: AudioBudget,
) -> str:
    if items.empty:
        return '<p class="muted">No conversation items.</p>'
    bubbles = []
    for item in items.to_dict("records"):
        css, inner = _said(item)
        role, kind = _value(item.get("role")), _value(item.get("kind"))
        who = [esc(role or kind or "item"), f"#{esc(item['position'])}"]
        if role is not None and kind not in (None, "message"):
            who.append(esc(kind))
        notes = []
        if item.get("truncated"):
            end = _value(item.get("truncated_audio_end_ms"))
            notes.append("interrupted, played " + (f"{_num(end)} ms" if end else "in part"))
        if isinstance(item.get("transcription_error"), str):
            notes.append("transcription failed: " + esc(item["transcription_error"]))
        if item.get("deleted"):
            notes.append("deleted")
        if item.get("from_client"):
            notes.append("sent by the client, not confirmed")
        latency, trigger = latency_by_item.get(str(item["item_id"]), (math.nan, None))
        if not math.isnan(latency):
            since = "the user stopped" if trigger == "vad" else f"the client's {esc(trigger)}"
            notes.append(f"first audio {_num(latency)} ms after {since}")
        sound = audio.get(str(item["item_id"]))
        player = _item_player(sound, budget) if sound is not None else ""
        meta = " · ".join(who + notes)
        bubbles.append(f'<div class="msg {css}"><div class="who">{meta}</div>{inner}{player}</div>')
    return '<div class="chat">' + "".join(bubbles) + "</div>"


def session_section(
    number: int,
    analysis: SessionAnalysis,
    report: Mapping[str, Any],
    audio: SessionAudio | None,
    budget: AudioBudget,
) -> str:
    turns = analysis.turns
    duration = report.get("duration_s")
    close = report.get("close_code")
    facts = [
        ("session id", esc(analysis.session_id)),
        ("dialect", esc(report.get("dialect"))),
        ("model", esc(report.get("model"))),
        ("provider", esc(report.get("provider"))),
        ("url", esc(report.get("url"))),
        ("duration", _num(duration, 1, " s")),
        (
            "closed",
            esc(close) + (f" {esc(report['close_reason'])}" if report.get("close_reason") else ""),
        ),
        ("turns", esc(len(turns))),
        ("items", esc(report.get("items"))),
        ("on the wire", _size((report.get("sizes") or {}).get("total_bytes"))),
    ]
    parts = [
        f'<section class="session" id="session-{number}">',
        f"<h2>Session {number}</h2>",
        _facts(facts),
    ]
    if len(turns):
        parts.append("<h3>Turns</h3>")
        parts.append(_table(list(_TURN_HEADERS), _turn_rows(turns), {0, 3, 4, 5, 6, 7, 8, 9}))
        parts.append(_img(plots.plot_turn_timeline(turns, analysis.session_id), "turn timeline"))
    errors = report.get("errors") or []
    if errors:
        parts.append("<h3>Server errors</h3>")
        parts.append(
            _table(
                ["time", "type", "code", "message"],
                [
                    [
                        _num(e.get("time_s"), 3),
                        esc(e.get("type")),
                        esc(e.get("code")),
                        esc(e.get("message")),
                    ]
                    for e in errors
                ],
                {0},
            )
        )
    parts.append("<h3>Conversation</h3>")
    if audio is not None:
        parts.append(_stereo_player(audio, budget))
        by_item = {item.item_id: item for item in audio.items}
    else:
        by_item = {}
    latency_by_item = {
        str(row["assistant_item_id"]): (float(row["latency_first_audio_ms"]), row["trigger"])
        for row in turns.to_dict("records")
        if isinstance(row["assistant_item_id"], str)
    }
    parts.append(_chat(analysis.conversation.items, by_item, latency_by_item, budget))
    parts.append("</section>")
    return "".join(parts)
