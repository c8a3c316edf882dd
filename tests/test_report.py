"""The JSON report: its shape, the seed session, several sessions, no NaN."""

from __future__ import annotations

import json
from pathlib import Path

from analyzer.analysis import infer_dialect
from analyzer.reader import read_capture
from analyzer.report import build_report
from tests.capture_factory import T0, ga_response, ga_session_created, record_sessions, seed_capture
from tests.test_turns import ga_barge_in_session

TURN_KEYS = {
    "index",
    "user_item_id",
    "response_id",
    "assistant_item_id",
    "status",
    "interrupted",
    "user_transcript",
    "assistant_transcript",
    "latency_ms",
    "usage",
}
LATENCY_KEYS = {
    "response_created",
    "first_transcript",
    "first_audio",
    "first_text",
    "response_done",
    "transcription",
}


def test_seed_report(tmp_path: Path) -> None:
    report = build_report(read_capture(seed_capture(tmp_path)))
    json.dumps(report, allow_nan=False)  # plain JSON, no NaN
    assert set(report) == {"sessions", "summary"}
    (session,) = report["sessions"]
    assert {"session_id", "dialect", "model", "turns", "sizes"} <= set(session)
    assert (session["session_id"], session["dialect"], session["model"]) == (
        "seed",
        "beta",
        "gpt-4o-realtime-preview-2024-10-01",
    )
    (turn,) = session["turns"]
    assert set(turn) >= TURN_KEYS and set(turn["latency_ms"]) >= LATENCY_KEYS
    assert turn["index"] == 1 and turn["status"] == "completed" and turn["interrupted"] is False
    assert turn["user_transcript"].strip() == "讲一个睡前故事"
    assert turn["assistant_transcript"].startswith("从前在一片茂密的森林里")
    assert turn["latency_ms"] == {
        "response_created": None,
        "first_transcript": 700.0,
        "first_audio": 900.0,
        "first_text": None,
        "response_done": 1400.0,
        "transcription": 800.0,
        "transcription_first_delta": None,  # the seed has no transcript deltas
        "perceived_first_audio": 1100.0,
        # the seed's audio is a few bytes of no speech: nothing heard (analyzer.heard)
        "heard_first_audio": None,
        "heard_first_voice": None,
        "barge_in_stop": None,
        "barge_in_cancel": None,
        "answer_first_audio": None,  # no tool was called
    }
    usage = turn["usage"]
    assert (usage["total_tokens"], usage["input_tokens"], usage["output_tokens"]) == (
        1606,
        26,
        1580,
    )
    assert (usage["input_text_tokens"], usage["input_audio_tokens"]) == (8, 18)
    assert (usage["output_text_tokens"], usage["output_audio_tokens"]) == (316, 1264)
    sizes = session["sizes"]
    assert {"frames", "total_bytes", "audio_bytes"} <= set(sizes)
    # the created item's input_audio part is audio too (issue 20)
    assert sizes["frames"] == 19 and sizes["audio_bytes"] == 15 and sizes["audio_b64_bytes"] == 20
    assert sizes["audio_share"] == round(20 / sizes["total_bytes"], 4)
    assert session["cost"]["usd"] == 0.26096
    summary = report["summary"]
    assert summary["sessions"] == 1 and summary["turns"] == 1
    assert summary["usage"]["total_tokens"] == 1606
    assert summary["latency_ms"]["first_audio"]["p50"] == 900.0


def test_a_run_of_several_sessions_reports_each_and_sums(tmp_path: Path) -> None:
    greeting = [
        ga_session_created(T0 + 100),
        *ga_response(T0 + 101, "r1", "a1", None, "Hi", [], 0.2),
    ]
    run = record_sessions(tmp_path, {"s-a": ga_barge_in_session(), "s-b": greeting})
    report = build_report(read_capture(run.parquet_path))
    json.dumps(report, allow_nan=False)
    assert [s["session_id"] for s in report["sessions"]] == ["s-a", "s-b"]
    assert [len(s["turns"]) for s in report["sessions"]] == [3, 1]
    assert [s["dialect"] for s in report["sessions"]] == ["ga", "ga"]
    cut = report["sessions"][0]["turns"][1]
    assert cut["interrupted"] is True and cut["played_ms"] == 150.0
    assert cut["status"] == "cancelled" and cut["status_reason"] == "turn_detected"
    greeting_turn = report["sessions"][1]["turns"][0]
    assert greeting_turn["trigger"] is None and greeting_turn["usage"] is None
    assert greeting_turn["latency_ms"]["first_audio"] is None
    summary = report["summary"]
    assert summary["turns"] == 4 and summary["interrupted_turns"] == 1
    assert summary["usage"]["total_tokens"] == 65 + 83 + 120
    assert summary["dialects"] == {"ga": 2}
    assert summary["latency_ms"]["first_audio"]["count"] == 3
    assert summary["cost_usd"] == report["sessions"][0]["cost"]["usd"]
    assert report["sessions"][1]["cost"]["usd"] is None  # no response reported usage
    assert summary["cost_unpriced_sessions"] == 1


def test_dialect_is_inferred_from_event_types_when_facts_lack_it(tmp_path: Path) -> None:
    frames = read_capture(seed_capture(tmp_path)).frames
    assert infer_dialect(frames) == "beta"
    ga = frames.assign(event_type="response.output_audio.delta")
    assert infer_dialect(ga) == "ga"
    assert infer_dialect(frames.assign(event_type="error")) is None
