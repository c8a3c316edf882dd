"""Analyze fresh captures of the local realtime server, recorded through real mitmdump."""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from analyzer.audio import load_item_audio
from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.scenarios import DEFAULT_TURNS, Scenario
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.report import build_report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# Delays far apart, so a mix-up of two metrics cannot pass within the tolerance.
CONFIG = PeerConfig(
    first_response_delay_ms=120,
    first_audio_delay_ms=90,
    transcription_delay_ms=60,
    audio_pace=8.0,
)
TOLERANCE_MS = 25  # proxy receive time vs server send time, on a loaded 2-core machine


def record(
    tmp_path: Path, dialect: str, scenario: Scenario | str
) -> tuple[Path, ConversationResult, list[dict[str, Any]]]:
    out = tmp_path / "captures"
    with (
        run_server(config=CONFIG, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect=dialect, scenario=scenario, speed=8.0)
        proxy.stop(signal.SIGINT)
    assert result.errors() == []
    return out, result, server.read_record().turns()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_latencies_are_within_a_few_ms_of_the_servers_record(tmp_path: Path, dialect: str) -> None:
    out, _, truth_turns = record(tmp_path, dialect, "default")
    (session,) = build_report(read_capture(out))["sessions"]
    turns = session["turns"]
    assert len(turns) == len(truth_turns) == 5
    assert [t["interrupted"] for t in turns] == [True, False, False, False, False]
    for turn, truth in zip(turns, truth_turns, strict=True):
        start = truth["trigger_at_s"]
        expected = {
            "response_created": truth["response_created_at_s"],
            "first_audio": truth["first_audio_at_s"],
            "first_transcript": truth["first_transcript_at_s"],
            "response_done": truth["response_done_at_s"],
        }
        for metric, at_s in expected.items():
            measured = turn["latency_ms"][metric]
            if at_s is None:
                assert measured is None
            else:
                assert measured == pytest.approx((at_s - start) * 1000, abs=TOLERANCE_MS), metric
        if turn["latency_ms"]["first_audio"] is not None:  # the configured delays, seen through
            assert turn["latency_ms"]["response_created"] == pytest.approx(120, abs=TOLERANCE_MS)
            assert turn["latency_ms"]["first_audio"] == pytest.approx(210, abs=TOLERANCE_MS)


def _sent_audio(result: ConversationResult, direction: str) -> list[tuple[str, bytes]]:
    """(event type, decoded audio) of every audio event, in order, as the client saw them."""
    out = []
    for frame in result.frames:
        if frame["direction"] != direction:
            continue
        event = json.loads(frame["text"])
        field = "audio" if event["type"] == "input_audio_buffer.append" else "delta"
        if event["type"].endswith("audio.delta") or event["type"] == "input_audio_buffer.append":
            out.append((event.get("item_id", ""), base64.b64decode(event[field])))
    return out


@pytest.mark.parametrize("audio_format", ["pcm16", "g711_ulaw", "g711_alaw"])
def test_wav_files_are_byte_exact_with_the_audio_sent(tmp_path: Path, audio_format: str) -> None:
    scenario = Scenario(
        "manual-" + audio_format, DEFAULT_TURNS[1:3], vad=False, audio_format=audio_format
    )
    out, result, _ = record(tmp_path, "ga", scenario)
    items = load_item_audio(out)
    # Assistant items: each one's deltas, concatenated.
    received: dict[str, bytes] = {}
    for item_id, audio in _sent_audio(result, "server"):
        received[item_id] = received.get(item_id, b"") + audio
    assistant = {i.item_id: i for i in items if i.role == "assistant"}
    assert set(assistant) == set(received)
    for item_id, audio in received.items():
        assert assistant[item_id].raw == audio
        assert assistant[item_id].file_bytes().endswith(audio)  # the WAV's data chunk
    # User items (manual commits): everything appended since the previous commit.
    user_items = [i for i in items if i.role == "user"]
    appended = b"".join(audio for _, audio in _sent_audio(result, "client"))
    assert b"".join(i.raw for i in user_items) == appended
    expected_rate = 24000 if audio_format == "pcm16" else 8000
    assert {i.sample_rate for i in items} == {expected_rate}
