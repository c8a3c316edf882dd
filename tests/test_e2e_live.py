"""GPT-Live through real mitmdump with the default options (plain ws:// reverse mode): the
primary socket and, for a WebRTC-style call whose media never crosses the proxy, the sideband."""

from __future__ import annotations

import json
import signal
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from analyzer.events import event_table
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import LiveResult, run_live_conversation_sync
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.report import build_report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = PeerConfig(
    first_response_delay_ms=120, first_audio_delay_ms=90, transcription_delay_ms=60, audio_pace=8.0
)
SPEED = 2.0  # the client's pace: ~100 appends/s (plus their reflections) through the proxy
# Proxy receive time vs the peer's own send/receive times; both ends of the latency pass the
# proxy, so its forwarding delay (loopback) counts twice. On a loaded 2-core machine one turn
# may be off by a scheduling hiccup (as tests/test_e2e_analysis.py allows); typically <= 10 ms.
TOLERANCE_MS = 25
TYPICAL_MS = 10
TRANSCRIPTS = [
    ("Tell me a bedtime story.", "Once upon"),
    ("Wait, make it shorter please.", "A little bear found a honey tree, and slept happily."),
    ("What's the weather like in Paris today?", "It is sunny and 22 degrees in Paris."),
    ("Thanks, that's all.", "You're welcome. Good night!"),
]


def record(tmp_path: Path, sideband: bool) -> tuple[Path, LiveResult, list[dict[str, Any]]]:
    out = tmp_path / "captures"
    with (
        run_server(config=CONFIG, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):
        if sideband:  # the call's media go straight to the server; only the sideband is proxied
            attach = proxy.url("/v1/live/sessions/{session_id}/attach")
            result = run_live_conversation_sync(
                server.url("/v1/live/sessions"), speed=SPEED, sideband_url=attach
            )
        else:
            result = run_live_conversation_sync(proxy.url("/v1/live/sessions"), speed=SPEED)
        proxy.stop(signal.SIGINT)
    assert result.errors() == []
    return out, result, server.read_record().turns(result.session_id)


def _check_turns(session: dict[str, Any], truth: list[dict[str, Any]], sideband: bool) -> None:
    turns = session["turns"]
    assert len(turns) == len(truth) == 4
    assert [t["interrupted"] for t in turns] == [True, False, False, False]
    assert [t["status"] for t in turns] == ["cancelled", "completed", "completed", "completed"]
    assert turns[0]["status_reason"] == "turn_detected"
    assert [t["status"] for t in truth] == ["interrupted", "completed", "completed", "completed"]
    assert [t["trigger"] for t in turns] == ["vad"] * 4
    for turn, (user, assistant) in zip(turns, TRANSCRIPTS, strict=True):
        assert turn["user_transcript"] == user
        assert turn["assistant_transcript"].startswith(assistant)
    start_key = "speech_end_reflected_at_s" if sideband else "speech_end_at_s"
    audio_key = "first_audio_reflected_at_s" if sideband else "first_audio_at_s"
    off: list[float] = []
    for turn, fact in zip(turns, truth, strict=True):
        expected = (fact[audio_key] - fact[start_key]) * 1000
        assert turn["latency_ms"]["first_audio"] == pytest.approx(expected, abs=TOLERANCE_MS)
        off.append(abs(turn["latency_ms"]["first_audio"] - expected))
        # No silence window to add: the turn starts at the end of speech in the audio.
        assert turn["latency_ms"]["perceived_first_audio"] == turn["latency_ms"]["first_audio"]
    assert statistics.median(off) <= TYPICAL_MS, off


def test_a_primary_socket_is_recorded_whole_and_its_turns_measured(tmp_path: Path) -> None:
    out, result, truth = record(tmp_path, sideband=False)
    (parquet,) = out.rglob("*.parquet")
    table = pq.read_table(parquet)
    recorded = Counter(
        zip(
            table.column("direction").to_pylist(),
            table.column("event_type").to_pylist(),
            strict=True,
        )
    )
    sent = Counter((f["direction"], f["type"]) for f in result.frames)
    assert recorded - sent == Counter() and sent - recorded == Counter()  # every frame
    (session,) = build_report(read_capture(out))["sessions"]
    assert session["dialect"] == "live" and session["model"] == "gpt-live-1"
    _check_turns(session, truth, sideband=False)
    headers = dict(json.loads(json.dumps(read_capture(out).sessions.iloc[0]["request_headers"])))
    assert headers["Authorization"] == "[REDACTED]"
    events = event_table(table, {})
    usage = [e for e in events.to_pylist() if e["kind"] == "usage"]
    assert usage[-1]["audio_seconds"] > 0  # session.closed's cumulative audio seconds
    calls = [e for e in events.to_pylist() if e["kind"] == "tool_call"]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("get_weather", '{"location":"Paris","unit":"celsius"}')
    ]
    weather = session["turns"][2]
    assert weather["usage"]["input_tokens"] > 0  # the delegated backend's two responses


def test_a_sideband_alone_is_analyzed_as_the_session(tmp_path: Path) -> None:
    out, result, truth = record(tmp_path, sideband=True)
    (session,) = build_report(read_capture(out))["sessions"]
    assert session["dialect"] == "live"
    assert session["url"].endswith(f"/v1/live/sessions/{result.session_id}/attach")
    _check_turns(session, truth, sideband=True)
