"""The proxy's ``rt:`` lines for GPT-Live and Gemini Live sessions: one per reply, from the
adapter's normalized events, saying what the report says; and mitmdump's own process still
loads no pyarrow, pandas or numpy."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from analyzer.peer.gemini_client import PATH as GEMINI_PATH
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.recording.frames import build_frame
from analyzer.recording.live import LiveTurnLog
from analyzer.recording.normalize import SessionDecoders
from analyzer.report import build_report
from tests.test_addon_unit import ADDON_PATH


def expected_lines(out: Path) -> list[str]:
    """The lines the report's turns stand for."""
    (session,) = build_report(read_capture(out))["sessions"]
    lines = []
    for n, turn in enumerate(session["turns"], 1):
        start = "request" if turn["trigger"] == "response.create" else "speech_end"
        latency = turn["latency_ms"]["first_audio"]
        said = "n/a" if latency is None else f"{latency:.0f} ms"
        lines.append(
            f"rt: session {session['session_id'][:8]} turn {n}: {start} -> first audio {said}, "
            f"reply audio {turn['reply_audio_bytes']} bytes"
        )
    return lines


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_gemini_rt_lines_through_mitmdump_say_what_the_report_says(tmp_path: Path) -> None:
    out = tmp_path / "captures"
    with (
        run_gemini_server(tmp_path / "server.jsonl", GeminiPeerConfig(audio_pace=8.0)) as port,
        run_mitmdump(port, rt_dir=out) as proxy,
    ):
        run_gemini_conversation_sync(proxy.url(""), speed=8.0)
        proxy.stop(signal.SIGINT)
        lines = proxy.rt_lines()
    assert lines == expected_lines(out)
    assert len(lines) == 5  # the tool call's reply too (no audio: "n/a, reply audio 0 bytes")
    assert "turn 3: speech_end -> first audio n/a, reply audio 0 bytes" in lines[2]
    assert "turn 4: request -> first audio" in lines[3]  # after the tool response


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_gpt_live_rt_lines_through_mitmdump_say_what_the_report_says(tmp_path: Path) -> None:
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
        lines = proxy.rt_lines()
    assert result.errors() == []
    assert lines == expected_lines(out)
    assert len(lines) == 4 and all(": speech_end -> first audio " in line for line in lines)


def _rec(session: str, seq: int, t: float, from_client: bool, message: dict[str, Any]) -> Any:
    data = json.dumps(message).encode()
    # Gemini's server speaks in binary frames; its client and GPT-Live in text frames.
    return build_frame(session, seq, t, from_client, from_client, data)


def test_live_log_unit_gemini_turn_and_a_late_usage_only_end_prints_once() -> None:
    log = LiveTurnLog()
    decoders = SessionDecoders()
    decoders.start({"session_id": "g1234567-x", "path": GEMINI_PATH})

    def observe(rec: Any) -> str | None:
        rec.events = decoders.events(rec)  # as the recorder decodes each frame it records
        return log.observe(rec)

    audio = base64.b64encode(bytes(4800)).decode()
    blob = {"mimeType": "audio/pcm;rate=24000", "data": audio}
    frames: list[tuple[bool, dict[str, Any]]] = [
        (True, {"setup": {"model": "models/gemini-live-2.5-flash-preview"}}),
        (False, {"setupComplete": {}}),
        (True, {"realtime_input": {"audio": {"data": audio, "mime_type": "audio/pcm;rate=16000"}}}),
        (False, {"serverContent": {"inputTranscription": {"text": "Hi.", "finished": True}}}),
        (False, {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}),
        (False, {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}),
        (False, {"serverContent": {"turnComplete": True}}),
        (False, {"usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}),
    ]
    said = [
        observe(_rec("g1234567-x", n, 100.0 + n * 0.1, c, m)) for n, (c, m) in enumerate(frames)
    ]
    assert [line for line in said if line] == [
        "rt: session g1234567 turn 1: speech_end -> first audio 100 ms, reply audio 9600 bytes"
    ]
    assert said[6] is not None  # at turnComplete, not at the usage that follows


# A Gemini and a GPT-Live session through the addon with the writer process, in a fresh
# interpreter: which analysis libraries the proxy's process had loaded, and the writer's lines.
_PROXY_SIDE = """
import base64, importlib.util, json, sys
from mitmproxy import websocket
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

spec = importlib.util.spec_from_file_location("rt_capture", sys.argv[1])
capture = importlib.util.module_from_spec(spec)
spec.loader.exec_module(capture)
heavy = lambda: sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules)
audio = base64.b64encode(bytes(4800)).decode()
blob = {"mimeType": "audio/pcm;rate=24000", "data": audio}
sessions = {
    sys.argv[4]: [
        (True, {"setup": {"model": "models/gemini-live-2.5-flash-preview"}}),
        (False, {"serverContent": {"inputTranscription": {"text": "Hi.", "finished": True}}}),
        (False, {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}),
        (False, {"serverContent": {"turnComplete": True}}),
    ],
    "/v1/live/sessions": [
        (True, {"type": "session.start", "session": {"model": "gpt-live-1"}}),
        (False, {"type": "session.started", "session": {"id": "s", "model": "gpt-live-1"}}),
        (False, {"type": "session.output_audio.delta", "delta": audio}),
        (False, {"type": "session.closed"}),
    ],
}
addon = capture.RealtimeCapture()
with taddons.context(addon) as tctx:
    tctx.configure(addon, rt_dir=sys.argv[2], rt_writer=sys.argv[3])
    addon.running()
    for path, frames in sessions.items():
        flow = tflow.twebsocketflow(messages=False)
        flow.request.path = path
        addon.websocket_start(flow)
        for from_client, event in frames:
            text = from_client or path.startswith("/v1/")
            opcode = Opcode.TEXT if text else Opcode.BINARY
            message = json.dumps(event).encode()
            flow.websocket.messages.append(websocket.WebSocketMessage(opcode, from_client, message))
            addon.websocket_message(flow)
        addon.websocket_end(flow)
    addon.done()
print(json.dumps({"end": heavy()}))
"""


def test_with_gemini_and_gpt_live_sessions_mitmdump_loads_no_analysis_library(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROXY_SIDE, str(ADDON_PATH), str(tmp_path), "process", GEMINI_PATH],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == {"end": []}
    # The writer process printed a line for each session's reply.
    lines = [line[line.index("rt: ") :] for line in out.stdout.splitlines() if "rt: " in line]
    assert len(lines) == 2, out.stdout
    # (the messages are stamped when made: the latency is a few ms at most)
    assert re.search(r"speech_end -> first audio \d ms, reply audio 4800 bytes$", lines[0])
    assert lines[1].endswith("start -> first audio n/a, reply audio 4800 bytes")
