"""Speech-to-text latency compared across providers (issue 21): GPT-Live's input transcript
and Gemini's ``inputTranscription`` fill the same turn columns as a Realtime transcription,
``latency_ms.transcription_first_delta`` (end of speech -> first words), ``latency_ms
.transcription`` (-> the last words) and ``transcription_deltas``."""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import analyze_capture
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync
from analyzer.peer.record import read_timeline
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.report import build_report
from tests.capture_factory import T0
from tests.protocol_audio_fields import GEMINI_URL, LIVE_URL, Frame, record_frames

# Proxy receive time vs the peer's send time: typically a few ms; on a loaded 2-core machine
# one frame now and then reaches the proxy tens of ms late (as tests/test_e2e_transcription.py
# saw), so the median deviation is held to TOLERANCE_MS and every one to STALL_MS.
TOLERANCE_MS = 10
STALL_MS = 100


def _turns(capture: Path) -> list[dict[str, Any]]:
    (session,) = build_report(read_capture(capture))["sessions"]
    turns: list[dict[str, Any]] = session["turns"]
    return turns


def _rows(capture: Path) -> list[dict[str, Any]]:
    """The turn table's rows (the report's turns lack the moments)."""
    (analysis,) = analyze_capture(read_capture(capture))
    return list(analysis.turn_rows)


def _stt(turn: dict[str, Any]) -> tuple[Any, ...]:
    latency = turn["latency_ms"]
    return (
        turn["user_transcript"],
        turn["transcription_deltas"],
        latency["transcription_first_delta"],
        latency["transcription"],
    )


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message)


def test_gpt_live_input_transcript_is_timed_from_the_end_of_speech_in_the_audio(
    tmp_path: Path,
) -> None:
    """Five 20 ms appends (the last, holding the end of speech at 100 ms, at +180 ms), the
    words at +250 ms and +300 ms, the reply at +500 ms."""
    chunk = base64.b64encode(bytes(960)).decode()  # 20 ms of 24 kHz PCM16
    frames: list[Frame] = [
        (T0, "server", _json({"type": "session.started", "event_id": "e0"})),
        *(
            (T0 + 0.1 + i * 0.02, "client",
             _json({"type": "session.input_audio.append", "audio": chunk}))
            for i in range(5)
        ),
        (T0 + 0.25, "server", _json({"type": "session.input_transcript.delta", "event_id": "e1",
                                     "delta": "Hello", "start_ms": 0, "end_ms": 60})),
        (T0 + 0.30, "server", _json({"type": "session.input_transcript.delta", "event_id": "e2",
                                     "delta": " there.", "start_ms": 60, "end_ms": 100})),
        (T0 + 0.50, "server", _json({"type": "session.output_audio.delta", "event_id": "e3",
                                     "delta": chunk})),
    ]  # fmt: skip
    run = record_frames(tmp_path, LIVE_URL, {"s": frames})
    (turn,) = _turns(run.parquet_path)
    assert _stt(turn) == ("Hello there.", 2, 70.0, 120.0)
    assert turn["latency_ms"]["first_audio"] == 320.0


def test_gemini_input_transcription_is_one_transcript_timed_at_its_last_words(
    tmp_path: Path,
) -> None:
    """Words at +450 and +620 ms, the model's turn (the input's end, unsaid) at +700 ms, the
    last words at +750 ms: one transcript, from -250 ms to +50 ms of the end of speech."""
    chunk = base64.b64encode(bytes(3200)).decode()  # 100 ms of 16 kHz PCM16
    reply = base64.b64encode(bytes(4800)).decode()

    def content(body: dict[str, Any]) -> str:
        return _json({"serverContent": body})

    model_audio = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": reply}}
    frames: list[Frame] = [
        (T0, "client", _json({"setup": {"model": "models/gemini-live-2.5-flash",
                                        "inputAudioTranscription": {}}})),
        (T0 + 0.01, "server", _json({"setupComplete": {}})),
        *(
            (T0 + 0.1 + i * 0.1, "client",
             _json({"realtimeInput": {"audio": {"data": chunk, "mimeType": "audio/pcm"}}}))
            for i in range(5)
        ),
        (T0 + 0.45, "server", content({"inputTranscription": {"text": "Hello"}})),
        (T0 + 0.62, "server", content({"inputTranscription": {"text": " there"}})),
        (T0 + 0.70, "server", content({"modelTurn": {"parts": [model_audio]}})),
        (T0 + 0.75, "server", content({"inputTranscription": {"text": "."}})),
        (T0 + 0.90, "server", content({"turnComplete": True})),
    ]  # fmt: skip
    run = record_frames(tmp_path, GEMINI_URL, {"s": frames})
    (turn,) = _turns(run.parquet_path)
    assert _stt(turn) == ("Hello there.", 3, -250.0, 50.0)


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_gpt_live_peer_transcription_latencies_match_the_peers_own_timeline(
    tmp_path: Path,
) -> None:
    """Each turn's first and last input transcript delta, as the peer sent them, minus the
    arrival of the append holding the end of speech (the peer's record)."""
    config = PeerConfig(
        first_response_delay_ms=120,
        first_audio_delay_ms=90,
        transcription_delay_ms=60,
        audio_pace=8.0,
    )
    out = tmp_path / "captures"
    with (
        run_server(config=config, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):
        result = run_live_conversation_sync(proxy.url("/v1/live/sessions"), speed=2.0)
        proxy.stop(signal.SIGINT)
    assert result.errors() == []
    timeline = server.read_record()
    truth = timeline.turns(result.session_id)
    deltas = [
        (frame["time_s"], json.loads(frame["text"]))
        for frame in timeline.frames(result.session_id)
        if frame["direction"] == "server" and '"session.input_transcript.delta"' in frame["text"]
    ]
    turns = _turns(out)
    assert len(turns) == len(truth) == 4
    deviations: list[float] = []
    for turn, fact in zip(turns, truth, strict=True):
        mine = [
            sent_s
            for sent_s, delta in deltas
            if fact["speech_start_ms"] <= delta["start_ms"] < fact["speech_end_ms"]
        ]
        first_ms = (mine[0] - fact["speech_end_at_s"]) * 1000
        last_ms = (mine[-1] - fact["speech_end_at_s"]) * 1000
        assert turn["transcription_deltas"] == len(mine) == len(turn["user_transcript"].split())
        latency = turn["latency_ms"]
        deviations += [
            abs(latency["transcription_first_delta"] - first_ms),
            abs(latency["transcription"] - last_ms),
        ]
        assert latency["transcription"] >= latency["transcription_first_delta"] >= 60 - 1
    assert max(deviations) <= STALL_MS, deviations
    assert sorted(deviations)[len(deviations) // 2] <= TOLERANCE_MS, deviations


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_gemini_peer_transcription_is_the_end_of_the_input(tmp_path: Path) -> None:
    """The peer tells the input's end by its one finished ``inputTranscription``: the speech
    ends, and is transcribed, at that message (one delta) for each spoken turn. The end of
    speech is known only from the transcript, so the transcript's latency is not measurable:
    null, not 0 ms."""
    out = tmp_path / "captures"
    record = tmp_path / "server.jsonl"
    config = GeminiPeerConfig(first_audio_delay_ms=150, audio_pace=8.0)
    with run_gemini_server(record, config) as port, run_mitmdump(port, rt_dir=out) as proxy:
        run_gemini_conversation_sync(proxy.url(""), scenario="default", speed=8.0)
        proxy.stop(signal.SIGINT)
    finished = [
        json.loads(f["text"])["serverContent"]["inputTranscription"]["text"]
        for f in read_timeline(record).frames()
        if '"inputTranscription"' in f["text"]
    ]
    spoken = [t for t in _turns(out) if t["trigger"] == "vad"]
    assert [_stt(t) for t in spoken] == [(text, 1, None, None) for text in finished]
    assert all(
        t["speech_stopped_s"] == t["transcription_s"] for t in _rows(out) if t["trigger"] == "vad"
    )
    assert len(spoken) == 4
