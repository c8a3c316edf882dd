"""A local Gemini Live peer (BidiGenerateContent) that speaks the protocol as the service does.

    python -m analyzer.peer.gemini_server --port 0 [--record PATH] [--audio-pace 8]

prints ``listening on ws://127.0.0.1:PORT`` and serves the Gemini Live endpoint paths. Like the
service it sends its JSON (camelCase) in **binary** frames, takes camelCase or snake_case from
the client, audio in as 16 kHz PCM16 (standard or URL-safe base64), audio out at 24 kHz.
Automatic activity detection (the default) is the energy VAD of the Realtime peer; with
``automaticActivityDetection.disabled`` the client's ``activityStart``/``activityEnd`` delimit
a turn. The end of the user's input is told by an ``inputTranscription`` marked ``finished``.
Turn facts go to the ``--record`` timeline (:mod:`analyzer.peer.record`): the ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import signal
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from analyzer.codecs import resample_pcm16
from analyzer.peer.conversation import text_tokens
from analyzer.peer.record import Timeline
from analyzer.peer.vad import EnergyVad, speech_span_ms
from analyzer.peer.voices import closest_user_utterance, utterance
from analyzer.protocols.gemini_wire import field as get
from analyzer.protocols.gemini_wire import is_endpoint

if TYPE_CHECKING:
    from analyzer.peer.tls import TlsFiles

INPUT_RATE_HZ = 16000
OUTPUT_RATE_HZ = 24000
CHUNK_MS = 100
AUDIO_MS_PER_TOKEN = 40  # 25 tokens a second, as Gemini counts audio
REPLIES = {
    "user_story": "reply_story",
    "user_shorter": "reply_short_story",
    "user_weather": "reply_weather",
    "user_thanks": "reply_thanks",
}
WEATHER_ARGS = {"location": "Paris"}


@dataclass(frozen=True)
class GeminiPeerConfig:
    first_audio_delay_ms: int = 150  # end of input -> first audio chunk
    audio_pace: float = 1.0  # reply audio sent this many times faster than real time
    silence_duration_ms: int = 200  # the VAD's silence window


@dataclass
class _Session:
    manual: bool = False
    tools: bool = False
    transcribe_in: bool = False
    transcribe_out: bool = False
    context_tokens: int = 0  # prompt tokens of everything said so far
    input_pcm: bytearray = field(default_factory=bytearray)  # since the last turn (24 kHz)
    reply: asyncio.Task[None] | None = None
    calls: dict[str, str] = field(default_factory=dict)  # pending tool call id -> asset


class GeminiPeerConnection:
    def __init__(self, ws: ServerConnection, config: GeminiPeerConfig, timeline: Timeline) -> None:
        self.ws, self.config, self.timeline = ws, config, timeline
        self.id = str(ws.id)
        self.session = _Session()
        self.vad = EnergyVad(silence_duration_ms=config.silence_duration_ms)
        self.turns = 0

    async def send(self, message: dict[str, Any]) -> float:
        text = json.dumps(message)
        sent_s = time.time()
        self.timeline.frame(self.id, "server", text, sent_s)
        await self.ws.send(text.encode())  # binary, as the service does
        return sent_s

    async def run(self) -> None:
        self.timeline.add({"record": "session_start", "session": self.id, "time_s": time.time()})
        try:
            async for raw in self.ws:
                received_s = time.time()
                text = raw.decode() if isinstance(raw, bytes) else raw
                self.timeline.frame(self.id, "client", text, received_s)
                await self.handle(json.loads(text), received_s)
        except ConnectionClosed:
            pass
        finally:
            if self.session.reply is not None:
                self.session.reply.cancel()
            self.timeline.add({"record": "session_end", "session": self.id, "time_s": time.time()})

    async def handle(self, message: dict[str, Any], received_s: float) -> None:
        setup = get(message, "setup")
        if isinstance(setup, dict):
            self._setup(setup)
            await self.send({"setupComplete": {}})
            return
        realtime = get(message, "realtimeInput")
        if isinstance(realtime, dict):
            if get(realtime, "activityStart") is not None:
                self.session.input_pcm.clear()
                if self.session.reply is not None:  # activity start interrupts, by default
                    self.session.reply.cancel()
            audio = get(realtime, "audio")
            if isinstance(audio, dict):
                await self._audio(base64.urlsafe_b64decode(get(audio, "data")))
            if get(realtime, "activityEnd") is not None:
                span = speech_span_ms(bytes(self.session.input_pcm))
                speech_ms = 0 if span is None else span[1] - span[0]
                self.session.input_pcm.clear()
                await self._user_turn(speech_ms, received_s)
            return
        tool = get(message, "toolResponse")
        if isinstance(tool, dict):
            for response in get(tool, "functionResponses") or []:
                asset = self.session.calls.pop(get(response, "id"), None)
                if asset is not None:
                    self._start_reply(asset, received_s, "tool_response")

    def _setup(self, setup: dict[str, Any]) -> None:
        detection = get(get(setup, "realtimeInputConfig") or {}, "automaticActivityDetection")
        self.session.manual = bool(isinstance(detection, dict) and get(detection, "disabled"))
        self.session.tools = bool(get(setup, "tools"))
        self.session.transcribe_in = get(setup, "inputAudioTranscription") is not None
        self.session.transcribe_out = get(setup, "outputAudioTranscription") is not None
        instruction = json.dumps(get(setup, "systemInstruction") or "")
        self.session.context_tokens = text_tokens(instruction)

    async def _audio(self, pcm16k: bytes) -> None:
        pcm = resample_pcm16(pcm16k, INPUT_RATE_HZ, OUTPUT_RATE_HZ)
        self.session.input_pcm += pcm
        if self.session.manual:
            return
        for event in self.vad.feed(pcm):
            if event.kind == "started" and self.session.reply is not None:
                self.session.reply.cancel()  # barge-in: the reply stops, "interrupted" says so
            elif event.kind == "stopped":
                self.session.input_pcm.clear()
                await self._user_turn(event.speech_ms, time.time())

    async def _user_turn(self, speech_ms: int, received_s: float) -> None:
        heard = closest_user_utterance(speech_ms)
        name = heard.name if heard is not None else None
        self.session.context_tokens += math.ceil(speech_ms / AUDIO_MS_PER_TOKEN)
        trigger_s = time.time()
        if self.session.transcribe_in:  # the input's end, as the service tells it
            text = heard.text if heard is not None else ""
            sent_s = await self.send(
                {"serverContent": {"inputTranscription": {"text": text, "finished": True}}}
            )
            trigger_s = sent_s if not self.session.manual else trigger_s
        if self.session.manual:  # the client's activityEnd ended the turn
            trigger_s = received_s
        if name == "user_weather" and self.session.tools:
            await asyncio.sleep(self.config.first_audio_delay_ms / 1000)
            call_id = f"call-{self.turns + 1}"
            self.session.calls[call_id] = REPLIES[name]
            self.turns += 1
            usage = self._usage(0, "")
            sent_s = await self.send(
                {
                    "toolCall": {
                        "functionCalls": [
                            {"id": call_id, "name": "get_weather", "args": WEATHER_ARGS}
                        ]
                    },
                    "usageMetadata": usage,
                }
            )
            self._turn_record(trigger_s, None, sent_s, False, usage, "vad")
            return
        self._start_reply(REPLIES.get(name or "", "reply_sorry"), trigger_s, "vad")

    def _start_reply(self, asset: str, trigger_s: float, trigger: str) -> None:
        self.turns += 1
        self.session.reply = asyncio.ensure_future(self._reply(asset, trigger_s, trigger))

    def _usage(self, audio_ms: int, said: str) -> dict[str, Any]:
        prompt = self.session.context_tokens
        audio_tokens = math.ceil(audio_ms / AUDIO_MS_PER_TOKEN)
        text = text_tokens(said)
        self.session.context_tokens += audio_tokens + text
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": audio_tokens + text,
            "totalTokenCount": prompt + audio_tokens + text,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": prompt}],
            "responseTokensDetails": [
                {"modality": "AUDIO", "tokenCount": audio_tokens},
                {"modality": "TEXT", "tokenCount": text},
            ],
        }

    async def _reply(self, asset: str, trigger_s: float, trigger: str) -> None:
        reply = utterance(asset)
        words = reply.text.split(" ")
        chunk_bytes = OUTPUT_RATE_HZ * 2 * CHUNK_MS // 1000
        chunks = [reply.pcm16[i : i + chunk_bytes] for i in range(0, len(reply.pcm16), chunk_bytes)]
        first_audio_s: float | None = None
        sent_ms, said = 0, ""
        try:
            await asyncio.sleep(self.config.first_audio_delay_ms / 1000)
            for index, chunk in enumerate(chunks):
                data = base64.b64encode(chunk).decode()
                part = {
                    "inlineData": {"mimeType": f"audio/pcm;rate={OUTPUT_RATE_HZ}", "data": data}
                }
                sent_s = await self.send({"serverContent": {"modelTurn": {"parts": [part]}}})
                first_audio_s = first_audio_s or sent_s
                sent_ms += len(chunk) * 1000 // (OUTPUT_RATE_HZ * 2)
                share = words[
                    index * len(words) // len(chunks) : (index + 1) * len(words) // len(chunks)
                ]
                if self.session.transcribe_out and share:
                    piece = (" " if said else "") + " ".join(share)
                    said += piece
                    await self.send({"serverContent": {"outputTranscription": {"text": piece}}})
                await asyncio.sleep(CHUNK_MS / 1000 / self.config.audio_pace)
        except asyncio.CancelledError:
            usage = self._usage(sent_ms, said)
            done_s = await self.send(
                {"serverContent": {"interrupted": True}, "usageMetadata": usage}
            )
            self._turn_record(trigger_s, first_audio_s, done_s, True, usage, trigger)
            self.session.reply = None
            return
        await self.send({"serverContent": {"generationComplete": True}})
        usage = self._usage(sent_ms, said)
        done_s = await self.send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        self._turn_record(trigger_s, first_audio_s, done_s, False, usage, trigger)
        self.session.reply = None

    def _turn_record(
        self,
        trigger_s: float,
        first_audio_s: float | None,
        done_s: float,
        interrupted: bool,
        usage: dict[str, Any],
        trigger: str,
    ) -> None:
        self.timeline.add(
            {
                "record": "turn",
                "session": self.id,
                "trigger": trigger,
                "trigger_at_s": trigger_s,
                "first_audio_at_s": first_audio_s,
                "response_done_at_s": done_s,
                "interrupted": interrupted,
                "usage": usage,
            }
        )


def _check_path(connection: ServerConnection, request: Request) -> Response | None:
    if not is_endpoint(request.path):
        return connection.respond(HTTPStatus.NOT_FOUND, "Not a Gemini Live endpoint.\n")
    return None


async def _serve(args: argparse.Namespace) -> None:
    timeline = Timeline(args.record)
    config = GeminiPeerConfig(args.first_audio_delay_ms, args.audio_pace, args.silence_duration_ms)

    async def handler(ws: ServerConnection) -> None:
        await GeminiPeerConnection(ws, config, timeline).run()

    ssl_context = None
    if args.tls_cert is not None:  # wss:// with its own certificate, as the service is reached
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    server = await serve(
        handler,
        "127.0.0.1",
        args.port,
        process_request=_check_path,
        max_size=2**24,
        ssl=ssl_context,
    )
    port = int(next(iter(server.sockets)).getsockname()[1])
    scheme = "ws" if ssl_context is None else "wss"
    print(f"listening on {scheme}://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 5)
    timeline.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analyzer.peer.gemini_server", description=__doc__
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--record", type=Path, help="append the server's timeline here (JSONL)")
    defaults = GeminiPeerConfig()
    parser.add_argument("--first-audio-delay-ms", type=int, default=defaults.first_audio_delay_ms)
    parser.add_argument("--audio-pace", type=float, default=defaults.audio_pace)
    parser.add_argument("--silence-duration-ms", type=int, default=defaults.silence_duration_ms)
    parser.add_argument("--tls-cert", type=Path, help="serve wss:// with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())


@contextlib.contextmanager
def run_gemini_server(
    record_path: Path | None = None,
    config: GeminiPeerConfig | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[int]:
    """The peer in a subprocess on a free loopback port (``wss://`` with ``tls``); yields the
    port."""
    from analyzer.peer.harness import REPO_ROOT, SERVER_READY, ManagedProcess

    config = config or GeminiPeerConfig()
    args = [sys.executable, "-m", "analyzer.peer.gemini_server", "--port", "0"]
    args += ["--first-audio-delay-ms", str(config.first_audio_delay_ms)]
    args += ["--audio-pace", str(config.audio_pace)]
    args += ["--silence-duration-ms", str(config.silence_duration_ms)]
    if record_path is not None:
        args += ["--record", str(record_path)]
    if tls is not None:
        args += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    process = ManagedProcess("gemini peer", args, cwd=REPO_ROOT)
    try:
        port = int(process.wait_for_line(SERVER_READY, 15).group(1))
        yield port
    finally:
        process.stop(signal.SIGTERM, 10)
