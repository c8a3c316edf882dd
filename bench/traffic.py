"""Realtime-shaped load: a local WebSocket server and client that blast or pace frames.

Every frame starts with ``{"event_id":"evt_<send time>"`` so the receiver can tell how long it
spent between the two ends (both ends run in this process, on one clock).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

PCM_BYTES_PER_MS = 48  # 24 kHz, 16-bit mono
_PREFIX = b'{"event_id":"evt_'
_TS_START = len(_PREFIX)

# Distinct audio chunks so no layer can get away with caching one payload.
_RNG = random.Random(5)
_SERVER_AUDIO = [
    base64.b64encode(_RNG.randbytes(100 * PCM_BYTES_PER_MS)).decode() for _ in range(8)
]
_CLIENT_AUDIO_20MS = [
    base64.b64encode(_RNG.randbytes(20 * PCM_BYTES_PER_MS)).decode() for _ in range(8)
]
_CLIENT_AUDIO_100MS = _SERVER_AUDIO
_WORDS = [" Sure", ",", " here", " is", " the", " weather", " for", " tomorrow", "."]


def audio_delta(i: int) -> str:
    """A GA ``response.output_audio.delta`` with 100 ms of audio (~6.5 KB), without its stamp."""
    return (
        '","type":"response.output_audio.delta","response_id":"resp_Bench0001",'
        '"item_id":"item_Bench0001","output_index":0,"content_index":0,'
        f'"delta":"{_SERVER_AUDIO[i % len(_SERVER_AUDIO)]}"}}'
    )


def transcript_delta(i: int) -> str:
    """A small ``response.output_audio_transcript.delta``, without its stamp."""
    word = _WORDS[i % len(_WORDS)]
    return (
        '","type":"response.output_audio_transcript.delta","response_id":"resp_Bench0001",'
        f'"item_id":"item_Bench0001","output_index":0,"content_index":0,"delta":"{word}"}}'
    )


def append_audio(i: int, ms: int = 20) -> str:
    """A client ``input_audio_buffer.append`` with ``ms`` of audio (20 ms: ~1.35 KB)."""
    chunks = _CLIENT_AUDIO_20MS if ms == 20 else _CLIENT_AUDIO_100MS
    return f'","type":"input_audio_buffer.append","audio":"{chunks[i % len(chunks)]}"}}'


def stamp(body: str) -> bytes:
    """The frame: send time first, so the receiver reads it without parsing JSON."""
    return _PREFIX + f"{time.time():.6f}".encode() + body.encode()


def sent_at(frame: bytes) -> float:
    return float(frame[_TS_START : frame.index(b'"', _TS_START)])


@dataclass(frozen=True)
class Stream:
    """One direction of one connection: the frame bodies to send, in order, and their pace."""

    bodies: tuple[str, ...]
    interval_s: float = 0.0  # 0: as fast as the connection takes them

    @property
    def frames(self) -> int:
        return len(self.bodies)

    @property
    def bytes(self) -> int:
        return sum(len(b) + len(_PREFIX) + 17 for b in self.bodies)


def blast_mix(units: int) -> tuple[Stream, Stream]:
    """Realtime proportions, sent flat out. One unit is 100 ms of a talking session: the server's
    audio delta and a transcript delta, the client's five 20 ms appends."""
    server = tuple(b for i in range(units) for b in (audio_delta(i), transcript_delta(i)))
    client = tuple(append_audio(i) for i in range(units * 5))
    return Stream(server), Stream(client)


def paced_mix(seconds: float) -> tuple[Stream, Stream]:
    """A talking session in real time: 10 audio + 10 transcript deltas/s down, 50 appends/s up."""
    server_n = int(seconds * 20)
    server = tuple(audio_delta(i) if i % 2 == 0 else transcript_delta(i) for i in range(server_n))
    client = tuple(append_audio(i) for i in range(int(seconds * 50)))
    return Stream(server, 0.05), Stream(client, 0.02)


def long_session_mix(hours: float, speedup: float) -> tuple[Stream, Stream]:
    """A voice session of ``hours`` played ``speedup`` times faster than real time: the user's
    microphone all along in 100 ms appends, the model speaking half the time (100 ms audio
    deltas, one transcript delta each), so each direction carries 10 frames per session second.

    Paced, not flat out: mitmproxy keeps reading a connection while a blocking hook runs and
    queues what it read (``Layer._paused_event_queue``), so a sender faster than the proxy
    grows the proxy by its backlog whatever the addon does."""
    chunks = int(hours * 36_000)
    interval_s = 0.1 / speedup
    client = tuple(append_audio(i, ms=100) for i in range(chunks))
    server = tuple(b for i in range(chunks // 2) for b in (audio_delta(i), transcript_delta(i)))
    return Stream(server, interval_s), Stream(client, interval_s)


@dataclass
class Received:
    frames: int = 0
    bytes: int = 0
    delays_s: list[float] = field(default_factory=list)
    last_s: float = 0.0


@dataclass
class Plan:
    server: Stream
    client: Stream
    record_delays_after_s: float | None = None  # None: no delays; else skip this warm-up


@dataclass
class LoadResult:
    connections: int
    frames: int
    bytes: int
    seconds: float
    server_to_client_delays_s: list[float]
    client_to_server_delays_s: list[float]

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


async def _send(ws: ServerConnection | ClientConnection, stream: Stream) -> None:
    start = time.monotonic()
    for i, body in enumerate(stream.bodies):
        if stream.interval_s:
            delay = start + i * stream.interval_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send(stamp(body), text=True)


async def _receive(
    ws: ServerConnection | ClientConnection, expected: int, out: Received, delays_from: float
) -> None:
    while out.frames < expected:
        frame = await ws.recv(decode=False)
        now = time.time()
        assert isinstance(frame, bytes)
        out.frames += 1
        out.bytes += len(frame)
        out.last_s = now
        if now >= delays_from:
            out.delays_s.append(now - sent_at(frame))


class LoadServer:
    """The upstream: for every connection, sends the plan's server stream and takes the client's."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.received: list[Received] = []
        self.delays_from = float("inf")
        self.port = 0

    async def _handler(self, ws: ServerConnection) -> None:
        got = Received()
        self.received.append(got)
        send = asyncio.create_task(_send(ws, self.plan.server))
        await _receive(ws, self.plan.client.frames, got, self.delays_from)
        await send
        # The client closes once it has everything; wait for it so no frame is cut off.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.wait_closed(), 30)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoadServer]:
        async with serve(
            self._handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            yield self


async def _client(url: str, plan: Plan, got: Received, delays_from: float) -> None:
    async with connect(
        url, compression=None, max_size=None, ping_interval=None, open_timeout=30
    ) as ws:
        send = asyncio.create_task(_send(ws, plan.client))
        await _receive(ws, plan.server.frames, got, delays_from)
        await send


async def run_load(
    server: LoadServer, proxy_port: int, connections: int, timeout_s: float
) -> LoadResult:
    """Open ``connections`` sessions through the proxy at once and run the plan on each."""
    plan = server.plan
    server.received.clear()
    got = [Received() for _ in range(connections)]
    start = time.time()
    delays_from = (
        start + plan.record_delays_after_s
        if plan.record_delays_after_s is not None
        else float("inf")
    )
    server.delays_from = delays_from
    url = f"ws://127.0.0.1:{proxy_port}/v1/realtime?model=bench-realtime"
    await asyncio.wait_for(
        asyncio.gather(*(_client(url, plan, g, delays_from) for g in got)), timeout_s
    )
    # The server may still be taking the last client frames.
    deadline = time.monotonic() + timeout_s
    while sum(r.frames for r in server.received) < connections * plan.client.frames:
        if time.monotonic() > deadline:
            raise TimeoutError("the upstream did not receive every client frame")
        await asyncio.sleep(0.005)
    end = max(r.last_s for r in [*got, *server.received])
    both = [*got, *server.received]
    return LoadResult(
        connections=connections,
        frames=sum(r.frames for r in both),
        bytes=sum(r.bytes for r in both),
        seconds=end - start,
        server_to_client_delays_s=[d for r in got for d in r.delays_s],
        client_to_server_delays_s=[d for r in server.received for d in r.delays_s],
    )
