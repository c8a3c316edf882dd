"""A local realtime peer: OpenAI Realtime (beta and GA dialects) over WebSocket, with server VAD.

    python -m analyzer.peer.server --host 127.0.0.1 --port 0 [--record PATH] [--audio-pace 2]

prints ``listening on ws://127.0.0.1:PORT`` (``wss://`` with ``--tls-cert`` and ``--tls-key``,
e.g. from :mod:`analyzer.peer.tls`) and serves any path ending in ``/realtime`` until
SIGINT/SIGTERM, and GPT-Live (``.../live/sessions`` and its sideband
``.../live/sessions/ID/attach``, :mod:`analyzer.peer.live`). ``OpenAI-Beta: realtime=v1`` (or
the ``openai-beta.realtime-v1`` subprotocol) selects the beta dialect, anything else GA. API keys
are accepted whatever they are, and never recorded. With ``--record`` every frame and the facts
of every turn go to a JSONL file (:mod:`analyzer.peer.record`), the ground truth for
the analyzer's tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import re
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from analyzer.peer.audio import to_pcm16_24k
from analyzer.peer.conversation import ItemFacts, recognise_text
from analyzer.peer.dialect import (
    BETA,
    DEFAULT_MODEL,
    GA,
    REALTIME,
    TRANSCRIPTION,
    SessionConfig,
    SessionUpdateError,
    new_id,
)
from analyzer.peer.live import LiveSession, serve_sideband
from analyzer.peer.record import Timeline
from analyzer.peer.responses import ResponseRun
from analyzer.peer.tasks import spawn_guarded
from analyzer.peer.transcriber import Transcription
from analyzer.peer.vad import EnergyVad, VadEvent, speech_span_ms
from analyzer.peer.voices import closest_user_utterance, utterances

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
LIVE_PATH = re.compile(r"/live/sessions$")
SIDEBAND_PATH = re.compile(r"/live/sessions/([^/]+)/attach$")
MIN_COMMIT_MS = 100
PCM_RATE_HZ = 24000


@dataclass(frozen=True)
class PeerConfig:
    """Timing of the peer. Delays are wall-clock; ``audio_pace`` is how many times faster than
    real time audio deltas are sent (real servers send faster than real time)."""

    first_response_delay_ms: float = 150.0  # commit / response.create -> response.created
    first_audio_delay_ms: float = 100.0  # response.created -> first audio (or text) delta
    transcription_delay_ms: float = 120.0  # commit -> input_audio_transcription.completed
    transcription_first_delta_ms: float = 60.0  # commit -> first input_audio_transcription.delta
    audio_pace: float = 2.0
    audio_chunk_ms: int = 100  # one delta: 4800 bytes of 24 kHz PCM16
    text_delta_ms: float = 20.0  # between text-only or argument deltas, before pacing
    # Planted faults (issue 18's heard checks), each on the session's first audio reply: the
    # reply's audio pauses this long (wall ms) after stall_after_ms of it was sent ...
    stall_ms: float = 0.0
    stall_after_ms: int = 200
    # ... or, after this much of it was sent, the server declares speech (speech_started) and
    # cuts the reply (turn_detected) while the client sends nothing: a false barge-in (-1: no).
    false_barge_in_after_ms: int = -1


class ProtocolError(Exception):
    """A client event we refuse; becomes an ``error`` event, the connection stays open."""

    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass
class UserTurn:
    """Facts of the user turn being heard, handed to the response it triggers."""

    item_id: str
    speech_started_at_s: float | None = None
    audio_start_ms: int | None = None
    speech_stopped_at_s: float | None = None
    audio_end_ms: int | None = None
    committed_at_s: float | None = None
    commit_requested_at_s: float | None = None  # when the client's commit arrived (no VAD)
    utterance: str | None = None


class PeerConnection:
    """One client connection: its session, conversation, input buffer and responses."""

    def __init__(
        self,
        ws: ServerConnection,
        dialect: str,
        model: str,
        config: PeerConfig,
        timeline: Timeline,
        kind: str = REALTIME,
    ) -> None:
        self.ws = ws
        self.dialect = dialect
        self.config = config
        self.timeline = timeline
        self.session = SessionConfig(dialect, model, kind)
        self.conversation_id = new_id("conv")
        self.items: list[ItemFacts] = []
        self.vad = self._new_vad(clock_ms=0)
        self.buffer = bytearray()  # 24 kHz PCM16 appended since the last commit or clear
        self.user_turn: UserTurn | None = None
        self.last_manual_turn: UserTurn | None = None  # committed by the client, not yet answered
        self.response: ResponseRun | None = None
        self.faults_planted = False  # the config's planted faults went on a reply already
        self.previous_input_tokens = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()
        self._handlers: dict[str, Callable[[dict[str, Any], float], Awaitable[None]]] = {
            "session.update": self._session_update,
            "transcription_session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_request,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.delete": self._item_delete,
            "conversation.item.retrieve": self._item_retrieve,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
            "output_audio_buffer.clear": self._webrtc_only,
        }

    @property
    def session_id(self) -> str:
        return self.session.id

    def _new_vad(self, clock_ms: int) -> EnergyVad:
        td = self.session.turn_detection or {}
        vad = EnergyVad(
            threshold=td.get("threshold", 0.5),
            prefix_padding_ms=td.get("prefix_padding_ms", 300),
            silence_duration_ms=td.get("silence_duration_ms", 500),
        )
        vad.clock_ms = vad.buffer_start_ms = clock_ms
        return vad

    # -- sending -------------------------------------------------------------------------

    async def send(self, event_type: str, **fields: Any) -> float:
        """Send one server event; returns the wall-clock time it was sent (and recorded)."""
        text = json.dumps(
            {"type": event_type, "event_id": new_id("event"), **fields},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        async with self._send_lock:
            sent_s = time.time()
            self.timeline.frame(self.session_id, "server", text, sent_s)
            await self.ws.send(text)
        return sent_s

    async def send_error(
        self, message: str, code: str, param: str | None, client_event_id: Any = None
    ) -> None:
        await self.send(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id if isinstance(client_event_id, str) else None,
            },
        )

    async def send_item_created(self, item: dict[str, Any], previous_item_id: str | None) -> None:
        if self.dialect == BETA:
            await self.send(
                "conversation.item.created", previous_item_id=previous_item_id, item=item
            )
        else:
            await self.send("conversation.item.added", previous_item_id=previous_item_id, item=item)
            if item.get("status") == "completed":
                await self.send(
                    "conversation.item.done", previous_item_id=previous_item_id, item=item
                )

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        return spawn_guarded(self.tasks, coro)

    # -- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        self.timeline.add(
            {
                "record": "session_start",
                "session": self.session_id,
                "time_s": time.time(),
                "dialect": self.dialect,
                "model": self.session.model,
                "kind": self.session.kind,
            }
        )
        try:
            await self.send(self._session_event("created"), session=self.session.render())
            async for message in self.ws:
                received_s = time.time()
                if isinstance(message, bytes):
                    self.timeline.frame(
                        self.session_id, "client", message.decode("utf-8", "replace"), received_s
                    )
                    await self.send_error(
                        "Binary frames are not supported; send JSON text events.",
                        "invalid_request",
                        None,
                    )
                    continue
                self.timeline.frame(self.session_id, "client", message, received_s)
                await self.handle(message, received_s)
        except ConnectionClosed:
            pass
        finally:
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            self.timeline.add(
                {"record": "session_end", "session": self.session_id, "time_s": time.time()}
            )

    async def handle(self, message: str, received_s: float) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            await self.send_error(
                "The server could not parse the event: it is not valid JSON.", "invalid_json", None
            )
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.send_error(
                "Missing required parameter: 'type'.", "missing_required_parameter", "type"
            )
            return
        handler = self._handlers.get(event["type"])
        try:
            if handler is None:
                raise ProtocolError(
                    f"Invalid value: '{event['type']}'. Supported values are: "
                    + ", ".join(f"'{name}'" for name in self._handlers)
                    + ".",
                    param="type",
                )
            await handler(event, received_s)
        except ProtocolError as exc:
            await self.send_error(str(exc), exc.code, exc.param, event.get("event_id"))

    # -- session and audio ---------------------------------------------------------------

    def _session_event(self, what: str) -> str:
        """``session.created``/``.updated``; beta transcription sessions have their own."""
        beta_transcription = self.dialect == BETA and self.session.transcribes_only
        return f"{'transcription_session' if beta_transcription else 'session'}.{what}"

    async def _session_update(self, event: dict[str, Any], received_s: float) -> None:
        expected = "session.update"
        if self.dialect == BETA and self.session.transcribes_only:
            expected = "transcription_session.update"
        if event["type"] != expected:
            raise ProtocolError(
                f"Invalid value: '{event['type']}': this {self.session.kind} session is "
                f"configured with '{expected}'.",
                param="type",
            )
        before = (self.session.turn_detection, self.session.input_format)
        try:
            self.session.update(event.get("session"))
        except SessionUpdateError as exc:
            raise ProtocolError(str(exc), "invalid_value", exc.param) from None
        if (self.session.turn_detection, self.session.input_format) != before:
            self.vad = self._new_vad(clock_ms=self.vad.clock_ms)
        await self.send(self._session_event("updated"), session=self.session.render())

    async def _append(self, event: dict[str, Any], received_s: float) -> None:
        audio_b64 = event.get("audio")
        if not isinstance(audio_b64, str):
            raise ProtocolError(
                "Missing required parameter: 'audio'.", "missing_required_parameter", "audio"
            )
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(
                "Invalid 'audio': not valid base64.", "invalid_value", "audio"
            ) from None
        pcm = to_pcm16_24k(audio, self.session.input_format)
        self.buffer += pcm
        for vad_event in self.vad.feed(pcm):
            if self.session.turn_detection is None:
                continue  # the clock still runs, for audio_*_ms after re-enabling VAD
            if vad_event.kind == "started":
                await self._speech_started(vad_event)
            else:
                await self._speech_stopped(vad_event)

    async def _speech_started(self, vad_event: VadEvent) -> None:
        turn = UserTurn(item_id=new_id("item"), audio_start_ms=vad_event.audio_ms)
        self.user_turn = turn
        turn.speech_started_at_s = await self.send(
            "input_audio_buffer.speech_started",
            audio_start_ms=vad_event.audio_ms,
            item_id=turn.item_id,
        )
        td = self.session.turn_detection or {}
        if self.response is not None and td.get("interrupt_response", True):
            await self.response.halt("turn_detected")

    def plant_faults(self) -> bool:
        """Whether this reply carries the config's planted faults (the first audio reply)."""
        first, self.faults_planted = not self.faults_planted, True
        return first

    async def false_barge_in(self) -> None:
        """Planted: speech declared where the client sent none; the reply is cut for it."""
        await self._speech_started(VadEvent("started", self.vad.clock_ms, 0))

    async def _speech_stopped(self, vad_event: VadEvent) -> None:
        turn = self.user_turn or UserTurn(item_id=new_id("item"))
        turn.audio_end_ms = vad_event.audio_ms
        turn.speech_stopped_at_s = await self.send(
            "input_audio_buffer.speech_stopped",
            audio_end_ms=vad_event.audio_ms,
            item_id=turn.item_id,
        )
        await self._commit(turn, vad_event.speech_ms)
        self.user_turn = None
        if self.session.transcribes_only:
            return
        if (self.session.turn_detection or {}).get("create_response", True):
            assert turn.speech_stopped_at_s is not None
            self.start_response("speech_stopped", turn.speech_stopped_at_s, turn, {})

    async def _commit_request(self, event: dict[str, Any], received_s: float) -> None:
        buffered_ms = len(self.buffer) * 1000 // (2 * PCM_RATE_HZ)
        if buffered_ms < MIN_COMMIT_MS:
            raise ProtocolError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        span = speech_span_ms(
            bytes(self.buffer), (self.session.turn_detection or {}).get("threshold", 0.5)
        )
        speech_ms = span[1] - span[0] if span else 0
        turn = self.user_turn or UserTurn(item_id=new_id("item"))
        turn.commit_requested_at_s = received_s
        self.user_turn = None
        await self._commit(turn, speech_ms)
        self.last_manual_turn = turn

    async def _commit(self, turn: UserTurn, speech_ms: int) -> None:
        """Turn the input buffer into a user item (after VAD or an explicit commit)."""
        recognised = closest_user_utterance(speech_ms) if speech_ms else None
        turn.utterance = recognised.name if recognised else None
        previous = self.items[-1].id if self.items else None
        facts = ItemFacts(
            turn.item_id,
            "user_audio",
            utterance=turn.utterance,
            audio_ms=len(self.buffer) * 1000 // (2 * PCM_RATE_HZ),
        )
        self.buffer.clear()
        self.vad.reset_buffer()
        turn.committed_at_s = await self.send(
            "input_audio_buffer.committed", previous_item_id=previous, item_id=turn.item_id
        )
        facts.wire = {
            "id": turn.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(facts)
        await self.send_item_created(facts.wire, previous)
        if self.session.transcription:
            run = Transcription(self, turn, facts, recognised.text if recognised else "")
            self.spawn(run.run())

    async def _clear(self, event: dict[str, Any], received_s: float) -> None:
        self.buffer.clear()
        self.vad = self._new_vad(clock_ms=self.vad.clock_ms)
        self.user_turn = None
        await self.send("input_audio_buffer.cleared")

    # -- conversation items --------------------------------------------------------------

    def find_item(self, item_id: Any, param: str = "item_id") -> ItemFacts:
        for item in self.items:
            if item.id == item_id:
                return item
        raise ProtocolError(
            f"Invalid '{param}': no item with id '{item_id}' in the conversation.",
            "item_not_found",
            param,
        )

    async def _item_create(self, event: dict[str, Any], received_s: float) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ProtocolError(
                "Missing required parameter: 'item'.", "missing_required_parameter", "item"
            )
        kind = item.get("type")
        given_id = item.get("id")
        item_id = given_id if isinstance(given_id, str) else new_id("item")
        wire = {**item, "id": item_id, "object": "realtime.item", "status": "completed"}
        if kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                raise ProtocolError(
                    "A function_call_output item needs string 'call_id' and 'output'.",
                    "missing_required_parameter",
                    "item.call_id",
                )
            facts = ItemFacts(item_id, kind, text=item["output"], call_id=item["call_id"])
        elif kind == "function_call":
            facts = ItemFacts(
                item_id,
                kind,
                text=str(item.get("arguments", "")),
                call_id=item.get("call_id"),
                name=item.get("name"),
            )
        elif kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system"):
                raise ProtocolError(
                    f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', and "
                    "'system'.",
                    param="item.role",
                )
            text = " ".join(
                str(part.get("text", ""))
                for part in item.get("content") or []
                if isinstance(part, dict)
            ).strip()
            if role == "assistant":
                facts = ItemFacts(item_id, "assistant", text=text)
            else:
                facts = ItemFacts(item_id, "user_text", utterance=recognise_text(text), text=text)
        else:
            raise ProtocolError(
                f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', and "
                "'function_call_output'.",
                param="item.type",
            )
        facts.wire = wire
        previous = self.items[-1].id if self.items else None
        self.items.append(facts)
        await self.send_item_created(wire, previous)

    async def _item_truncate(self, event: dict[str, Any], received_s: float) -> None:
        item = self.find_item(event.get("item_id"))
        end_ms = event.get("audio_end_ms")
        if item.kind != "assistant" or not item.audio_ms:
            raise ProtocolError(
                f"Item '{item.id}' has no audio to truncate.", "invalid_value", "item_id"
            )
        if not isinstance(end_ms, int) or end_ms < 0:
            raise ProtocolError(
                "Invalid 'audio_end_ms': expected a non-negative integer.", param="audio_end_ms"
            )
        if end_ms > item.audio_ms:
            raise ProtocolError(
                f"Audio content of {item.audio_ms}ms is already shorter than {end_ms}ms",
                param="audio_end_ms",
            )
        # Like the real server: the transcript goes, so the model never "heard" unplayed text.
        item.audio_ms = end_ms
        item.text = ""
        await self.send(
            "conversation.item.truncated",
            item_id=item.id,
            content_index=event.get("content_index", 0),
            audio_end_ms=end_ms,
        )

    async def _item_delete(self, event: dict[str, Any], received_s: float) -> None:
        item = self.find_item(event.get("item_id"))
        self.items.remove(item)
        await self.send("conversation.item.deleted", item_id=item.id)

    async def _item_retrieve(self, event: dict[str, Any], received_s: float) -> None:
        item = self.find_item(event.get("item_id"))
        await self.send("conversation.item.retrieved", item=item.wire)

    # -- responses -----------------------------------------------------------------------

    def start_response(
        self,
        trigger: str,
        trigger_at_s: float,
        turn: UserTurn | None,
        overrides: dict[str, Any],
    ) -> None:
        if self.response is not None:
            return
        run = ResponseRun(self, trigger, trigger_at_s, turn, overrides)
        self.response = run
        run.task = self.spawn(run.run())

    async def _response_create(self, event: dict[str, Any], received_s: float) -> None:
        if self.session.transcribes_only:
            raise ProtocolError(
                "A transcription session has no responses: 'response.create' is not supported.",
                "unsupported_event",
                "type",
            )
        if self.response is not None:
            raise ProtocolError(
                "Conversation already has an active response in progress: "
                f"{self.response.id}. Wait until the response is finished before creating a new "
                "one.",
                "conversation_already_has_active_response",
            )
        overrides = event.get("response") if isinstance(event.get("response"), dict) else {}
        turn = self.last_manual_turn
        self.last_manual_turn = None
        self.start_response("response.create", received_s, turn, overrides or {})

    async def _response_cancel(self, event: dict[str, Any], received_s: float) -> None:
        wanted = event.get("response_id")
        if self.response is None or (wanted is not None and wanted != self.response.id):
            raise ProtocolError(
                "Cancellation failed: no active response found", "response_cancel_not_active"
            )
        await self.response.halt("client_cancelled")

    async def _webrtc_only(self, event: dict[str, Any], received_s: float) -> None:
        raise ProtocolError(
            f"'{event['type']}' is only supported for WebRTC and SIP connections.",
            "unsupported_event",
            "type",
        )


class RealtimeServer:
    """The peer server; usable in-process (``async with RealtimeServer() as server``)."""

    def __init__(
        self,
        config: PeerConfig | None = None,
        record_path: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config or PeerConfig()
        self.timeline = Timeline(record_path)
        self.port = 0
        self.host = "127.0.0.1"
        self.ssl_context = ssl_context
        self._server: Server | None = None
        self.live_sessions: dict[str, LiveSession] = {}  # started GPT-Live sessions, by id

    @property
    def scheme(self) -> str:
        return "ws" if self.ssl_context is None else "wss"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/v1/realtime"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"The peer serves loopback only, not {host!r}.")
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=_check_path,
            select_subprotocol=_select_subprotocol,
            max_size=16 * 2**20,
            ssl=self.ssl_context,
        )
        self.host = host
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self.port

    async def stop(self, timeout_s: float = 5.0) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout_s)
            self._server = None
        self.timeline.close()

    async def __aenter__(self) -> RealtimeServer:
        await self.start(self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        path = urlsplit(request.path).path
        if LIVE_PATH.search(path):
            await LiveSession(ws, self.config, self.timeline, self.live_sessions).run()
            return
        attach = SIDEBAND_PATH.search(path)
        if attach:
            await serve_sideband(ws, self.live_sessions.get(attach.group(1)))
            return
        dialect = dialect_of_request(request.headers, ws.subprotocol)
        query = parse_qs(urlsplit(request.path).query)
        kind = TRANSCRIPTION if "transcription" in query.get("intent", []) else REALTIME
        default = DEFAULT_MODEL[dialect] if kind == REALTIME else ""
        model = (query.get("model") or query.get("deployment") or [default])[0]
        await PeerConnection(ws, dialect, model, self.config, self.timeline, kind).run()


def dialect_of_request(headers: Headers, offered: str | None = None) -> str:
    beta_header = "realtime=v1" in headers.get("OpenAI-Beta", "").replace(" ", "")
    beta_protocol = any(
        "openai-beta.realtime-v1" in value for value in headers.get_all("Sec-WebSocket-Protocol")
    )
    return BETA if beta_header or beta_protocol else GA


def _check_path(connection: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path).path
    if not (path.endswith("/realtime") or LIVE_PATH.search(path) or SIDEBAND_PATH.search(path)):
        return connection.respond(
            HTTPStatus.NOT_FOUND,
            "Realtime endpoints end in /realtime, GPT-Live ones in /live/sessions[/ID/attach].\n",
        )
    return None


def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
    # Browser clients offer "realtime" plus key/beta entries; answer "realtime" like OpenAI.
    return Subprotocol("realtime") if "realtime" in subprotocols else None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m analyzer.peer.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", choices=LOOPBACK_HOSTS)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--record", type=Path, help="append the server's timeline here (JSONL)")
    parser.add_argument("--tls-cert", type=Path, help="serve wss:// with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="the private key of --tls-cert (PEM)")
    for name, value in asdict(PeerConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    return args


def config_from_args(args: argparse.Namespace) -> PeerConfig:
    return PeerConfig(**{name: getattr(args, name) for name in PeerConfig.__dataclass_fields__})


async def _serve(args: argparse.Namespace) -> None:
    utterances()  # load the assets before saying we are ready
    ssl_context = None
    if args.tls_cert is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    server = RealtimeServer(config_from_args(args), args.record, ssl_context)
    port = await server.start(args.host, args.port)
    print(f"listening on {server.scheme}://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(_parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
