"""A scripted realtime voice client: speaks the shipped utterances, listens, interrupts.

    python -m analyzer.peer.client ws://127.0.0.1:PORT/v1/realtime [--dialect ga|beta]
        [--scenario default|manual|g711|g711_alaw|text|transcription|transcription_manual]
        [--speed 4]
        [--proxy http://127.0.0.1:P --ca PATH]

Audio goes out as 20 ms ``input_audio_buffer.append`` events paced at ``speed`` x real time. The
client "plays" reply audio on a simulated clock running at the same speed, so a barge-in
truncates the reply at what would have been heard. Everything sent and received is kept, with
times, in the :class:`ConversationResult`.
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
from typing import Any, Literal
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from analyzer.peer.audio import audio_ms, from_pcm16_24k
from analyzer.peer.dialect import BETA, DEFAULT_MODEL, GA, GA_FORMATS, PCM16, SAMPLE_RATE_BY_FORMAT
from analyzer.peer.mic import Microphone
from analyzer.peer.record import frame_fields
from analyzer.peer.scenarios import (
    SCENARIOS,
    WEATHER_RESULT,
    WEATHER_TOOL,
    Scenario,
    Turn,
    scenario_named,
)
from analyzer.peer.voices import utterance

FRAME_MS = 20
FAKE_API_KEY = "sk-test-peer-0123456789abcdef"
AUDIO_DELTAS = frozenset({"response.audio.delta", "response.output_audio.delta"})
TEXT_DELTAS = frozenset({"response.text.delta", "response.output_text.delta"})
ITEM_ECHOES = frozenset({"conversation.item.created", "conversation.item.added"})

Event = dict[str, Any]


class ConversationError(RuntimeError):
    """The conversation did not go as scripted (timeout, closed connection, server error)."""


@dataclass
class ConversationResult:
    """What the client sent and received, and what it knows about each turn."""

    url: str
    dialect: str
    scenario: str
    frames: list[dict[str, Any]] = field(default_factory=list)  # as in analyzer.peer.record
    turns: list[dict[str, Any]] = field(default_factory=list)
    truncations: list[dict[str, Any]] = field(default_factory=list)
    session_id: str | None = None
    close_code: int | None = None

    def events(self, direction: str = "server") -> list[Event]:
        return [json.loads(f["text"]) for f in self.frames if f["direction"] == direction]

    def types(self, direction: str = "server") -> list[str]:
        return [f["type"] for f in self.frames if f["direction"] == direction]

    def responses(self) -> list[dict[str, Any]]:
        """The ``response`` of every ``response.done``, in order."""
        return [e["response"] for e in self.events() if e.get("type") == "response.done"]

    def errors(self) -> list[Event]:
        return [e for e in self.events() if e.get("type") == "error"]


@dataclass
class _Playback:
    """One reply's audio on the client's simulated loudspeaker."""

    response_id: str
    item_id: str | None = None
    first_delta_s: float | None = None
    received_ms: int = 0
    stopped_at_s: float | None = None  # the user interrupted playback here
    done: bool = False
    status: str | None = None


class ScriptedClient:
    def __init__(
        self, ws: ClientConnection, dialect: str, scenario: Scenario, speed: float, url: str
    ) -> None:
        self.ws = ws
        self.dialect = dialect
        self.scenario = scenario
        self.speed = speed
        self.result = ConversationResult(url=url, dialect=dialect, scenario=scenario.name)
        self.events: list[Event] = []
        self.changed = asyncio.Condition()
        self.closed = False
        self.clock_ms = 0  # audio sent since the session started
        self.playbacks: dict[str, _Playback] = {}
        self.truncate_tasks: list[asyncio.Task[None]] = []
        self.mic = Microphone(scenario)  # with its planted faults (clipping gain, echo)

    # -- wire ----------------------------------------------------------------------------

    async def send(self, event: Event) -> float:
        text = json.dumps(event, separators=(",", ":"))
        sent_s = time.time()
        self.result.frames.append(
            {"time_s": sent_s, "direction": "client", **frame_fields(text), "text": text}
        )
        await self.ws.send(text)
        return sent_s

    async def receive_forever(self) -> None:
        try:
            async for message in self.ws:
                received_s = time.time()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.result.frames.append(
                    {
                        "time_s": received_s,
                        "direction": "server",
                        **frame_fields(text),
                        "text": text,
                    }
                )
                event = json.loads(text)
                self._observe(event, received_s)
                async with self.changed:
                    self.events.append(event)
                    self.changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.result.close_code = self.ws.close_code
            async with self.changed:
                self.closed = True
                self.changed.notify_all()

    def _observe(self, event: Event, received_s: float) -> None:
        """The loudspeaker: follow reply audio; stop it when the user starts talking."""
        kind = event.get("type")
        if kind == "session.created":
            self.result.session_id = event["session"]["id"]
        elif kind == "response.created":
            rid = event["response"]["id"]
            self.playbacks[rid] = _Playback(rid)
        elif kind in AUDIO_DELTAS:
            playback = self.playbacks[event["response_id"]]
            playback.item_id = event["item_id"]
            playback.first_delta_s = playback.first_delta_s or received_s
            encoded = base64.b64decode(event["delta"])
            playback.received_ms += audio_ms(encoded, self.scenario.audio_format)
            if self.scenario.audio_format == PCM16:
                self.mic.heard(encoded)
        elif kind == "input_audio_buffer.speech_started":
            # Still streaming, or not yet played out: the user cut it off.
            for playback in self.playbacks.values():
                if playback.stopped_at_s is None and (
                    not playback.done or self.played_ms(playback, received_s) < playback.received_ms
                ):
                    playback.stopped_at_s = received_s
                    if playback.done:
                        self._schedule_truncate(playback)
        elif kind == "response.done":
            finished = self.playbacks.get(event["response"]["id"])
            if finished is not None:
                finished.done = True
                finished.status = event["response"]["status"]
                if finished.stopped_at_s is not None:
                    self._schedule_truncate(finished)

    def played_ms(self, playback: _Playback, at_s: float) -> int:
        if playback.first_delta_s is None:
            return 0
        elapsed_ms = (at_s - playback.first_delta_s) * 1000 * self.speed
        return int(min(playback.received_ms, max(0.0, elapsed_ms)))

    def _schedule_truncate(self, playback: _Playback) -> None:
        if playback.item_id is None or playback.stopped_at_s is None:
            return
        played = self.played_ms(playback, playback.stopped_at_s)
        event = {
            "type": "conversation.item.truncate",
            "item_id": playback.item_id,
            "content_index": 0,
            "audio_end_ms": played,
        }
        self.result.truncations.append(
            {"response_id": playback.response_id, **event, "received_ms": playback.received_ms}
        )
        self.truncate_tasks.append(
            asyncio.get_running_loop().create_task(self._send_quietly(event))
        )

    async def _send_quietly(self, event: Event) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send(event)

    async def wait_for(
        self, predicate: Callable[[Event], bool], after: int = 0, timeout_s: float = 20.0
    ) -> tuple[int, Event]:
        """The first received event at index >= ``after`` matching ``predicate``."""
        scanned = after
        try:
            async with asyncio.timeout(timeout_s), self.changed:
                while True:
                    for index in range(scanned, len(self.events)):
                        if predicate(self.events[index]):
                            return index, self.events[index]
                    scanned = max(scanned, len(self.events))
                    if self.closed:
                        raise ConversationError("the server closed the connection mid-script")
                    await self.changed.wait()
        except TimeoutError:
            raise ConversationError(f"no expected event within {timeout_s} s") from None

    async def wait_type(self, event_type: str, after: int = 0) -> tuple[int, Event]:
        return await self.wait_for(lambda e: e.get("type") == event_type, after)

    # -- the script ----------------------------------------------------------------------

    async def play(self) -> None:
        beta_transcription = self.dialect == BETA and self.scenario.kind == "transcription"
        prefix = "transcription_session" if beta_transcription else "session"
        await self.wait_type(f"{prefix}.created")
        mark = len(self.events)
        await self.send({"type": f"{prefix}.update", "session": self.session_update()})
        await self.wait_type(f"{prefix}.updated", mark)
        turns = self.scenario.turns
        for number, turn in enumerate(turns, start=1):
            interrupted = await self.play_turn(number, turn)
            if interrupted and number == len(turns):
                await self.wait_for(lambda e: e.get("type") == "response.done", 0)
        await asyncio.gather(*self.truncate_tasks)

    async def play_turn(self, number: int, turn: Turn) -> bool:
        """One user turn; True when it ended by interrupting its reply."""
        facts: dict[str, Any] = {"turn": number, "utterance": turn.utterance}
        self.result.turns.append(facts)
        mark = len(self.events)
        if self.mic.echoes:  # the reply has played out: start afresh, without its echo
            self.mic.clear()
            if not self.scenario.vad:
                await self.send({"type": "input_audio_buffer.clear"})
        facts["speech_start_ms"] = self.clock_ms
        facts["sent_start_s"] = time.time()
        await self.send_audio(self.encoded_utterance(turn.utterance))
        facts["speech_end_ms"] = self.clock_ms
        facts["sent_end_s"] = time.time()
        if self.scenario.vad:
            await self.send_audio(self.silence(self.scenario.trailing_silence_ms))
            committed_index, committed = await self.wait_type("input_audio_buffer.committed", mark)
        else:
            await self.send_audio(self.silence(100))
            commit_mark = len(self.events)
            await self.send({"type": "input_audio_buffer.commit"})
            committed_index, committed = await self.wait_type(
                "input_audio_buffer.committed", commit_mark
            )
        facts["item_id"] = committed["item_id"]
        facts["response_ids"] = []
        if self.scenario.kind == "transcription":
            await self.wait_for(_is_transcript_of(committed["item_id"]), committed_index)
            return False
        response_mark = committed_index + 1
        if not self.scenario.vad:
            response_mark = len(self.events)
            await self.send({"type": "response.create"})
        while True:
            index, created = await self.wait_type("response.created", response_mark)
            response_id = created["response"]["id"]
            facts["response_ids"].append(response_id)
            if turn.interrupt_after_deltas is not None:
                await self.interrupt(response_id, turn.interrupt_after_deltas, index)
                facts["interrupted"] = response_id
                return True
            done_index, done = await self.wait_for(_is_done_of(response_id), index)
            calls = [o for o in done["response"]["output"] if o.get("type") == "function_call"]
            if not calls:
                await self.finish_listening(response_id)
                return False
            response_mark = await self.answer_function_call(calls[0], done_index)

    async def interrupt(self, response_id: str, after_deltas: int, since: int) -> None:
        """Wait for some reply deltas, then cut in (the next turn's speech does it with VAD)."""
        seen = 0

        def counts(event: Event) -> bool:
            nonlocal seen
            if event.get("response_id") == response_id and (
                event.get("type") in AUDIO_DELTAS or event.get("type") in TEXT_DELTAS
            ):
                seen += 1
            return seen >= after_deltas

        await self.wait_for(counts, since)
        if not self.scenario.vad:
            playback = self.playbacks[response_id]
            playback.stopped_at_s = await self.send(
                {"type": "response.cancel", "response_id": response_id}
            )

    async def answer_function_call(self, call: dict[str, Any], after: int) -> int:
        """Run the tool and ask for the spoken answer; returns where to look for it."""
        mark = len(self.events)
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": WEATHER_RESULT,
                },
            }
        )
        await self.wait_for(lambda e: e.get("type") in ITEM_ECHOES, mark)
        mark = len(self.events)
        await self.send({"type": "response.create"})
        return mark

    async def finish_listening(self, response_id: str) -> None:
        """A polite user lets the reply play out before speaking again."""
        playback = self.playbacks.get(response_id)
        if playback is None or playback.first_delta_s is None:
            return
        end_s = playback.first_delta_s + playback.received_ms / 1000 / self.speed
        if self.mic.echoes:  # a live microphone: it sends what it hears while the reply plays
            await self.send_audio(self.silence(self.mic.queued_ms() + 400))  # then it ends
        await asyncio.sleep(max(0.0, end_s - time.time()))

    # -- audio ---------------------------------------------------------------------------

    def frame_bytes(self) -> int:
        rate = SAMPLE_RATE_BY_FORMAT[self.scenario.audio_format]
        width = 2 if self.scenario.audio_format == PCM16 else 1
        return rate * FRAME_MS // 1000 * width

    def encoded_utterance(self, name: str) -> bytes:
        return from_pcm16_24k(self.mic.speech(utterance(name).pcm16), self.scenario.audio_format)

    def silence(self, duration_ms: int) -> bytes:
        return from_pcm16_24k(bytes(duration_ms * 48), self.scenario.audio_format)

    async def send_audio(self, audio: bytes) -> None:
        """20 ms appends on an absolute schedule, ``speed`` x real time."""
        size = self.frame_bytes()
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(audio), size)):
            delay = start + index * FRAME_MS / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = audio[offset : offset + size]
            if self.scenario.audio_format == PCM16:
                chunk = self.mic.mix(chunk)
            await self.send(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
            )
            self.clock_ms += audio_ms(chunk, self.scenario.audio_format)

    def session_update(self) -> dict[str, Any]:
        s = self.scenario
        turn_detection = (
            {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": s.silence_duration_ms,
            }
            if s.vad
            else None
        )
        tools = [WEATHER_TOOL] if s.tools else []
        transcriber = s.transcriber or (
            "whisper-1" if self.dialect == BETA else "gpt-4o-mini-transcribe"
        )
        include = ["item.input_audio_transcription.logprobs"] if s.logprobs else None
        if s.kind == "transcription" and self.dialect == BETA:
            return {
                "input_audio_format": s.audio_format,
                "input_audio_transcription": {"model": transcriber, "language": "en"},
                "turn_detection": turn_detection,
                "include": include,
            }
        if s.kind == "transcription":
            return {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": GA_FORMATS[s.audio_format],
                        "transcription": {"model": transcriber, "language": "en"},
                        "turn_detection": turn_detection,
                    }
                },
                "include": include,
            }
        if self.dialect == BETA:
            return {
                "modalities": ["text"] if s.output_modalities == ("text",) else ["text", "audio"],
                "instructions": "You are a friendly bedtime-story and weather assistant.",
                "voice": "alloy",
                "input_audio_format": s.audio_format,
                "output_audio_format": s.audio_format,
                "input_audio_transcription": {"model": transcriber} if s.transcription else None,
                "turn_detection": turn_detection,
                "tools": tools,
                "tool_choice": "auto",
            }
        return {
            "type": "realtime",
            "output_modalities": list(s.output_modalities),
            "instructions": "You are a friendly bedtime-story and weather assistant.",
            "audio": {
                "input": {
                    "format": GA_FORMATS[s.audio_format],
                    "transcription": {"model": transcriber} if s.transcription else None,
                    "turn_detection": turn_detection,
                },
                "output": {"format": GA_FORMATS[s.audio_format], "voice": "alloy"},
            },
            "tools": tools,
            "tool_choice": "auto",
        }


def _is_transcript_of(item_id: str) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return (
            event.get("type") == "conversation.item.input_audio_transcription.completed"
            and event.get("item_id") == item_id
        )

    return matches


def _is_done_of(response_id: str) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        return event.get("type") == "response.done" and event["response"]["id"] == response_id

    return matches


def realtime_url(
    url: str,
    dialect: str,
    api_key: str | None = None,
    key_in_query: bool = False,
    intent: str | None = None,
) -> str:
    """Add ``model=`` when missing (``intent=transcription`` instead for a transcription
    session), and the key as ``api-key=`` when asked (redaction tests)."""
    extra = []
    if intent is not None:
        if "intent=" not in url:
            extra.append(f"intent={intent}")
    elif "model=" not in url:
        extra.append(f"model={DEFAULT_MODEL[dialect]}")
    if key_in_query and api_key:
        extra.append(f"api-key={quote(api_key)}")
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


async def run_conversation(
    url: str,
    *,
    dialect: str = GA,
    scenario: str | Scenario = "default",
    speed: float = 4.0,
    proxy: str | Literal[True] | None = None,
    ca_file: Path | str | None = None,
    api_key: str = FAKE_API_KEY,
    key_in_header: bool = True,
    key_in_subprotocol: bool = False,
    key_in_query: bool = False,
    timeout_s: float = 60.0,
) -> ConversationResult:
    """Play a scenario against a realtime server (directly, via a reverse proxy, or via an HTTP
    proxy with ``proxy=``, or the one in ``HTTPS_PROXY`` with ``proxy=True``; ``ca_file`` is the
    CA to trust for ``wss://``, else the system's or ``SSL_CERT_FILE``)."""
    if dialect not in (GA, BETA):
        raise ValueError(f"dialect must be 'ga' or 'beta', not {dialect!r}")
    if speed <= 0:
        raise ValueError("speed must be positive")
    plan = scenario if isinstance(scenario, Scenario) else scenario_named(scenario)
    headers: dict[str, str] = {}
    if key_in_header:
        headers["Authorization"] = f"Bearer {api_key}"
    if dialect == BETA:
        headers["OpenAI-Beta"] = "realtime=v1"
    subprotocols: list[Subprotocol] | None = None
    if key_in_subprotocol:
        subprotocols = [Subprotocol("realtime"), Subprotocol(f"openai-insecure-api-key.{api_key}")]
        if dialect == BETA:
            subprotocols.append(Subprotocol("openai-beta.realtime-v1"))
    intent = "transcription" if plan.kind == "transcription" else None
    full_url = realtime_url(url, dialect, api_key, key_in_query, intent)
    ssl_context = None
    if full_url.startswith("wss://"):
        ssl_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    async with asyncio.timeout(timeout_s):
        async with connect(
            full_url,
            additional_headers=headers,
            subprotocols=subprotocols,
            proxy=proxy,  # None: ignore HTTPS_PROXY from the environment; True: use it
            ssl=ssl_context,
            open_timeout=10,
            close_timeout=5,
            max_size=16 * 2**20,
        ) as ws:
            client = ScriptedClient(ws, dialect, plan, speed, url)
            receiver = asyncio.get_running_loop().create_task(client.receive_forever())
            try:
                await client.play()
            finally:
                await ws.close()
                await receiver
    return client.result


def run_conversation_sync(url: str, **options: Any) -> ConversationResult:
    """:func:`run_conversation` for synchronous callers (tests, the demo)."""
    return asyncio.run(run_conversation(url, **options))


def summarize(result: ConversationResult) -> list[str]:
    """One line per response: how it ended and how much it said."""
    lines = [
        f"session {result.session_id} ({result.dialect}, {result.scenario}): "
        f"{len(result.frames)} frames"
    ]
    for response in result.responses():
        details = response.get("status_details") or {}
        reason = f" ({details.get('reason')})" if details.get("reason") else ""
        kinds = ",".join(o.get("type", "?") for o in response["output"])
        usage = response.get("usage") or {}
        lines.append(
            f"  {response['id']}: {response['status']}{reason} [{kinds}] "
            f"tokens in {usage.get('input_tokens')} out {usage.get('output_tokens')}"
        )
    for cut in result.truncations:
        lines.append(
            f"  truncated {cut['item_id']} at {cut['audio_end_ms']} ms "
            f"of {cut['received_ms']} ms received"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.peer.client", description=__doc__)
    parser.add_argument("url", help="ws://127.0.0.1:PORT/v1/realtime (or a proxy in reverse mode)")
    parser.add_argument("--dialect", choices=(GA, BETA), default=GA)
    parser.add_argument("--scenario", choices=tuple(SCENARIOS), default="default")
    parser.add_argument("--speed", type=float, default=4.0, help="x real time (default 4)")
    parser.add_argument("--proxy", help="HTTP proxy URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--ca", type=Path, help="CA file to trust for wss:// (mitmproxy's)")
    args = parser.parse_args(argv)
    try:
        result = run_conversation_sync(
            args.url,
            dialect=args.dialect,
            scenario=args.scenario,
            speed=args.speed,
            proxy=args.proxy,
            ca_file=args.ca,
        )
    except (OSError, ConversationError, TimeoutError) as exc:
        print(f"error: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print("\n".join(summarize(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
