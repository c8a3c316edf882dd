"""The local GPT-Live peer: the scripted conversation's outcomes, its own record, and every event
it and its client send checked against the official ``openai`` SDK's models (``types/live``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from analyzer.peer.live_client import LiveResult, run_live_conversation
from analyzer.peer.record import Timeline
from analyzer.peer.server import PeerConfig, RealtimeServer

pytestmark = pytest.mark.timeout(300)

SDK_SPEC = "openai>=3.54"
CHECKER = Path(__file__).resolve().parent / "live_sdk_check.py"
CONFIG = PeerConfig(
    first_response_delay_ms=60, first_audio_delay_ms=30, transcription_delay_ms=20, audio_pace=8.0
)


def _run(sideband: bool) -> tuple[LiveResult, Timeline]:
    async def go() -> tuple[LiveResult, Timeline]:
        async with RealtimeServer(CONFIG) as server:
            base = f"ws://127.0.0.1:{server.port}/v1/live/sessions"
            attach = base + "/{session_id}/attach" if sideband else None
            result = await run_live_conversation(base, speed=4.0, sideband_url=attach)
            return result, server.timeline

    return asyncio.run(go())


@pytest.fixture(scope="module")
def live_default() -> tuple[LiveResult, Timeline]:
    return _run(sideband=True)


@pytest.fixture(scope="session")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with the official SDK: ``RT_LIVE_SDK_PYTHON``, or a venv made here (its
    dependencies clash with mitmproxy's, so never the project's venv)."""
    given = os.environ.get("RT_LIVE_SDK_PYTHON")
    if given:
        return Path(given)
    home = tmp_path_factory.mktemp("live-sdk")
    venv.EnvBuilder(with_pip=True).create(home)
    python = home / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", SDK_SPEC],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(
            f"the official SDK ({SDK_SPEC}) could not be installed: {install.stderr[-300:]}"
        )
    return python


def test_the_scripted_conversation_has_its_outcomes(live_default: Any) -> None:
    result, timeline = live_default
    assert result.errors() == []
    turns = timeline.turns(result.session_id)
    assert [(t["utterance"], t["reply"], t["status"]) for t in turns] == [
        ("user_story", "reply_story", "interrupted"),
        ("user_shorter", "reply_short_story", "completed"),
        ("user_weather", "reply_weather", "completed"),
        ("user_thanks", "reply_thanks", "completed"),
    ]
    assert turns[0]["audio_ms_sent"] < 6500 and turns[1]["audio_ms_sent"] == 2980
    assert turns[2]["delegation_id"] is not None
    types = result.types()
    assert types[0] == "session.started" and types[-1] == "session.closed"
    assert "session.delegation.created" in types
    # No turn events, no response ids on the audio: the protocol has none.
    assert not any(t.startswith("input_audio_buffer.") or t == "response.done" for t in types)


def test_transcripts_sit_on_the_session_timeline(live_default: Any) -> None:
    result, timeline = live_default
    inputs = [e for e in result.events() if e["type"] == "session.input_transcript.delta"]
    turns = timeline.turns(result.session_id)
    text = "".join(e["delta"] for e in inputs)
    assert text == (
        "Tell me a bedtime story.Wait, make it shorter please."
        "What's the weather like in Paris today?Thanks, that's all."
    )
    ends = [e["end_ms"] for e in inputs if e["delta"].endswith((".", "?"))]
    assert ends == [t["speech_end_ms"] for t in turns]
    # The speech is where the client put it: 1380 ms of user_story after ~1 s of lead-in.
    assert ends[0] - inputs[0]["start_ms"] == 1380
    assert 900 <= inputs[0]["start_ms"] <= 1400 and inputs[0]["start_ms"] % 20 == 0


def test_the_sideband_reflects_both_audio_streams_with_timestamps(live_default: Any) -> None:
    result, _ = live_default
    client = result.events("client")
    closing = next(i for i, e in enumerate(client) if e["type"] == "session.close")
    # Appends after session.close are never heard.
    sent = [e["audio"] for e in client[:closing] if e["type"] == "session.input_audio.append"]
    reflected = [
        e["audio"]
        for e in result.events(sideband=True)
        if e["type"] == "session.input_audio.append"
    ]
    assert reflected == sent  # PCM16 24 kHz both ways here, every append, in order
    primary = [e for e in result.events() if e["type"] == "session.output_audio.delta"]
    side = [e for e in result.events(sideband=True) if e["type"] == "session.output_audio.delta"]
    assert [e["delta"] for e in side] == [e["delta"] for e in primary]
    assert all("start_ms" not in e for e in primary)
    assert all(e["end_ms"] - e["start_ms"] == 100 for e in side[:3])


def test_every_event_validates_against_the_official_sdk(
    live_default: Any, sdk_python: Path
) -> None:
    result, _ = live_default
    batches = {
        "server": result.events("server"),
        "client": result.events("client"),
        "sideband_server": result.events("server", sideband=True),
        "sideband_client": result.events("client", sideband=True),
    }
    checked = subprocess.run(
        [str(sdk_python), str(CHECKER)],
        input=json.dumps(batches),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    summary = json.loads(checked.stdout.strip().splitlines()[-1])
    assert summary["failures"] == 0
    assert summary["checked"] == {name: len(events) for name, events in batches.items()}


def test_a_bad_first_command_gets_an_error_and_the_socket_stays_open() -> None:
    async def go() -> list[dict[str, Any]]:
        from websockets.asyncio.client import connect

        async with (
            RealtimeServer(CONFIG) as server,
            connect(f"ws://127.0.0.1:{server.port}/v1/live/sessions") as ws,
        ):
            await ws.send(json.dumps({"type": "session.input_audio.append", "audio": "AAAA"}))
            await ws.send(json.dumps({"type": "session.start", "session": {"model": "gpt-live-1"}}))
            return [json.loads(await ws.recv()) for _ in range(2)]

    error, started = asyncio.run(go())
    assert error["error"]["code"] == "session_not_started"
    assert started["type"] == "session.started"
    assert started["session"]["audio"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert sys.version_info >= (3, 11)
