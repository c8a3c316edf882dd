"""GPT-Live (``/v1/live/sessions``) for the local peer: the primary socket and its sideband.

The primary socket starts with ``session.start`` and carries the user's audio in
(``session.input_audio.append``, no acknowledgement) and the model's audio and transcripts out.
There are no turn events: the peer hears the user with its energy VAD, sends the input
transcript with ``start_ms``/``end_ms`` on the session timeline (here: the milliseconds of input
audio received, which is what the client appended), and answers with a run of output audio. A
user who speaks over a reply stops it (nothing announces that: the audio just stops).

A sideband (``/v1/live/sessions/{id}/attach``) sees every server event of the session, the
user's audio reflected (``session.input_audio.append`` from the server, 24 kHz PCM16, no
timestamps) and the model's audio with ``start_ms``/``end_ms``.

The peer's record (:mod:`analyzer.peer.record`) holds every frame of both sockets (the
sideband's under ``<session id>:sideband``) and one ``turn`` record per reply: when the append
that carried the end of the user's speech arrived (and was reflected), when the first reply
audio went out on each socket, and how the reply ended.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from bisect import bisect_left
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from analyzer.peer.audio import to_pcm16_24k
from analyzer.peer.dialect import ALAW, PCM16, ULAW, new_id
from analyzer.peer.live_reply import LiveReply
from analyzer.peer.tasks import spawn_guarded
from analyzer.peer.vad import EnergyVad, VadEvent

if TYPE_CHECKING:
    from analyzer.peer.record import Timeline
    from analyzer.peer.server import PeerConfig

LIVE_MODELS = ("gpt-live-1", "gpt-live-1.1")
DEFAULT_VOICE = "marin"
SESSION_TTL_S = 3600
# The peer's end-of-speech silence (GPT-Live does not expose one).
LIVE_SILENCE_MS = 300
FORMAT_BY_WIRE = {
    ("audio/pcm", 24000): PCM16,
    ("audio/pcmu", 8000): ULAW,
    ("audio/pcma", 8000): ALAW,
}
WIRE_BY_FORMAT = {name: {"type": t, "rate": r} for (t, r), name in FORMAT_BY_WIRE.items()}
# Client commands of each socket (the sideband never starts a session, only it sends DTMF).
PRIMARY_COMMANDS = frozenset(
    {
        "session.start",
        "session.update",
        "session.input_audio.append",
        "session.input_audio.mute",
        "session.input_audio.unmute",
        "session.output_audio.fixture.play",
        "session.instructions.append",
        "session.thinking.append",
        "session.commentary.append",
        "response.item.create",
        "response.create",
        "session.close",
    }
)


class LiveError(Exception):
    """A command the peer refuses: an ``error`` event, the connection stays open."""

    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def _json(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class LiveSession:
    """One GPT-Live session: its primary socket, the sidebands attached to it, the user's
    audio on the session timeline and the reply being spoken."""

    def __init__(
        self,
        ws: ServerConnection,
        config: PeerConfig,
        timeline: Timeline,
        sessions: dict[str, LiveSession],
    ) -> None:
        self.ws = ws
        self.config = config
        self.timeline = timeline
        self.sessions = sessions
        self.id = new_id("sess")
        self.resource: dict[str, Any] | None = None  # set by session.start
        self.format = PCM16
        self.sidebands: list[ServerConnection] = []
        self.clock_ms = 0  # the session timeline: input audio received, in ms
        self.arrivals: list[tuple[int, float, float | None]] = []  # (end ms, received, reflected)
        self.vad = EnergyVad(prefix_padding_ms=0, silence_duration_ms=LIVE_SILENCE_MS)
        self.muted = False
        self.reply: LiveReply | None = None
        self.finished: list[LiveReply] = []  # spoken, their turn record not yet written
        self.tool_output: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.response_requested = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self.closed = False

    # -- sending -------------------------------------------------------------------------

    async def _send_to(self, ws: ServerConnection, socket: str, text: str) -> float:
        lock = self._locks.setdefault(id(ws), asyncio.Lock())
        async with lock:
            sent_s = time.time()
            session = self.id if socket == "primary" else f"{self.id}:sideband"
            self.timeline.frame(session, "server", text, sent_s)
            await ws.send(text)
        return sent_s

    async def send(self, event_type: str, **fields: Any) -> float:
        """A server event to the primary socket and every sideband; the primary's send time."""
        event = {"type": event_type, "event_id": new_id("event"), **fields}
        text = _json(event)
        sent_s = await self._send_to(self.ws, "primary", text)
        await self.reflect(text)
        return sent_s

    async def reflect(self, text: str) -> float | None:
        """``text`` to every sideband (a sideband that left is forgotten); the first send time."""
        first: float | None = None
        for ws in list(self.sidebands):
            try:
                sent_s = await self._send_to(ws, "sideband", text)
            except ConnectionClosed:
                with contextlib.suppress(ValueError):
                    self.sidebands.remove(ws)
                continue
            first = first if first is not None else sent_s
        return first

    async def send_error(self, exc: LiveError, client_event_id: Any) -> None:
        error: dict[str, Any] = {
            "type": "invalid_request_error",
            "code": exc.code,
            "message": str(exc),
            "param": exc.param,
        }
        if isinstance(client_event_id, str):
            error["client_event_id"] = client_event_id
        await self.send("error", error=error)

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        return spawn_guarded(self.tasks, coro)

    # -- the primary socket --------------------------------------------------------------

    async def run(self) -> None:
        self.timeline.add(
            {
                "record": "session_start",
                "session": self.id,
                "time_s": time.time(),
                "dialect": "live",
            }
        )
        try:
            async for message in self.ws:
                received_s = time.time()
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.timeline.frame(self.id, "client", text, received_s)
                await self.handle(text, received_s)
                if self.closed:
                    break
        except ConnectionClosed:
            pass
        finally:
            await self.finish()

    async def finish(self) -> None:
        if self.reply is not None:
            await self.reply.halt("session_closed")
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.write_turns(None)
        self.sessions.pop(self.id, None)
        for ws in list(self.sidebands):
            with contextlib.suppress(ConnectionClosed):
                await ws.close()
        self.timeline.add({"record": "session_end", "session": self.id, "time_s": time.time()})

    async def handle(self, text: str, received_s: float) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            await self.send_error(LiveError("The event is not valid JSON.", "invalid_json"), None)
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.send_error(
                LiveError("Missing required parameter: 'type'.", "missing_required_parameter"),
                None,
            )
            return
        kind = event["type"]
        try:
            if kind not in PRIMARY_COMMANDS:
                raise LiveError(f"Invalid value: '{kind}'.", "invalid_value", "type")
            if self.resource is None and kind != "session.start":
                raise LiveError(
                    "Send session.start first and wait for session.started.", "session_not_started"
                )
            await self.command(kind, event, received_s)
        except LiveError as exc:
            await self.send_error(exc, event.get("event_id"))

    async def command(self, kind: str, event: dict[str, Any], received_s: float) -> None:
        echo = (
            {"client_event_id": event["event_id"]} if isinstance(event.get("event_id"), str) else {}
        )
        if kind == "session.start":
            await self._start(event.get("session"), echo)
        elif kind == "session.input_audio.append":
            await self._append(event.get("audio"), received_s)
        elif kind in ("session.input_audio.mute", "session.input_audio.unmute"):
            self.muted = kind.endswith(".mute")
            await self.send(f"{kind}d", **echo)
        elif kind in (
            "session.instructions.append",
            "session.thinking.append",
            "session.commentary.append",
        ):
            if not isinstance(event.get("content"), str):
                raise LiveError(
                    "Missing required parameter: 'content'.",
                    "missing_required_parameter",
                    "content",
                )
            at = self.clock_ms
            await self.send(f"{kind}ed", start_ms=at, end_ms=at, **echo)
        elif kind == "response.item.create":
            item = event.get("item")
            if not isinstance(item, dict):
                raise LiveError(
                    "Missing required parameter: 'item'.", "missing_required_parameter", "item"
                )
            await self.tool_output.put(item)
        elif kind == "response.create":
            self.response_requested.set()
        elif kind == "session.update":
            await self.send("session.updated", session=self.resource, **echo)
        elif kind == "session.close":
            await self.close("close_requested", echo)
        else:  # fixture.play: accepted and played at once (the peer has no mixer)
            await self.send("session.output_audio.fixture.playing", **echo)
            await self.send("session.output_audio.fixture.played", **echo)

    async def close(self, reason: str, echo: dict[str, Any]) -> None:
        if self.reply is not None:
            await self.reply.halt("session_closed")
        usage = {"seconds": float(self.clock_ms // 1000)}
        await self.send("session.closed", reason=reason, session=self.resource, usage=usage, **echo)
        self.closed = True

    async def _start(self, session: Any, echo: dict[str, Any]) -> None:
        if self.resource is not None:
            raise LiveError("The session has already started.", "session_already_started")
        if not isinstance(session, dict) or not isinstance(session.get("model"), str):
            raise LiveError(
                "Missing required parameter: 'session.model'.",
                "missing_required_parameter",
                "session.model",
            )
        if session["model"] not in LIVE_MODELS:
            raise LiveError(
                f"Invalid value: '{session['model']}'.", "invalid_value", "session.model"
            )
        audio: dict[str, Any] = session.get("audio") or {}
        wire: Any = audio.get("format") if isinstance(audio, dict) else None
        wire = wire or WIRE_BY_FORMAT[PCM16]
        name = (
            FORMAT_BY_WIRE.get((str(wire.get("type")), int(wire.get("rate") or 0)))
            if isinstance(wire, dict)
            else None
        )
        if name is None:
            raise LiveError(
                "This peer speaks audio/pcm at 24000 Hz, audio/pcmu and audio/pcma at 8000 Hz.",
                "invalid_value",
                "session.audio.format",
            )
        self.format = name
        output: Any = audio.get("output") if isinstance(audio, dict) else None
        output = output if isinstance(output, dict) else {}
        self.resource = {
            "id": self.id,
            "expires_at": int(time.time()) + SESSION_TTL_S,
            "model": session["model"],
            "status": "active",
            "instructions": session.get("instructions") or "",
            "audio": {
                "format": WIRE_BY_FORMAT[name],
                "output": {"voice": output.get("voice") or DEFAULT_VOICE},
            },
            "delegation": session.get("delegation"),
            "store": bool(session.get("store", False)),
        }
        self.sessions[self.id] = self
        await self.send("session.started", session=self.resource, **echo)

    # -- the user's audio ----------------------------------------------------------------

    async def _append(self, audio_b64: Any, received_s: float) -> None:
        if not isinstance(audio_b64, str):
            raise LiveError(
                "Missing required parameter: 'audio'.", "missing_required_parameter", "audio"
            )
        try:
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            raise LiveError(
                "Invalid 'audio': not valid base64.", "invalid_value", "audio"
            ) from None
        pcm = to_pcm16_24k(audio, self.format)
        # Reflected before muting, with no event id and no timestamps, always 24 kHz PCM16.
        reflected = {"type": "session.input_audio.append", "audio": base64.b64encode(pcm).decode()}
        reflected_s = await self.reflect(_json(reflected))
        self.clock_ms += len(pcm) // 48
        self.arrivals.append((self.clock_ms, received_s, reflected_s))
        for vad_event in self.vad.feed(bytes(len(pcm)) if self.muted else pcm):
            if vad_event.kind == "started":
                await self._speech_started(vad_event)
            else:
                self._speech_stopped(vad_event)

    def arrival_of(self, at_ms: int) -> tuple[float | None, float | None]:
        """When the append holding the audio at ``at_ms`` on the timeline arrived and was
        reflected (the first whose end reaches it)."""
        index = bisect_left([end for end, _, _ in self.arrivals], at_ms)
        if index >= len(self.arrivals):
            return None, None
        _, received_s, reflected_s = self.arrivals[index]
        return received_s, reflected_s

    async def _speech_started(self, vad_event: VadEvent) -> None:
        if self.reply is not None:
            await self.reply.halt("turn_detected")
        self.write_turns(vad_event.audio_ms)  # no prefix padding: the onset itself

    def _speech_stopped(self, vad_event: VadEvent) -> None:
        end_ms = vad_event.audio_ms - LIVE_SILENCE_MS
        start_ms = end_ms - vad_event.speech_ms
        if self.reply is None:
            reply = LiveReply(self, start_ms, end_ms, vad_event.speech_ms)
            self.reply = reply
            reply.task = self.spawn(reply.run())

    def write_turns(self, user_onset_ms: int | None) -> None:
        """The turn records of replies spoken so far: interrupted when the user started
        speaking (``user_onset_ms``) before the reply had played out on the timeline."""
        for reply in self.finished:
            reply.record(user_onset_ms)
        self.finished.clear()


async def serve_sideband(ws: ServerConnection, session: LiveSession | None) -> None:
    """A sideband: it receives the session's events; its own commands get errors or are
    acknowledged (``session.update``, ``session.close``)."""
    if session is None:
        await ws.close(4004, "no such live session")
        return
    session.sidebands.append(ws)
    name = f"{session.id}:sideband"
    try:
        async for message in ws:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            session.timeline.frame(name, "client", text, time.time())
            try:
                event = json.loads(text)
            except ValueError:
                continue
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "session.update":
                await session.send("session.updated", session=session.resource)
            elif kind == "session.close":
                await session.close("close_requested", {})
    except ConnectionClosed:
        pass
    finally:
        with contextlib.suppress(ValueError):
            session.sidebands.remove(ws)
