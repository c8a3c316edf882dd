"""Plots draw exactly the turn table and size table they are given (checked on the artists)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analyzer import plots
from analyzer.analysis import all_turns, analyze_capture
from analyzer.reader import read_capture
from analyzer.sizes import BY_EVENT_COLUMNS
from analyzer.turns import TURN_COLUMNS
from tests.capture_factory import T0, record_sessions
from tests.test_turns import ga_barge_in_session

NAN = math.nan


def turn_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A turn table (all of TURN_COLUMNS) with the given cells and NaN/None elsewhere."""
    defaults: dict[str, Any] = {c: NAN for c in TURN_COLUMNS}
    defaults.update(
        interrupted=False, trigger="vad", function_calls=[], status="completed", played_ms=NAN
    )
    return pd.DataFrame([{**defaults, **row} for row in rows], columns=list(TURN_COLUMNS))


def by_label(ax: Axes) -> tuple[dict[str, BarContainer], dict[str, Line2D]]:
    bars = {str(c.get_label()): c for c in ax.containers if isinstance(c, BarContainer)}
    lines = {str(line.get_label()): line for line in ax.lines}
    return bars, lines


def xs(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_xdata(), dtype=float)]


def ys(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_ydata(), dtype=float)]


def geometry(container: BarContainer) -> dict[str, list[float]]:
    patches = list(container.patches)
    return {
        "x": [p.get_x() for p in patches],
        "y": [p.get_y() for p in patches],
        "w": [p.get_width() for p in patches],
        "h": [p.get_height() for p in patches],
    }


# --- timeline -------------------------------------------------------------------------------

TIMELINE_TURNS = turn_table(
    [
        {
            "session_id": "s1",
            "index": 1,
            "speech_started_s": T0 + 1.0,
            "speech_stopped_s": T0 + 2.0,
            "turn_start_s": T0 + 2.0,
            "response_created_s": T0 + 2.2,
            "first_audio_s": T0 + 2.5,
            "response_done_s": T0 + 3.0,
            "reply_audio_ms": 1800.0,
        },
        {  # cut off by the user after 300 ms of its 2 s
            "session_id": "s1",
            "index": 2,
            "speech_started_s": T0 + 4.0,
            "speech_stopped_s": T0 + 4.6,
            "turn_start_s": T0 + 4.6,
            "response_created_s": T0 + 4.8,
            "first_audio_s": T0 + 5.0,
            "response_done_s": T0 + 5.4,
            "reply_audio_ms": 2000.0,
            "played_ms": 300.0,
            "interrupted": True,
            "status": "cancelled",
        },
        {  # the client asked (function call output): no speech, no audio
            "session_id": "s1",
            "index": 3,
            "trigger": "response.create",
            "turn_start_s": T0 + 6.0,
            "response_created_s": T0 + 6.1,
            "response_done_s": T0 + 6.5,
            "reply_audio_ms": NAN,
        },
        {  # another session: must not show up
            "session_id": "s2",
            "index": 1,
            "speech_started_s": T0 + 0.1,
            "speech_stopped_s": T0 + 0.3,
            "turn_start_s": T0 + 0.3,
            "first_audio_s": T0 + 0.6,
            "reply_audio_ms": 500.0,
        },
    ]
)


def test_timeline_user_speech_bars_span_speech_started_to_stopped() -> None:
    fig = plots.plot_turn_timeline(TIMELINE_TURNS, "s1")
    (ax,) = fig.axes
    bars, _ = by_label(ax)
    speech = geometry(bars["user speech"])
    assert speech["x"] == pytest.approx([0.0, 3.0])  # t0 = turn 1's speech_started
    assert speech["w"] == pytest.approx([1.0, 0.6])
    centers = np.add(speech["y"], np.divide(speech["h"], 2))
    assert centers == pytest.approx([1 - plots.BAR_HEIGHT / 2, 2 - plots.BAR_HEIGHT / 2])


def test_timeline_reply_bar_plays_from_first_audio_and_is_cut_where_interrupted() -> None:
    fig = plots.plot_turn_timeline(TIMELINE_TURNS, "s1")
    (ax,) = fig.axes
    bars, _ = by_label(ax)
    played = geometry(bars["reply audio playing"])
    assert played["x"] == pytest.approx([1.5]) and played["w"] == pytest.approx([1.8])
    cut = geometry(bars["reply audio, interrupted"])
    assert cut["x"] == pytest.approx([4.0]) and cut["w"] == pytest.approx([0.3])
    assert all(p.get_hatch() for p in bars["reply audio, interrupted"].patches)
    assert [t.get_text() for t in ax.texts] == ["interrupted"]


def test_timeline_markers_sit_at_each_event_of_each_turn() -> None:
    fig = plots.plot_turn_timeline(TIMELINE_TURNS, "s1", t0_s=T0)
    (ax,) = fig.axes
    _, lines = by_label(ax)
    expected = {
        "speech_stopped": ([2.0, 4.6], [1, 2]),
        "response.created": ([2.2, 4.8, 6.1], [1, 2, 3]),
        "first audio": ([2.5, 5.0], [1, 2]),
        "response.done": ([3.0, 5.4, 6.5], [1, 2, 3]),
        "client commit / response.create": ([6.0], [3]),
    }
    assert set(lines) == set(expected)
    for label, (x, y) in expected.items():
        assert xs(lines[label]) == pytest.approx(x), label
        assert ys(lines[label]) == pytest.approx(y), label
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["turn 1 (vad)", "turn 2 (vad)", "turn 3 (response.create)"]


def test_timeline_of_a_session_without_turns_says_so() -> None:
    fig = plots.plot_turn_timeline(TIMELINE_TURNS, "nope")
    assert not fig.axes[0].containers and "no turns" in fig.axes[0].texts[0].get_text()


# --- latency --------------------------------------------------------------------------------


def test_latency_cdf_lines_are_the_sorted_latencies_of_every_session() -> None:
    turns = turn_table(
        [
            {"session_id": "a", "index": 1, "latency_first_audio_ms": 420.0},
            {"session_id": "a", "index": 2, "latency_first_audio_ms": 250.0},
            {"session_id": "b", "index": 1, "latency_first_audio_ms": NAN},
            {"session_id": "b", "index": 2, "latency_first_audio_ms": 300.0},
        ]
    )
    turns["perceived_first_audio_ms"] = turns["latency_first_audio_ms"] + 500
    metrics = ("latency_first_audio_ms", "perceived_first_audio_ms", "latency_transcription_ms")
    fig = plots.plot_latency_distribution(turns, metrics)
    (ax,) = fig.axes
    assert len(ax.lines) == 2  # transcription has no values
    first, perceived = ax.lines
    assert xs(first) == [250.0, 300.0, 420.0]
    assert ys(first) == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert first.get_drawstyle() == "steps-post"
    assert xs(perceived) == [750.0, 800.0, 920.0]
    assert "p50 300 ms, n=3" in str(first.get_label())
    assert any("input transcription" in t.get_text() for t in ax.texts)


def test_latency_plot_without_any_value_says_so() -> None:
    fig = plots.plot_latency_distribution(turn_table([{"session_id": "a", "index": 1}]))
    assert not fig.axes[0].lines and "no latencies" in fig.axes[0].texts[0].get_text()


# --- payload --------------------------------------------------------------------------------


def sizes_table(rows: list[tuple[str, str, str, int, int, int]]) -> pd.DataFrame:
    """(session, direction, event, frames, bytes, audio_b64_bytes) rows as sizes_by_event."""
    return pd.DataFrame(
        [(s, d, e, n, b, a, a * 3 // 4) for s, d, e, n, b, a in rows], columns=BY_EVENT_COLUMNS
    )


def test_payload_bars_stack_audio_then_json_per_event_and_direction() -> None:
    sizes = sizes_table(
        [
            ("s1", "client", "input_audio_buffer.append", 10, 6000, 5600),
            ("s2", "client", "input_audio_buffer.append", 5, 3000, 2800),
            ("s1", "server", "response.output_audio.delta", 4, 7000, 6500),
            ("s1", "server", "response.done", 2, 900, 0),
            ("s1", "client", "session.update", 1, 400, 0),
        ]
    )
    fig = plots.plot_payload_breakdown(sizes)
    (ax,) = fig.axes
    bars, _ = by_label(ax)
    audio, other = geometry(bars["audio (base64)"]), geometry(bars["JSON / text"])
    # Largest first; the two sessions' appends are summed.
    assert audio["w"] == [8400, 6500, 0, 0]
    assert other["x"] == audio["w"]
    assert other["w"] == [600, 500, 900, 400]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "client · input_audio_buffer.append",
        "server · response.output_audio.delta",
        "server · response.done",
        "client · session.update",
    ]
    assert "86.1% audio" in ax.get_title()  # (8400 + 6500) / 17300


def test_payload_beyond_top_rows_is_one_other_row() -> None:
    sizes = sizes_table([("s", "server", f"e{i}", 1, 100 * (i + 1), 0) for i in range(6)])
    table = plots.payload_breakdown(sizes, top=3)
    assert list(table["event_type"]) == ["e5", "e4", "(4 other events)"]
    assert list(table["bytes"]) == [600, 500, 1000]


# --- tokens ---------------------------------------------------------------------------------


def test_token_bars_are_input_and_output_text_and_audio_per_turn() -> None:
    turns = turn_table(
        [
            {
                "session_id": "s",
                "index": 1,
                "total_tokens": 65,
                "input_text_tokens": 10,
                "input_audio_tokens": 20,
                "input_cached_tokens": 0,
                "output_text_tokens": 5,
                "output_audio_tokens": 30,
            },
            {"session_id": "s", "index": 2},  # no usage reported: no bars
            {
                "session_id": "s",
                "index": 3,
                "total_tokens": 83,
                "input_text_tokens": 30,
                "input_audio_tokens": 40,
                "input_cached_tokens": 20,
                "output_text_tokens": 3,
                "output_audio_tokens": 10,
            },
        ]
    )
    fig = plots.plot_tokens_per_turn(turns)
    (ax,) = fig.axes
    bars, _ = by_label(ax)
    text_in, audio_in = geometry(bars["input text"]), geometry(bars["input audio"])
    assert text_in["h"] == [10, 30] and audio_in["h"] == [20, 40]
    assert audio_in["y"] == [10, 30]  # stacked on the text
    text_out, audio_out = geometry(bars["output text"]), geometry(bars["output audio"])
    assert text_out["h"] == [5, 3] and audio_out["h"] == [30, 10] and audio_out["y"] == [5, 3]
    assert geometry(bars["of which cached"])["h"] == [0, 20]
    assert np.all(np.array(text_in["x"]) < np.array(text_out["x"]))  # input left of output
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]


# --- output and a real capture -------------------------------------------------------------


def test_figure_png_and_figure_data_read_back_what_was_drawn() -> None:
    fig = plots.plot_turn_timeline(TIMELINE_TURNS, "s1")
    assert plots.figure_png(fig).startswith(b"\x89PNG\r\n\x1a\n")
    (data,) = plots.figure_data(fig)
    json.dumps(data, allow_nan=False)
    speech = next(b for b in data["bars"] if b["label"] == "user speech")
    assert speech["width"] == pytest.approx([1.0, 0.6])
    created = next(line for line in data["lines"] if line["label"] == "response.created")
    assert created["y"] == [1.0, 2.0, 3.0]


def test_plots_of_a_recorded_session_match_its_turn_table(tmp_path: Path) -> None:
    run = record_sessions(tmp_path, {"barge": ga_barge_in_session()})
    analyses = list(analyze_capture(read_capture(Path(run.parquet_path))))
    turns = all_turns(analyses)
    assert turns["interrupted"].tolist() == [False, True, False]

    (ax,) = plots.plot_turn_timeline(turns, "barge").axes
    t0 = plots.session_time_zero(turns)
    bars, lines = by_label(ax)
    speech = geometry(bars["user speech"])
    assert speech["w"] == pytest.approx(list(turns["speech_stopped_s"] - turns["speech_started_s"]))
    assert speech["x"] == pytest.approx(list(turns["speech_started_s"] - t0))
    cut = geometry(bars["reply audio, interrupted"])
    assert cut["w"] == pytest.approx([0.15])  # the client's truncate audio_end_ms
    assert cut["x"] == pytest.approx([turns["first_audio_s"][1] - t0])
    done = lines["response.done"]
    assert xs(done) == pytest.approx(list(turns["response_done_s"] - t0))

    (ax,) = plots.plot_latency_distribution(turns, ["latency_first_audio_ms"]).axes
    assert xs(ax.lines[0]) == sorted(turns["latency_first_audio_ms"])

    sizes = pd.concat([a.sizes for a in analyses])
    (ax,) = plots.plot_payload_breakdown(sizes).axes
    bars, _ = by_label(ax)
    assert (
        sum(p.get_width() for p in bars["audio (base64)"].patches) == sizes["audio_b64_bytes"].sum()
    )
    assert isinstance(plots.plot_tokens_per_turn(turns), Figure)


def test_busiest_session_is_the_one_with_most_turns_first_of_equals() -> None:
    turns = turn_table(
        [{"session_id": s, "index": i} for s, i in (("a", 1), ("b", 1), ("b", 2), ("c", 1))]
    )
    assert plots.busiest_session(turns) == "b"
    assert plots.busiest_session(turns[turns["session_id"] != "b"]) == "a"
    assert plots.busiest_session(turns.iloc[0:0]) is None
