"""Real mitmdump + the addon between real WebSocket clients and the local realtime server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from analyzer.cli import main as cli
from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from analyzer.recording.frames import restore_frame_text
from analyzer.replay import ScriptedFrame, replay_server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def journal_frames(directory: Path) -> list[dict[str, Any]]:
    (journal,) = directory.glob("*.jsonl")
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["record"] == "frame"]


def parquet_frames(directory: Path) -> list[dict[str, Any]]:
    (path,) = directory.glob("*.parquet")
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    for row in rows:
        row["text"] = restore_frame_text(
            row["content"], row["audio_offset"], row["audio"], row.get("audio_cuts")
        )
    return rows


def assert_same_frames(
    sent: list[dict[str, Any]], captured: list[dict[str, Any]], key: str
) -> None:
    """Per direction: the same frames, same order, same text, sizes and event types."""
    assert len(captured) == len(sent)
    for direction in ("client", "server"):
        expected = [f for f in sent if f["direction"] == direction]
        got = [f for f in captured if f["direction"] == direction]
        assert [f[key] for f in got] == [f["text"] for f in expected]
        assert [f["frame_bytes"] for f in got] == [len(f["text"].encode()) for f in expected]
        assert [f["event_type"] for f in got] == [f["type"] for f in expected]
        assert [f["seq"] for f in captured] == list(range(len(captured)))


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_every_frame_either_side_sent_is_recorded_once_in_order(
    tmp_path: Path, dialect: str, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    out = tmp_path / "captures"
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect=dialect, speed=fast_speed)
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == []
    assert len(result.responses()) >= 4  # three spoken turns, a barge-in, a function call
    assert_same_frames(result.frames, journal_frames(out), key="content")
    assert_same_frames(result.frames, parquet_frames(out), key="text")
    meta = pq.ParquetFile(next(out.glob("*.parquet"))).metadata.metadata
    (session,) = json.loads(meta[b"rt_analyze"])["sessions"]
    assert session["dialect"] == dialect
    assert session["close_code"] == 1000


def test_no_secret_in_any_form_reaches_the_capture(tmp_path: Path) -> None:
    secrets = {
        "header": "sk-proj-HEADERSECRET0001",
        "azure": "AZUREKEYSECRET0002",
        "query": "sk-QUERYSECRET0003",
        "subprotocol": "sk-SUBPROTOSECRET0004",
        "ephemeral": "ek_EPHEMERALSECRET0005",
    }
    script = [
        ScriptedFrame(
            "server",
            json.dumps(
                {
                    "type": "session.created",
                    "session": {
                        "id": "sess_1",
                        "client_secret": {"value": secrets["ephemeral"], "expires_at": 1},
                    },
                }
            ),
        ),
        ScriptedFrame("client", json.dumps({"type": "session.update", "session": {}})),
        ScriptedFrame("server", json.dumps({"type": "session.updated", "session": {}})),
    ]
    out = tmp_path / "captures"

    async def run(port_holder: list[int]) -> None:
        async with replay_server(script) as upstream:
            port_holder.append(upstream)
            while len(port_holder) < 2:  # wait for the proxy's port
                await asyncio.sleep(0.05)
            url = f"ws://127.0.0.1:{port_holder[1]}/v1/realtime?model=gpt-realtime&api-key={secrets['query']}"
            async with connect(
                url,
                additional_headers={
                    "Authorization": f"Bearer {secrets['header']}",
                    "api-key": secrets["azure"],
                },
                subprotocols=["realtime", f"openai-insecure-api-key.{secrets['subprotocol']}"],  # type: ignore[list-item]
            ) as ws:
                await ws.recv()
                await ws.send(script[1].text)
                await ws.recv()

    ports: list[int] = []
    thread = threading.Thread(target=lambda: asyncio.run(run(ports)))
    thread.start()
    deadline = time.monotonic() + 10
    while not ports and time.monotonic() < deadline:
        time.sleep(0.02)
    with run_mitmdump(ports[0], rt_dir=out) as proxy:
        ports.append(proxy.port)
        thread.join(timeout=30)
        proxy.stop(signal.SIGINT)
    files = list(out.iterdir())
    assert len(files) == 2
    written = b"".join(p.read_bytes() for p in files)
    assert b"session.updated" in written  # the session was recorded...
    for name, secret in secrets.items():
        assert secret.encode() not in written, name  # ...without any of its secrets
    assert os.stat(out).st_mode & 0o777 == 0o700
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in files)


def test_kill_9_keeps_the_journal_and_convert_recovers_the_run(
    tmp_path: Path, fast_peer_config: PeerConfig
) -> None:
    out = tmp_path / "captures"
    result_box: list[ConversationResult | BaseException] = []
    with (
        run_server(config=fast_peer_config, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):

        def talk() -> None:
            try:  # real-time pace, so the session is mid-flight when the proxy dies
                result_box.append(run_conversation_sync(proxy.url(), dialect="ga", speed=1.0))
            except BaseException as exc:  # the proxy vanishing is the point
                result_box.append(exc)

        thread = threading.Thread(target=talk)
        thread.start()
        time.sleep(4.0)
        killed_at = time.time()
        proxy.process.popen.send_signal(signal.SIGKILL)
        proxy.process.popen.wait(timeout=10)
        thread.join(timeout=60)
    journal = journal_frames(out)
    record = server.read_record()
    forwarded_before = [
        f for f in record.frames() if f["time_s"] < killed_at - 1.0 and f["direction"] == "server"
    ]
    assert forwarded_before, "the session had not started before the kill"
    captured = {f["content"] for f in journal}
    assert all(f["text"] in captured for f in forwarded_before)
    (journal_path,) = out.glob("*.jsonl")
    outcome = CliRunner().invoke(
        cli, ["convert", str(journal_path), "-o", str(tmp_path / "r.parquet")]
    )
    assert outcome.exit_code == 0, outcome.output
    assert pq.read_table(tmp_path / "r.parquet").num_rows == len(journal)


def test_sigint_with_a_session_open_leaves_complete_files(tmp_path: Path) -> None:
    out = tmp_path / "captures"
    script = [ScriptedFrame("server", '{"type":"session.created","session":{"type":"realtime"}}')]
    script += [ScriptedFrame("client", json.dumps({"type": "x", "n": n})) for n in range(20)]
    ports: list[int] = []
    sent = threading.Event()
    release = threading.Event()

    async def run() -> None:
        async with replay_server(script, gap_s=0) as upstream:
            ports.append(upstream)
            while len(ports) < 2:
                await asyncio.sleep(0.05)
            try:
                async with connect(f"ws://127.0.0.1:{ports[1]}/v1/realtime") as ws:
                    await ws.recv()
                    for frame in script[1:]:
                        await ws.send(frame.text)
                    sent.set()
                    await asyncio.get_running_loop().run_in_executor(None, release.wait, 20)
            except Exception:
                pass  # the proxy went away under us

    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    while not ports:
        time.sleep(0.02)
    with run_mitmdump(ports[0], rt_dir=out) as proxy:
        ports.append(proxy.port)
        assert sent.wait(20)
        time.sleep(0.5)
        assert proxy.stop(signal.SIGINT) == 0
    release.set()
    thread.join(timeout=20)
    (parquet_path,) = out.glob("*.parquet")
    table = pq.read_table(parquet_path)  # the footer was written: the file is complete
    assert table.num_rows == 21
    (session,) = json.loads(pq.ParquetFile(parquet_path).metadata.metadata[b"rt_analyze"])[
        "sessions"
    ]
    assert session["close_reason"] == "proxy shut down"
    records = [
        json.loads(line)["record"] for line in next(out.glob("*.jsonl")).read_text().splitlines()
    ]
    assert records[0] == "session_start" and records[-2:] == ["session_end", "run_end"]
