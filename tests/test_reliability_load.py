"""Load: 50 concurrent realtime sessions at real-time pace through one mitmdump with the addon.

Each client streams 100 ms ``input_audio_buffer.append`` frames (4800 bytes of PCM16, 10 a
second) and the server streams 100 ms ``response.output_audio.delta`` frames back (10 a second),
both on absolute schedules, for ``DURATION_S``: 1,010 frames/s through the proxy in all, about
what one mitmdump forwards in real time on a 2-vCPU machine. ``RT_LOAD_CLIENT_MS=20`` (50
appends a second), ``RT_LOAD_SERVER_MS`` and ``RT_LOAD_DURATION_S`` change the load. Every
frame carries a unique ``event_id``; the session is known by ``client=N`` in its URL.
Afterwards the journal and the Parquet file must hold, per session and per direction, exactly
the texts each side sent, in order, once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from analyzer.peer.harness import run_mitmdump
from analyzer.recording.frames import restore_frame_text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

SESSIONS = 50
DURATION_S = float(os.environ.get("RT_LOAD_DURATION_S", "15"))
CLIENT_FRAME_S = float(os.environ.get("RT_LOAD_CLIENT_MS", "100")) / 1000
SERVER_FRAME_S = float(os.environ.get("RT_LOAD_SERVER_MS", "100")) / 1000
CLIENT_AUDIO_BYTES = int(48000 * CLIENT_FRAME_S)  # 24 kHz PCM16
SERVER_AUDIO_BYTES = int(48000 * SERVER_FRAME_S)
DRAIN_TIMEOUT_S = 75.0


@dataclass
class SessionLog:
    """What both ends of one session sent and received, in order."""

    client_sent: list[str] = field(default_factory=list)
    client_sent_s: list[float] = field(default_factory=list)
    server_sent: list[str] = field(default_factory=list)
    client_received: list[str] = field(default_factory=list)
    server_received: list[str] = field(default_factory=list)
    lateness_s: float = 0.0  # the client's worst lag behind its real-time schedule


def audio_b64(n_bytes: int, seed: int) -> str:
    return base64.b64encode(bytes((seed * 7 + i) % 251 for i in range(n_bytes))).decode()


async def paced(period_s: float, duration_s: float) -> Any:
    """Yields frame numbers on an absolute schedule (no drift), and how late each one is."""
    start = time.monotonic()
    count = int(duration_s / period_s)
    for index in range(count):
        due = start + index * period_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield index, max(0.0, time.monotonic() - due)


async def serve_session(ws: ServerConnection, logs: dict[int, SessionLog]) -> None:
    query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
    client = int(query["client"][0])
    log = logs[client]
    audio = audio_b64(SERVER_AUDIO_BYTES, client)

    async def send(text: str) -> None:
        log.server_sent.append(text)
        await ws.send(text)

    await send(
        json.dumps(
            {
                "type": "session.created",
                "event_id": f"s{client}-created",
                "session": {"type": "realtime", "id": f"sess_{client}"},
            }
        )
    )
    finished = asyncio.Event()

    async def stream() -> None:
        async for index, _ in paced(SERVER_FRAME_S, DURATION_S):
            if finished.is_set():
                break
            await send(
                f'{{"type":"response.output_audio.delta","event_id":"s{client}-{index}",'
                f'"response_id":"resp_{client}","item_id":"item_{client}","output_index":0,'
                f'"content_index":0,"delta":"{audio}"}}'
            )

    streamer = asyncio.create_task(stream())
    async for message in ws:
        text = message if isinstance(message, str) else message.decode()
        log.server_received.append(text)
        if '"input_audio_buffer.commit"' in text:
            finished.set()
            await streamer
            await send(json.dumps({"type": "response.done", "event_id": f"s{client}-done"}))


async def run_client(url: str, client: int, logs: dict[int, SessionLog]) -> None:
    log = logs[client]
    audio = audio_b64(CLIENT_AUDIO_BYTES, client + 1000)
    async with connect(
        f"{url}?model=load-test&client={client}", max_size=None, ping_interval=None
    ) as ws:

        async def receive() -> None:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                log.client_received.append(text)
                if '"response.done"' in text:
                    return

        receiver = asyncio.create_task(receive())
        async for index, late_s in paced(CLIENT_FRAME_S, DURATION_S):
            log.lateness_s = max(log.lateness_s, late_s)
            text = (
                f'{{"type":"input_audio_buffer.append","event_id":"c{client}-{index}",'
                f'"audio":"{audio}"}}'
            )
            log.client_sent.append(text)
            log.client_sent_s.append(time.time())
            await ws.send(text)
        commit = json.dumps({"type": "input_audio_buffer.commit", "event_id": f"c{client}-end"})
        log.client_sent.append(commit)
        await ws.send(commit)
        await asyncio.wait_for(receiver, DRAIN_TIMEOUT_S)


async def run_load(upstream: socket.socket, proxy_url: str) -> dict[int, SessionLog]:
    logs: dict[int, SessionLog] = defaultdict(SessionLog)
    async with serve(
        lambda ws: serve_session(ws, logs), sock=upstream, max_size=None, ping_interval=None
    ):
        await asyncio.gather(*(run_client(proxy_url, n, logs) for n in range(SESSIONS)))
    return dict(logs)


def captured_by_client(out: Path) -> tuple[dict[int, dict[str, list[Any]]], list[dict[str, Any]]]:
    """Journal records grouped as {client: {"client": [frame...], "server": [...]}}."""
    (journal,) = out.glob("*.jsonl")
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    client_of = {
        r["session_id"]: int(parse_qs(urlsplit(r["url"]).query)["client"][0])
        for r in records
        if r["record"] == "session_start"
    }
    by_client: dict[int, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["record"] == "frame":
            by_client[client_of[r["session_id"]]]["all"].append(r)
            by_client[client_of[r["session_id"]]][r["direction"]].append(r)
    return by_client, records


def test_50_concurrent_realtime_sessions_are_recorded_completely_in_order(
    tmp_path: Path,
) -> None:
    out = tmp_path / "captures"
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(128)
    started = time.monotonic()
    with run_mitmdump(upstream.getsockname()[1], rt_dir=out) as proxy:
        logs = asyncio.run(run_load(upstream, proxy.url()))
        elapsed_s = time.monotonic() - started
        assert proxy.stop(signal.SIGINT) == 0
        log_text = proxy.output()
    assert len(logs) == SESSIONS
    for n, log in logs.items():  # the traffic itself went through unharmed
        assert log.server_received == log.client_sent, n
        assert log.client_received == log.server_sent, n

    by_client, records = captured_by_client(out)
    assert sorted(by_client) == list(range(SESSIONS))
    for n, log in logs.items():
        frames = by_client[n]
        assert [f["content"] for f in frames["client"]] == log.client_sent, n
        assert [f["content"] for f in frames["server"]] == log.server_sent, n
        assert [f["seq"] for f in frames["all"]] == list(range(len(frames["all"]))), n
        times = [f["time_s"] for f in frames["all"]]
        assert times == sorted(times), n

    table = pq.read_table(next(out.glob("*.parquet")))
    rows = table.to_pylist()
    session_of = {r["session_id"]: r for r in records if r["record"] == "session_start"}
    parquet: dict[tuple[int, str], list[str]] = defaultdict(list)
    for row in rows:
        client = int(parse_qs(urlsplit(session_of[row["session_id"]]["url"]).query)["client"][0])
        parquet[client, row["direction"]].append(
            restore_frame_text(
                row["content"], row["audio_offset"], row["audio"], row.get("audio_cuts")
            )
        )
    for n, log in logs.items():
        assert parquet[n, "client"] == log.client_sent, n
        assert parquet[n, "server"] == log.server_sent, n

    sent = sum(len(log.client_sent) + len(log.server_sent) for log in logs.values())
    run_end = records[-1]
    assert run_end["record"] == "run_end"
    assert run_end["frames_recorded"] == sent == table.num_rows
    assert run_end["frames_not_recorded"] == 0 and run_end["write_errors"] == 0
    ends = [r for r in records if r["record"] == "session_end"]
    assert len(ends) == SESSIONS and all(r["close_code"] == 1000 for r in ends)
    assert "addon fault" not in log_text and "NOT recorded" not in log_text
    lags = sorted(
        frame["time_s"] - sent_s
        for n, log in logs.items()
        for frame, sent_s in zip(by_client[n]["client"], log.client_sent_s, strict=False)
    )
    print(
        f"\nload: {SESSIONS} sessions x {DURATION_S:.0f} s, {sent} frames sent, recorded and "
        f"forwarded ({sent / DURATION_S:.0f} frames/s offered); client -> proxy lag "
        f"p50 {lags[len(lags) // 2] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms; "
        f"client schedule lag max {max(log.lateness_s for log in logs.values()) * 1000:.0f} ms; "
        f"wall {elapsed_s:.1f} s"
    )
