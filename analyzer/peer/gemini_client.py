"""A scripted Gemini Live client: sends what the official ``google-genai`` client sends.

``setup`` in camelCase, audio as ``{"realtime_input": {"audio": {"data", "mime_type"}}}`` in
URL-safe base64 (16 kHz PCM16), ``{"realtime_input": {"activityEnd": {}}}`` and
``{"tool_response": {"functionResponses": [...]}}``, in text frames, as ``live.py`` does. It
plays the Realtime peer's scenarios (:mod:`analyzer.peer.scenarios`): barge-in after some reply
chunks, a weather question answered by a tool call, manual activity detection (``vad=False``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from analyzer.codecs import resample_pcm16
from analyzer.peer.scenarios import Scenario, Turn, scenario_named
from analyzer.peer.voices import utterance
from analyzer.protocols.gemini_wire import field as get

MODEL = "models/gemini-live-2.5-flash-preview"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
INPUT_RATE_HZ = 16000
CHUNK_MS = 40
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "OBJECT",
        "properties": {"location": {"type": "STRING"}},
        "required": ["location"],
    },
}
WEATHER_RESULT = {"temperature_c": 22, "condition": "sunny"}

Message = dict[str, Any]


@dataclass
class GeminiResult:
    frames: list[dict[str, Any]] = field(default_factory=list)  # time_s, direction, opcode, data
    sent_audio: bytearray = field(default_factory=bytearray)  # 16 kHz PCM16 as sent
    received_audio: bytearray = field(default_factory=bytearray)  # 24 kHz PCM16 as received

    def messages(self, direction: str) -> list[Message]:
        return [json.loads(f["data"]) for f in self.frames if f["direction"] == direction]


class GeminiScriptedClient:
    def __init__(self, ws: ClientConnection, scenario: Scenario, speed: float) -> None:
        self.ws, self.scenario, self.speed = ws, scenario, speed
        self.result = GeminiResult()
        self.received: list[Message] = []
        self.changed = asyncio.Condition()
        self.cutting_in = False

    async def send(self, message: Message) -> None:
        text = json.dumps(message)
        self.result.frames.append(
            {"time_s": time.time(), "direction": "client", "opcode": "text", "data": text.encode()}
        )
        await self.ws.send(text)

    async def receive_forever(self) -> None:
        async for raw in self.ws:
            data = raw if isinstance(raw, bytes) else raw.encode()
            opcode = "binary" if isinstance(raw, bytes) else "text"
            frame = {"time_s": time.time(), "direction": "server", "opcode": opcode, "data": data}
            self.result.frames.append(frame)
            message = json.loads(data)
            for part in (
                get(get(get(message, "serverContent") or {}, "modelTurn") or {}, "parts") or []
            ):
                blob = get(part, "inlineData")
                if isinstance(blob, dict):
                    self.result.received_audio += base64.b64decode(get(blob, "data"))
            async with self.changed:
                self.received.append(message)
                self.changed.notify_all()

    async def wait_for(self, test: Callable[[Message], bool], since: int) -> int:
        """Index of the first message from ``since`` on that passes ``test``."""
        async with self.changed:
            while True:
                for index in range(since, len(self.received)):
                    if test(self.received[index]):
                        return index
                await asyncio.wait_for(self.changed.wait(), 30)

    def setup(self) -> Message:
        # As live.py's converter writes it: camelCase, but realtimeInputConfig's inside in
        # snake_case (the SDK's LiveClientSetup model lacks the field; LiveConnectConfig has it).
        detection: Message = {"disabled": not self.scenario.vad}
        if self.scenario.vad:
            detection["silence_duration_ms"] = self.scenario.silence_duration_ms
        setup: Message = {
            "model": MODEL,
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "systemInstruction": {
                "parts": [{"text": "You are a helpful voice assistant."}],
                "role": "user",
            },
            "realtimeInputConfig": {"automatic_activity_detection": detection},
        }
        if self.scenario.transcription:
            setup["inputAudioTranscription"] = {}
            setup["outputAudioTranscription"] = {}
        if self.scenario.tools:
            setup["tools"] = [{"functionDeclarations": [WEATHER_DECLARATION]}]
        return {"setup": setup}

    async def send_audio(self, pcm16k: bytes) -> None:
        size = INPUT_RATE_HZ * 2 * CHUNK_MS // 1000
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm16k), size)):
            delay = start + index * CHUNK_MS / 1000 / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = pcm16k[offset : offset + size]
            data = base64.urlsafe_b64encode(chunk).decode()  # what the SDK sends
            audio = {"data": data, "mime_type": f"audio/pcm;rate={INPUT_RATE_HZ}"}
            await self.send({"realtime_input": {"audio": audio}})
            self.result.sent_audio += chunk

    async def play(self) -> None:
        await self.send(self.setup())
        await self.wait_for(lambda m: "setupComplete" in m, 0)
        for turn in self.scenario.turns:
            await self.play_turn(turn)

    async def play_turn(self, turn: Turn) -> None:
        mark = len(self.received)
        speech = resample_pcm16(utterance(turn.utterance).pcm16, 24000, INPUT_RATE_HZ)
        if not self.scenario.vad:
            await self.send({"realtime_input": {"activityStart": {}}})
        await self.send_audio(speech)
        if self.scenario.vad:
            silence_ms = self.scenario.trailing_silence_ms
            await self.send_audio(bytes(INPUT_RATE_HZ * 2 * silence_ms // 1000))
        else:
            await self.send({"realtime_input": {"activityEnd": {}}})
        if self.cutting_in:  # this turn's speech interrupted the last reply: skip that news
            mark = 1 + await self.wait_for(
                lambda m: "interrupted" in (m.get("serverContent") or {}), mark
            )
            self.cutting_in = False
        if turn.interrupt_after_deltas is not None:  # the next turn's speech cuts in
            seen = 0

            def counts(message: Message) -> bool:
                nonlocal seen
                seen += "modelTurn" in (message.get("serverContent") or {})
                return seen >= (turn.interrupt_after_deltas or 0)

            await self.wait_for(counts, mark)
            self.cutting_in = True
            return
        while True:
            index = await self.wait_for(lambda m: _turn_over(m) or "toolCall" in m, mark)
            message = self.received[index]
            mark = index + 1
            if "toolCall" not in message:
                return
            responses = [
                {"id": call["id"], "name": call["name"], "response": WEATHER_RESULT}
                for call in message["toolCall"]["functionCalls"]
            ]
            await self.send({"tool_response": {"functionResponses": responses}})


def _turn_over(message: Message) -> bool:
    content = message.get("serverContent") or {}
    return bool(content.get("turnComplete") or content.get("interrupted"))


async def run_gemini_conversation(
    url: str,
    scenario: Scenario | str = "default",
    speed: float = 1.0,
    api_key: str = "test-key",
    proxy: str | None = None,
    ca_file: Path | str | None = None,
) -> GeminiResult:
    """Play ``scenario`` against the Gemini Live endpoint at ``url`` (``ws://host:port``, or
    ``wss://`` trusting ``ca_file``), through the HTTP ``proxy`` if given."""
    if isinstance(scenario, str):
        scenario = scenario_named(scenario)
    headers = {"x-goog-api-key": api_key}
    secure = url.startswith("wss://")
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    async with connect(
        url + PATH,
        additional_headers=headers,
        max_size=2**24,
        proxy=proxy,  # None: ignore HTTPS_PROXY from the environment
        ssl=context if secure else None,
    ) as ws:
        client = GeminiScriptedClient(ws, scenario, speed)
        receiver = asyncio.ensure_future(client.receive_forever())
        try:
            await asyncio.wait_for(client.play(), 120)
            await asyncio.sleep(0.2)  # the last messages reach the proxy before the close
        finally:
            await ws.close()
            await asyncio.gather(receiver, return_exceptions=True)
    return client.result


def run_gemini_conversation_sync(url: str, **options: Any) -> GeminiResult:
    return asyncio.run(run_gemini_conversation(url, **options))
