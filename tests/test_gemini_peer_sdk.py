"""Every message the Gemini peer (client and server) sends is valid for the official SDK's models.

The ``google-genai`` SDK lives in a venv of its own (its pins clash with mitmproxy's): set
``RT_GENAI_PYTHON`` to its interpreter (default ``/tmp/genai/bin/python``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.record import read_timeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SDK_PYTHON = Path(os.environ.get("RT_GENAI_PYTHON", "/tmp/genai/bin/python"))

# Run by the SDK's interpreter: validates each frame (strict: the SDK's models forbid unknown
# fields) and prints one JSON line of what it checked.
VALIDATE = r"""
import base64, json, sys
from google.genai import types
checked = {"client": 0, "server": 0, "audio_bytes": 0, "fields": set()}
for line in open(sys.argv[1], encoding="utf-8"):
    frame = json.loads(line)
    model = types.LiveClientMessage if frame["direction"] == "client" else types.LiveServerMessage
    raw = json.loads(frame["text"])
    setup = raw.get("setup")
    if isinstance(setup, dict) and "realtimeInputConfig" in setup:
        # live.py sends it, but LiveClientSetup lacks the field: check it on its own model.
        types.RealtimeInputConfig.model_validate(setup.pop("realtimeInputConfig"))
        checked["fields"].add("realtime_input_config")
    message = model.model_validate(raw)
    checked[frame["direction"]] += 1
    checked["fields"].update(k for k, v in message if v is not None)
    realtime = getattr(message, "realtime_input", None)
    if realtime is not None and realtime.audio is not None:
        # Blob.data is bytes: the SDK's own decoding of what the client sent.
        assert realtime.audio.mime_type == "audio/pcm;rate=16000", realtime.audio.mime_type
        checked["audio_bytes"] += len(realtime.audio.data)
checked["fields"] = sorted(checked["fields"])
print(json.dumps(checked))
"""


def _sdk_available() -> bool:
    if not SDK_PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(SDK_PYTHON), "-c", "import google.genai.types"], capture_output=True, timeout=60
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _sdk_available(),
    reason=f"google-genai not installed at {SDK_PYTHON} (python3 -m venv /tmp/genai && "
    "/tmp/genai/bin/pip install google-genai, or set RT_GENAI_PYTHON)",
)
@pytest.mark.parametrize("scenario", ["default", "manual"])
def test_every_peer_message_validates_against_the_sdk_models(tmp_path: Path, scenario: str) -> None:
    server_record = tmp_path / "server.jsonl"
    with run_gemini_server(server_record, GeminiPeerConfig(audio_pace=8.0)) as port:
        result = run_gemini_conversation_sync(
            f"ws://127.0.0.1:{port}", scenario=scenario, speed=8.0
        )
    frames = read_timeline(server_record).frames()
    frames_path = tmp_path / "frames.jsonl"
    frames_path.write_text("".join(json.dumps(f) + "\n" for f in frames), encoding="utf-8")
    done = subprocess.run(
        [str(SDK_PYTHON), "-c", VALIDATE, str(frames_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checked = json.loads(done.stdout)
    sent = sum(1 for f in result.frames if f["direction"] == "client")
    received = sum(1 for f in result.frames if f["direction"] == "server")
    assert (checked["client"], checked["server"]) == (sent, received)
    assert checked["audio_bytes"] == len(result.sent_audio)
    expected = {"setup", "realtime_input", "setup_complete", "server_content", "usage_metadata"}
    assert expected <= set(checked["fields"])
    if scenario == "default":
        assert {"tool_call", "tool_response"} <= set(checked["fields"])
