"""One model response as the peer streams it: events, pacing, cancellation, usage, turn facts."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from analyzer.peer.audio import from_pcm16_24k
from analyzer.peer.conversation import ItemFacts, ReplyPlan, plan_reply, usage
from analyzer.peer.dialect import BETA, CONTENT_PART_TYPES, EVENT_TYPES, GA_FORMATS, new_id
from analyzer.peer.tasks import Haltable
from analyzer.peer.voices import utterance

if TYPE_CHECKING:
    from analyzer.peer.server import PeerConnection, UserTurn

PCM_BYTES_PER_MS = 48  # 24 kHz, 16-bit


def word_deltas(text: str) -> list[str]:
    """Transcript deltas the way the API sends them: a word with its leading space."""
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]] if text else []


def argument_deltas(arguments: str, pieces: int = 4) -> list[str]:
    size = max(1, -(-len(arguments) // pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


class ResponseRun(Haltable):
    """Streams one response; ``halt(reason)`` ends it early as ``cancelled``."""

    def __init__(
        self,
        conn: PeerConnection,
        trigger: str,
        trigger_at_s: float,
        turn: UserTurn | None,
        overrides: dict[str, Any],
    ) -> None:
        super().__init__()
        self.conn = conn
        self.id = new_id("resp")
        session = conn.session
        modalities = overrides.get("output_modalities") or overrides.get("modalities")
        self.modalities: list[str] = list(modalities or session.modalities)
        self.instructions = str(overrides.get("instructions", session.instructions))
        self.output: list[dict[str, Any]] = []
        self.output_text = ""  # transcript, text or arguments actually sent
        self.output_audio_ms = 0
        self.context: list[ItemFacts] = []
        self._previous_item_id: str | None = None
        self.turn: dict[str, Any] = {
            "record": "turn",
            "session": conn.session_id,
            "response_id": self.id,
            "trigger": trigger,
            "trigger_at_s": trigger_at_s,
            "user_item_id": turn.item_id if turn else None,
            "utterance": turn.utterance if turn else None,
            "speech_started_at_s": turn.speech_started_at_s if turn else None,
            "audio_start_ms": turn.audio_start_ms if turn else None,
            "speech_stopped_at_s": turn.speech_stopped_at_s if turn else None,
            "audio_end_ms": turn.audio_end_ms if turn else None,
            "committed_at_s": turn.committed_at_s if turn else None,
            "response_created_at_s": None,
            "first_audio_at_s": None,
            "first_transcript_at_s": None,
            "first_text_at_s": None,
            "response_done_at_s": None,
            "status": None,
            "reason": None,
            "output": None,
            "reply": None,
            "audio_ms_sent": 0,
        }

    # -- control -------------------------------------------------------------------------

    async def send(self, event_type: str, **fields: Any) -> float:
        return await self.conn.send(event_type, **fields)

    # -- the response --------------------------------------------------------------------

    async def run(self) -> None:
        conn = self.conn
        try:
            if await self._pause(conn.config.first_response_delay_ms / 1000):
                self.turn["status"] = "dropped"  # halted before it was ever created
                return
            self.context = list(conn.items)
            self.turn["response_created_at_s"] = await self.send(
                "response.created", response=self.render("in_progress", None, None)
            )
            await self.send("rate_limits.updated", rate_limits=self._rate_limits())
            plan = plan_reply(conn.items, conn.session.tools, conn.session.tool_choice)
            if plan.kind == "function_call":
                await self._function_call(plan)
            else:
                assert plan.asset is not None
                await self._message(plan.asset)
            await self._done()
        finally:
            if conn.response is self:
                conn.response = None
            if self.turn["status"] is not None:
                conn.timeline.add(self.turn)

    async def _done(self) -> None:
        conn = self.conn
        status = "completed" if self.stop_reason is None else "cancelled"
        details = (
            None if status == "completed" else {"type": "cancelled", "reason": self.stop_reason}
        )
        response_usage = usage(
            self.instructions,
            conn.session.tools,
            self.context,
            self.output_text,
            self.output_audio_ms,
            conn.previous_input_tokens,
            conn.dialect,
        )
        conn.previous_input_tokens = response_usage["input_tokens"]
        self.turn.update(status=status, reason=self.stop_reason, audio_ms_sent=self.output_audio_ms)
        # Free the conversation before the client can react to response.done.
        conn.response = None
        self.turn["response_done_at_s"] = await self.send(
            "response.done", response=self.render(status, details, response_usage)
        )

    def render(
        self, status: str, details: dict[str, Any] | None, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        session = self.conn.session
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": self.id,
            "status": status,
            "status_details": details,
            "output": self.output if status != "in_progress" else [],
            "conversation_id": self.conn.conversation_id,
            "usage": usage,
            "metadata": None,
        }
        if self.conn.dialect == BETA:
            response.update(
                modalities=self.modalities,
                voice=session.voice,
                output_audio_format=session.output_format,
                temperature=session.temperature,
                max_output_tokens=session.max_output_tokens,
            )
        else:
            response.update(
                output_modalities=self.modalities,
                max_output_tokens=session.max_output_tokens,
                audio={
                    "output": {"format": GA_FORMATS[session.output_format], "voice": session.voice}
                },
            )
        return response

    def _rate_limits(self) -> list[dict[str, Any]]:
        used = 1000 + 50 * len(self.conn.items)
        return [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 40000, "remaining": 40000 - used, "reset_seconds": 1.5},
        ]

    async def _add_item(self, wire: dict[str, Any], facts: ItemFacts) -> None:
        conn = self.conn
        previous = conn.items[-1].id if conn.items else None
        facts.wire = wire
        conn.items.append(facts)
        await self.send(
            "response.output_item.added", response_id=self.id, output_index=0, item=dict(wire)
        )
        await conn.send_item_created(dict(wire), previous)
        self._previous_item_id = previous

    async def _finish_item(self, wire: dict[str, Any]) -> None:
        self.output.append(wire)
        await self.send("response.output_item.done", response_id=self.id, output_index=0, item=wire)
        if self.conn.dialect != BETA:
            await self.send(
                "conversation.item.done", previous_item_id=self._previous_item_id, item=wire
            )

    # -- a spoken or written message -----------------------------------------------------

    async def _message(self, asset: str) -> None:
        spoken = "audio" in self.modalities
        self.turn["output"] = "audio" if spoken else "text"
        self.turn["reply"] = asset
        item_id = new_id("item")
        facts = ItemFacts(item_id, "assistant")
        wire: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        await self._add_item(wire, facts)
        part_type = CONTENT_PART_TYPES[self.conn.dialect]["audio" if spoken else "text"]
        text_key = "transcript" if spoken else "text"
        where = {"response_id": self.id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send(
            "response.content_part.added", **where, part={"type": part_type, text_key: ""}
        )
        if spoken:
            await self._stream_audio(asset, facts, where)
        else:
            await self._stream_text(asset, facts, where)
        part = {"type": part_type, text_key: self.output_text}
        await self.send("response.content_part.done", **where, part=part)
        status = "completed" if self.stop_reason is None else "incomplete"
        await self._finish_item({**wire, "status": status, "content": [part]})

    async def _stream_audio(self, asset: str, facts: ItemFacts, where: dict[str, Any]) -> None:
        config = self.conn.config
        types = EVENT_TYPES[self.conn.dialect]
        reply = utterance(asset)
        chunk_bytes = config.audio_chunk_ms * PCM_BYTES_PER_MS
        chunks = [reply.pcm16[i : i + chunk_bytes] for i in range(0, len(reply.pcm16), chunk_bytes)]
        words = word_deltas(reply.text)
        # Word j goes out just before the audio chunk it falls in, proportionally.
        word_chunk = [j * len(chunks) // len(words) for j in range(len(words))]
        halted = await self._pause(config.first_audio_delay_ms / 1000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_word = 0
        planted = self.conn.plant_faults()
        for index, chunk in enumerate(chunks):
            if halted:
                break
            sent_ms = index * config.audio_chunk_ms
            if planted and config.stall_ms and sent_ms == config.stall_after_ms:
                start += config.stall_ms / 1000  # a mid-reply stall: the rest comes later
            if planted and sent_ms == config.false_barge_in_after_ms:
                await self.conn.false_barge_in()
                break
            due = start + sent_ms / 1000 / config.audio_pace
            if await self._pause(due - loop.time()):
                break
            while next_word < len(words) and word_chunk[next_word] <= index:
                sent_s = await self.send(types["transcript_delta"], **where, delta=words[next_word])
                self.turn["first_transcript_at_s"] = self.turn["first_transcript_at_s"] or sent_s
                self.output_text += words[next_word]
                next_word += 1
            encoded = from_pcm16_24k(chunk, self.conn.session.output_format)
            sent_s = await self.send(
                types["audio_delta"], **where, delta=base64.b64encode(encoded).decode()
            )
            self.turn["first_audio_at_s"] = self.turn["first_audio_at_s"] or sent_s
            self.output_audio_ms += len(chunk) // PCM_BYTES_PER_MS
            facts.audio_ms = self.output_audio_ms
            facts.text = self.output_text
        await self.send(types["audio_done"], **where)
        await self.send(types["transcript_done"], **where, transcript=self.output_text)

    async def _stream_text(self, asset: str, facts: ItemFacts, where: dict[str, Any]) -> None:
        config = self.conn.config
        types = EVENT_TYPES[self.conn.dialect]
        halted = await self._pause(config.first_audio_delay_ms / 1000)
        for delta in word_deltas(utterance(asset).text):
            if halted or await self._pause(config.text_delta_ms / 1000 / config.audio_pace):
                break
            sent_s = await self.send(types["text_delta"], **where, delta=delta)
            self.turn["first_text_at_s"] = self.turn["first_text_at_s"] or sent_s
            self.output_text += delta
            facts.text = self.output_text
        await self.send(types["text_done"], **where, text=self.output_text)

    # -- a function call -----------------------------------------------------------------

    async def _function_call(self, plan: ReplyPlan) -> None:
        config = self.conn.config
        self.turn["output"] = "function_call"
        self.turn["reply"] = plan.tool_name
        item_id, call_id = new_id("item"), new_id("call")
        facts = ItemFacts(item_id, "function_call", call_id=call_id, name=plan.tool_name)
        wire: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": plan.tool_name,
            "call_id": call_id,
            "arguments": "",
        }
        await self._add_item(wire, facts)
        where = {"response_id": self.id, "item_id": item_id, "output_index": 0, "call_id": call_id}
        halted = await self._pause(config.first_audio_delay_ms / 1000)
        for delta in argument_deltas(plan.arguments):
            if halted or await self._pause(config.text_delta_ms / 1000 / config.audio_pace):
                break
            sent_s = await self.send("response.function_call_arguments.delta", **where, delta=delta)
            self.turn["first_text_at_s"] = self.turn["first_text_at_s"] or sent_s
            self.output_text += delta
            facts.text = self.output_text
        if self.stop_reason is None:
            await self.send(
                "response.function_call_arguments.done",
                **where,
                name=plan.tool_name,
                arguments=self.output_text,
            )
        status = "completed" if self.stop_reason is None else "incomplete"
        await self._finish_item({**wire, "status": status, "arguments": self.output_text})
