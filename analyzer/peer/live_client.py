"""A scripted GPT-Live voice client: a microphone that never stops, the shipped utterances, a
function call answered for the delegated backend, and a barge-in.

    python -m analyzer.peer.live_client ws://127.0.0.1:PORT/v1/live/sessions [--speed 4]
        [--sideband ws://HOST:PORT/v1/live/sessions/{session_id}/attach]

Like a real GPT-Live client it streams audio all the time (silence between utterances), so the
session timeline is the audio it appended. ``--sideband`` also attaches a server-side observer
(the ``{session_id}`` in the URL is filled in) as a WebRTC app's backend would.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from analyzer.peer.audio import audio_ms, from_pcm16_24k
from analyzer.peer.client import FAKE_API_KEY, ConversationError
from analyzer.peer.dialect import PCM16, SAMPLE_RATE_BY_FORMAT
from analyzer.peer.live import WIRE_BY_FORMAT
from analyzer.peer.record import frame_fields
from analyzer.peer.scenarios import WEATHER_RESULT, WEATHER_TOOL, Scenario, Turn, scenario_named
from analyzer.peer.voices import utterance

FRAME_MS = 20
LIVE_MODEL = "gpt-live-1"
OUTPUT_AUDIO = "session.output_audio.delta"
Event = dict[str, Any]


@dataclass
class LiveResult:
    """What the client sent and received on the primary socket and the sideband."""

    url: str
    scenario: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    sideband_frames: list[dict[str, Any]] = field(default_factory=list)
    session_id: str | None = None
    close_code: int | None = None

    def events(self, direction: str = "server", sideband: bool = False) -> list[Event]:
        frames = self.sideband_frames if sideband else self.frames
        return [json.loads(f["text"]) for f in frames if f["direction"] == direction]

    def types(self, direction: str = "server", sideband: bool = False) -> list[str]:
        frames = self.sideband_frames if sideband else self.frames
        return [f["type"] for f in frames if f["direction"] == direction]

    def errors(self) -> list[Event]:
        both = self.events() + self.events(sideband=True)
        return [e for e in both if e.get("type") == "error"]


class _Socket:
    """One connection's frames, kept in order, and waits on what arrived."""

    def __init__(self, ws: ClientConnection, frames: list[dict[str, Any]]) -> None:
        self.ws = ws
        self.frames = frames
        self.events: list[Event] = []
        self.times: list[float] = []
        self.changed = asyncio.Condition()
        self.closed = False

    async def send(self, event: Event) -> float:
        text = json.dumps(event, separators=(",", ":"))
        sent_s = time.time()
        self.frames.append(
            {"time_s": sent_s, "direction": "client", **frame_fields(text), "text": text}
        )
        await self.ws.send(text)
        return sent_s

    async def receive_forever(self) -> None:
        try:
            async for message in self.ws:
                received_s = time.time()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.frames.append(
                    {
                        "time_s": received_s,
                        "direction": "server",
                        **frame_fields(text),
                        "text": text,
                    }
                )
                async with self.changed:
                    self.events.append(json.loads(text))
                    self.times.append(received_s)
                    self.changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            async with self.changed:
                self.closed = True
                self.changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Event], bool], after: int = 0, timeout_s: float = 30.0
    ) -> int:
        """The index of the first event at or after ``after`` matching ``predicate``."""
        scanned = after
        try:
            async with asyncio.timeout(timeout_s), self.changed:
                while True:
                    for index in range(scanned, len(self.events)):
                        if predicate(self.events[index]):
                            return index
                    scanned = max(scanned, len(self.events))
                    if self.closed:
                        raise ConversationError("the server closed the connection mid-script")
                    await self.changed.wait()
        except TimeoutError:
            raise ConversationError(f"no expected event within {timeout_s} s") from None


def _typed(event_type: str) -> Callable[[Event], bool]:
    return lambda event: event.get("type") == event_type


def _nested(event_type: str, item_type: str | None = None) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        nested = event.get("event") if event.get("type") == "response.event" else None
        if not isinstance(nested, dict) or nested.get("type") != event_type:
            return False
        return item_type is None or (nested.get("item") or {}).get("type") == item_type

    return matches


class LiveClient:
    def __init__(self, primary: _Socket, scenario: Scenario, speed: float) -> None:
        self.primary = primary
        self.scenario = scenario
        self.speed = speed
        self.speech: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue()
        self.appended_ms = 0
        self.hung_up = asyncio.Event()  # the microphone stops after the frame it is sending
        self.mic_stopped = asyncio.Event()

    # -- the microphone: always streaming, speech when there is some ---------------------

    def frame_bytes(self) -> int:
        width = 2 if self.scenario.audio_format == PCM16 else 1
        return SAMPLE_RATE_BY_FORMAT[self.scenario.audio_format] * FRAME_MS // 1000 * width

    async def microphone(self) -> None:
        """20 ms appends on an absolute schedule at ``speed`` x real time, until hung up."""
        size = self.frame_bytes()
        silence = from_pcm16_24k(bytes(FRAME_MS * 48), self.scenario.audio_format)
        start = time.monotonic()
        index = 0
        pending = b""
        spoken: asyncio.Future[None] | None = None
        while not self.hung_up.is_set():
            if not pending and not self.speech.empty():
                pending, spoken = self.speech.get_nowait()
            chunk, pending = (pending[:size], pending[size:]) if pending else (silence, b"")
            delay = start + index * FRAME_MS / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            audio = base64.b64encode(chunk).decode()
            await self.primary.send({"type": "session.input_audio.append", "audio": audio})
            self.appended_ms += audio_ms(chunk, self.scenario.audio_format)
            index += 1
            if not pending and spoken is not None:
                spoken.set_result(None)
                spoken = None
        self.mic_stopped.set()

    async def say(self, name: str) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.speech.put(
            (from_pcm16_24k(utterance(name).pcm16, self.scenario.audio_format), done)
        )
        await done

    # -- the script ----------------------------------------------------------------------

    def session_config(self) -> Event:
        config: Event = {
            "model": LIVE_MODEL,
            "instructions": "You are a friendly bedtime-story and weather assistant.",
            "audio": {
                "format": WIRE_BY_FORMAT[self.scenario.audio_format],
                "output": {"voice": "marin"},
            },
        }
        if self.scenario.tools:
            tool = {k: WEATHER_TOOL[k] for k in ("type", "name", "description", "parameters")}
            config["delegation"] = {
                "type": "responses",
                "responses": {
                    "model": "gpt-5-mini",
                    "instructions": "Answer weather questions with the get_weather tool.",
                    "tools": [tool],
                },
            }
        return config

    async def play(self, lead_in_ms: int) -> None:
        # A user rarely speaks the moment the call opens: the microphone streams silence first.
        await asyncio.sleep(lead_in_ms / 1000 / self.speed)
        for turn in self.scenario.turns:
            await self.play_turn(turn)
        await asyncio.sleep(0.3 / self.speed)  # a little silence before hanging up
        self.hung_up.set()  # the microphone goes quiet before the session closes
        await self.mic_stopped.wait()
        mark = len(self.primary.events)
        await self.primary.send({"type": "session.close", "event_id": "evt_close"})
        await self.primary.wait_for(_typed("session.closed"), mark)

    async def play_turn(self, turn: Turn) -> None:
        mark = len(self.primary.events)
        await self.say(turn.utterance)
        # Heard once its transcript comes (audio of a reply it cut off may still be arriving).
        mark = await self.primary.wait_for(_typed("session.input_transcript.delta"), mark)
        if turn.utterance == "user_weather" and self.scenario.tools:
            call_index = await self.primary.wait_for(
                _nested("response.output_item.done", "function_call"), mark
            )
            call = self.primary.events[call_index]["event"]["item"]
            output = {
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": WEATHER_RESULT,
            }
            await self.primary.send({"type": "response.item.create", "item": output})
            await self.primary.send({"type": "response.create"})
        first = await self.primary.wait_for(_typed(OUTPUT_AUDIO), mark)
        if turn.interrupt_after_deltas is not None:
            seen = 0

            def counts(event: Event) -> bool:
                nonlocal seen
                seen += event.get("type") == OUTPUT_AUDIO
                return seen >= turn.interrupt_after_deltas  # type: ignore[operator]

            await self.primary.wait_for(counts, first)
            return  # the next utterance cuts in
        done = await self.primary.wait_for(_typed("session.usage.updated"), first)
        await self.listen_out(first, done)

    async def listen_out(self, first: int, done: int) -> None:
        """A polite user lets the reply play out (at ``speed`` x real time) before speaking."""
        events = self.primary.events[first:done]
        received_ms = sum(
            audio_ms(base64.b64decode(e["delta"]), self.scenario.audio_format)
            for e in events
            if e.get("type") == OUTPUT_AUDIO
        )
        end_s = self.primary.times[first] + received_ms / 1000 / self.speed
        await asyncio.sleep(max(0.0, end_s - time.time()) + 0.2 / self.speed)


async def run_live_conversation(
    url: str,
    *,
    scenario: str | Scenario = "default",
    speed: float = 4.0,
    sideband_url: str | None = None,
    proxy: str | None = None,
    ca_file: Path | str | None = None,
    sideband_proxy: str | None = None,
    api_key: str = FAKE_API_KEY,
    lead_in_ms: int = 1000,
    timeout_s: float = 90.0,
) -> LiveResult:
    """Play a scenario against a GPT-Live server. ``sideband_url`` (with ``{session_id}``)
    attaches an observer once the session started; ``proxy``/``sideband_proxy`` are HTTP
    proxies for each socket (None: direct); ``lead_in_ms`` of silence come before the first
    utterance."""
    if speed <= 0:
        raise ValueError("speed must be positive")
    plan = scenario if isinstance(scenario, Scenario) else scenario_named(scenario)
    headers = {"Authorization": f"Bearer {api_key}"}
    result = LiveResult(url=url, scenario=plan.name)

    def tls(target: str) -> ssl.SSLContext | None:
        if not target.startswith("wss://"):
            return None
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def open_ws(target: str, via: str | None) -> Any:
        return connect(
            target,
            additional_headers=headers,
            proxy=via,  # None: ignore HTTPS_PROXY from the environment
            ssl=tls(target),
            open_timeout=10,
            close_timeout=5,
            max_size=16 * 2**20,
        )

    async with asyncio.timeout(timeout_s), contextlib.AsyncExitStack() as stack:
        primary = _Socket(await stack.enter_async_context(open_ws(url, proxy)), result.frames)
        loop = asyncio.get_running_loop()
        receivers = [loop.create_task(primary.receive_forever())]
        client = LiveClient(primary, plan, speed)
        await primary.send(
            {"type": "session.start", "event_id": "evt_start", "session": client.session_config()}
        )
        started = primary.events[await primary.wait_for(_typed("session.started"))]
        result.session_id = started["session"]["id"]
        if sideband_url is not None:
            target = sideband_url.format(session_id=result.session_id)
            sideband = _Socket(
                await stack.enter_async_context(open_ws(target, sideband_proxy)),
                result.sideband_frames,
            )
            receivers.append(loop.create_task(sideband.receive_forever()))
            # Attached once our update is acknowledged there (before the user says anything).
            await sideband.send({"type": "session.update", "session": {}})
            await sideband.wait_for(_typed("session.updated"))
        microphone = loop.create_task(client.microphone())
        try:
            await client.play(lead_in_ms)
        finally:
            client.hung_up.set()
            with contextlib.suppress(ConnectionClosed):
                await microphone
            await primary.ws.close()
            result.close_code = primary.ws.close_code
            await asyncio.gather(*receivers)
    return result


def run_live_conversation_sync(url: str, **options: Any) -> LiveResult:
    return asyncio.run(run_live_conversation(url, **options))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analyzer.peer.live_client", description=__doc__
    )
    parser.add_argument("url", help="ws://127.0.0.1:PORT/v1/live/sessions")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--speed", type=float, default=4.0, help="x real time (default 4)")
    parser.add_argument("--sideband", help="sideband URL template with {session_id}")
    args = parser.parse_args(argv)
    try:
        result = run_live_conversation_sync(
            args.url, scenario=args.scenario, speed=args.speed, sideband_url=args.sideband
        )
    except (OSError, ConversationError, TimeoutError) as exc:
        print(f"error: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print(
        f"session {result.session_id}: {len(result.frames)} frames, "
        f"{len(result.sideband_frames)} on the sideband"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
