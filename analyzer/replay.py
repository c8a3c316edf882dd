"""Replay a scripted exchange of frames between a local server and client, in lockstep.

Used to rebuild the seed session (``shared/seeds``) as a real capture through mitmdump: each side
sends its frames in script order and waits for the other side's frames before going on.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from analyzer.protocols.realtime_events import CLIENT_EVENTS

_JSON_BLOCK = re.compile(r"```json\s*\n(.*?)\n```", re.S)


@dataclass(frozen=True)
class ScriptedFrame:
    direction: str  # "client" or "server"
    text: str


def frames_from_markdown(path: Path) -> list[ScriptedFrame]:
    """The ```json blocks of a session write-up, in order, each as sent (text kept verbatim)."""
    frames = []
    for block in _JSON_BLOCK.findall(path.read_text(encoding="utf-8")):
        event_type = json.loads(block).get("type")
        direction = "client" if event_type in CLIENT_EVENTS else "server"
        frames.append(ScriptedFrame(direction, block))
    return frames


async def _play(
    side: str,
    script: Sequence[ScriptedFrame],
    send: object,
    recv: object,
    gap_s: float,
) -> list[str]:
    received: list[str] = []
    for frame in script:
        if frame.direction == side:
            await asyncio.sleep(gap_s)
            await send(frame.text)  # type: ignore[operator]
        else:
            message = await asyncio.wait_for(recv(), timeout=10)  # type: ignore[operator]
            received.append(message if isinstance(message, str) else message.decode())
    return received


@asynccontextmanager
async def replay_server(script: Sequence[ScriptedFrame], gap_s: float = 0.02) -> AsyncIterator[int]:
    """Serve the script's server side on a free loopback port; yields the port."""

    async def handler(ws: ServerConnection) -> None:
        await _play("server", script, ws.send, ws.recv, gap_s)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        yield next(iter(server.sockets)).getsockname()[1]


async def replay_client(
    script: Sequence[ScriptedFrame], url: str, headers: dict[str, str], gap_s: float = 0.02
) -> list[str]:
    """Play the script's client side against ``url``; returns what the server sent."""
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        return await _play("client", script, ws.send, ws.recv, gap_s)
