"""The Gemini Live sample (``samples/gemini-voice``, recorded through real mitmdump with default
options at real-time pace by ``samples/make_samples.py gemini``): turns, transcripts, usage and
cost with exact values, latency against the peer's own record; and the cost of each provider's
sample computed by hand from its usage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.pricing import DEFAULT_PRICES, prices_for
from analyzer.reader import read_capture
from analyzer.report import build_report

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def session_of(name: str) -> dict[str, Any]:
    (session,) = build_report(read_capture(SAMPLES / name))["sessions"]
    return session


@pytest.fixture(scope="module", params=["gemini-voice.parquet", "gemini-voice.jsonl"])
def gemini(request: pytest.FixtureRequest) -> dict[str, Any]:
    return session_of(request.param)


def test_gemini_sample_turns_transcripts_and_tool_call(gemini: dict[str, Any]) -> None:
    assert gemini["dialect"] == "gemini"
    assert gemini["model"] == "models/gemini-live-2.5-flash-preview"
    turns = gemini["turns"]
    assert [t["trigger"] for t in turns] == ["vad", "vad", "vad", "response.create", "vad"]
    assert [t["interrupted"] for t in turns] == [True, False, False, False, False]
    assert [t["status_reason"] for t in turns] == ["turn_detected", None, "tool_call", None, None]
    assert [t["user_transcript"] for t in turns] == [
        "Tell me a bedtime story.",
        "Wait, make it shorter please.",
        "What's the weather like in Paris today?",
        None,  # the tool's answer: no user speech
        "Thanks, that's all.",
    ]
    assert [t["assistant_transcript"] for t in turns] == [
        "Once",  # cut off by the barge-in after three chunks
        "A little bear found a honey tree, and slept happily.",
        None,
        "It is sunny and 22 degrees in Paris.",
        "You're welcome. Good night!",
    ]
    assert [t["function_calls"] for t in turns] == [[], [], ["get_weather"], [], []]
    # 24 kHz reply audio: the interrupted reply got three 100 ms chunks; the others are the
    # peer's assets (short story 2980 ms, weather 2500 ms, thanks 1340 ms).
    assert [t["reply_audio_ms"] for t in turns] == [300.0, 2980.0, None, 2500.0, 1340.0]


def test_gemini_sample_usage_totals_and_cost(gemini: dict[str, Any]) -> None:
    truth = json.loads((SAMPLES / "gemini-voice.server-turns.json").read_text())
    turns = gemini["turns"]
    assert [t["usage"]["input_tokens"] for t in turns] == [54, 106, 245, 245, 347]
    assert [t["usage"]["input_tokens"] for t in turns] == [
        f["usage"]["promptTokenCount"] for f in truth
    ]
    assert [t["usage"]["total_tokens"] for t in turns] == [
        f["usage"]["totalTokenCount"] for f in truth
    ]
    assert gemini["usage"] == {
        "responses": 5,
        "input_tokens": 997,
        "output_tokens": 210,
        "total_tokens": 1207,
        "input_text_tokens": None,
        "input_audio_tokens": 997,
        "input_cached_tokens": None,
        "output_text_tokens": 30,
        "output_audio_tokens": 180,
        "input_cached_text_tokens": None,
        "input_cached_audio_tokens": None,
    }
    # By hand at Gemini 2.5 Flash Live's prices (USD per 1M): 997 audio in x 3.00 + 30 text
    # out x 2.00 + 180 audio out x 12.00 = 0.002991 + 0.00006 + 0.00216.
    assert gemini["cost"] == {
        "usd": 0.005211,
        "priced_as": "gemini-live-2.5-flash",
        "note": "estimate from list prices",
    }


def test_gemini_sample_latency_within_10_ms_of_the_peers_record(gemini: dict[str, Any]) -> None:
    truth = json.loads((SAMPLES / "gemini-voice.server-turns.json").read_text())
    for turn, fact in zip(gemini["turns"], truth, strict=True):
        if fact["first_audio_at_s"] is None:
            assert turn["latency_ms"]["first_audio"] is None
        else:
            expected = (fact["first_audio_at_s"] - fact["trigger_at_s"]) * 1000
            assert turn["latency_ms"]["first_audio"] == pytest.approx(expected, abs=10)


@pytest.mark.parametrize(
    ("name", "usd", "priced_as"),
    [
        # 17 s of session reported (session.usage.updated) x $0.05 a minute; the delegated
        # backend's tokens are not priced as gpt-live-1.
        ("live-voice.parquet", 0.014167, "gpt-live-1"),
        ("live-sideband.parquet", 0.014167, "gpt-live-1"),
    ],
)
def test_gpt_live_samples_are_priced_by_their_reported_seconds(
    name: str, usd: float, priced_as: str
) -> None:
    session = session_of(name)
    assert round(17 / 60 * 0.05, 6) == usd
    assert session["cost"]["usd"] == usd
    assert session["cost"]["priced_as"] == priced_as
    assert session["cost"]["note"].startswith("estimate: 17 s of session at the per-minute rate")


def test_gemini_model_names_find_their_prices() -> None:
    def key(model: str) -> str | None:
        found = prices_for(model)
        return found[0] if found else None

    assert key("models/gemini-2.0-flash-live-001") == "gemini-2.0-flash-live"
    assert key("gemini-2.5-flash-native-audio-preview-12-2025") == "gemini-2.5-flash-native-audio"
    assert key("models/gemini-live-2.5-flash-preview") == "gemini-live-2.5-flash"
    assert key("projects/p/locations/l/publishers/google/models/gemini-live-2.5-flash") == (
        "gemini-live-2.5-flash"
    )
    assert key("models/gpt-realtime") == "gpt-realtime"  # the part after the last slash
    assert key("models/unknown-model") is None
    live = DEFAULT_PRICES["gemini-2.0-flash-live"]
    assert (live.input_text, live.input_audio, live.output_text, live.output_audio) == (
        0.35,
        2.10,
        1.50,
        8.50,
    )


def test_duration_cost_adds_the_minutes_and_is_unknown_without_seconds() -> None:
    from analyzer.session_usage import with_duration_cost

    tokens = {"usd": 0.0, "priced_as": "gpt-live-1", "note": "estimate from list prices"}
    assert with_duration_cost(tokens, 90.0, "gpt-live-1")["usd"] == 0.075  # 1.5 min x $0.05
    unknown = with_duration_cost(tokens, None, "gpt-live-1")
    assert unknown["usd"] is None and unknown["priced_as"] == "gpt-live-1"
    realtime = {"usd": 0.028336, "priced_as": "gpt-realtime", "note": "estimate from list prices"}
    assert with_duration_cost(realtime, 30.0, "gpt-realtime") is realtime  # priced by tokens
    assert with_duration_cost(realtime, None, "no-such-model") is realtime
