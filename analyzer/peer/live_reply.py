"""One GPT-Live reply as the peer speaks it: the input transcript, an optional delegation to the
Responses backend (the weather question: a function call the client answers), then a run of
output audio with its transcript on the session timeline, until it ends or the user cuts in."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from analyzer.peer.audio import from_pcm16_24k
from analyzer.peer.conversation import FALLBACK_REPLY, REPLY_TO, WEATHER_ARGUMENTS, text_tokens
from analyzer.peer.dialect import new_id
from analyzer.peer.responses import PCM_BYTES_PER_MS, argument_deltas, word_deltas
from analyzer.peer.tasks import Haltable
from analyzer.peer.voices import closest_user_utterance, utterance

if TYPE_CHECKING:
    from analyzer.peer.live import LiveSession

BACKEND_MODEL = "gpt-5-mini"
TOOL_WAIT_S = 10.0
BURST_CHUNKS = 5  # sent at once before pacing starts, as real servers front-load a reply


def _spans(start_ms: int, end_ms: int, count: int) -> list[tuple[int, int]]:
    """``count`` consecutive [start, end) spans sharing [start_ms, end_ms) evenly."""
    if count == 0:
        return []
    width = max(0, end_ms - start_ms)
    edges = [start_ms + width * i // count for i in range(count + 1)]
    return list(itertools.pairwise(edges))


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


class LiveReply(Haltable):
    """Answers one stretch of user speech; ``halt(reason)`` stops it early."""

    def __init__(self, session: LiveSession, start_ms: int, end_ms: int, speech_ms: int) -> None:
        super().__init__()
        self.session = session
        heard = closest_user_utterance(speech_ms)
        self.user = heard.name if heard else None
        self.user_text = heard.text if heard else ""
        self.heard_s = time.time()
        self.start_ms = 0  # where the reply's audio starts on the session timeline
        self.audio_ms = 0
        self.played_ms = 0  # where its audio sent so far has played out on the timeline
        self.sequence = 0  # the delegated stream's sequence numbers
        received_s, reflected_s = session.arrival_of(end_ms)
        self.facts: dict[str, Any] = {
            "record": "turn",
            "session": session.id,
            "utterance": self.user,
            "reply": None,
            "speech_start_ms": start_ms,
            "speech_end_ms": end_ms,
            "speech_end_at_s": received_s,  # the append holding the end of speech arrived
            "speech_end_reflected_at_s": reflected_s,  # ... and went out on the sideband
            "first_audio_at_s": None,
            "first_audio_reflected_at_s": None,
            "last_audio_at_s": None,
            "reply_start_ms": None,
            "audio_ms_sent": 0,
            "delegation_id": None,
            "status": None,
            "reason": None,
        }

    def record(self, user_onset_ms: int | None) -> None:
        """Write the turn record: interrupted when the user started speaking before its audio
        had played out on the timeline (a reply halted after its audio ran dry is not)."""
        cut = user_onset_ms is not None and user_onset_ms < self.played_ms
        self.facts.update(
            status="interrupted" if cut else "completed",
            reason="turn_detected" if cut else None,
            audio_ms_sent=self.audio_ms,
        )
        self.session.timeline.add(self.facts)

    # -- the reply -----------------------------------------------------------------------

    async def run(self) -> None:
        session = self.session
        config = session.config
        try:
            if await self._pause(config.transcription_delay_ms / 1000):
                return
            await self._input_transcript()
            asset = REPLY_TO.get(self.user or "", FALLBACK_REPLY)
            due_s = (
                self.heard_s + (config.first_response_delay_ms + config.first_audio_delay_ms) / 1000
            )
            if self.user == "user_weather" and self._weather_tool() is not None:
                if not await self._delegate():
                    return
                due_s = time.time() + config.first_audio_delay_ms / 1000
            if await self._pause(due_s - time.time()):
                return
            self.facts["reply"] = asset
            await self._speak(asset)
            session.finished.append(self)
            await session.send(
                "session.usage.updated", usage={"seconds": float(session.clock_ms // 1000)}
            )
        finally:
            if session.reply is self:
                session.reply = None

    async def _input_transcript(self) -> None:
        words = word_deltas(self.user_text)
        spans = _spans(self.facts["speech_start_ms"], self.facts["speech_end_ms"], len(words))
        for word, (start, end) in zip(words, spans, strict=True):
            await self.session.send(
                "session.input_transcript.delta", delta=word, start_ms=start, end_ms=end
            )

    async def _speak(self, asset: str) -> None:
        session = self.session
        config = session.config
        reply = utterance(asset)
        chunk_bytes = config.audio_chunk_ms * PCM_BYTES_PER_MS
        chunks = [reply.pcm16[i : i + chunk_bytes] for i in range(0, len(reply.pcm16), chunk_bytes)]
        words = word_deltas(reply.text)
        self.start_ms = self.played_ms = session.clock_ms
        self.facts["reply_start_ms"] = self.start_ms
        word_spans = _spans(self.start_ms, self.start_ms + reply.duration_ms, len(words))
        word_chunk = [j * len(chunks) // len(words) for j in range(len(words))]
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_word = 0
        for index, chunk in enumerate(chunks):
            paced = max(0, index - BURST_CHUNKS)
            due = start + paced * config.audio_chunk_ms / 1000 / config.audio_pace
            if await self._pause(due - loop.time()):
                break
            while next_word < len(words) and word_chunk[next_word] <= index:
                start_ms, end_ms = word_spans[next_word]
                await session.send(
                    "session.output_transcript.delta",
                    delta=words[next_word],
                    start_ms=start_ms,
                    end_ms=end_ms,
                )
                next_word += 1
            chunk_ms = len(chunk) // PCM_BYTES_PER_MS
            encoded = from_pcm16_24k(chunk, session.format)
            primary = {
                "type": "session.output_audio.delta",
                "delta": base64.b64encode(encoded).decode(),
            }
            # Where it plays on the timeline: after the audio before it, not before it was sent
            # (a stream that falls behind leaves gaps, as the real sideband shows).
            play_ms = max(self.played_ms, session.clock_ms)
            self.played_ms = play_ms + chunk_ms
            reflected = {
                "type": "session.output_audio.delta",
                "delta": base64.b64encode(chunk).decode(),
                "start_ms": play_ms,
                "end_ms": play_ms + chunk_ms,
            }
            sent_s = await session._send_to(
                session.ws, "primary", json.dumps(primary, separators=(",", ":"))
            )
            reflected_s = await session.reflect(json.dumps(reflected, separators=(",", ":")))
            self.facts["first_audio_at_s"] = self.facts["first_audio_at_s"] or sent_s
            if reflected_s is not None:
                self.facts["first_audio_reflected_at_s"] = (
                    self.facts["first_audio_reflected_at_s"] or reflected_s
                )
            self.facts["last_audio_at_s"] = sent_s
            self.audio_ms += chunk_ms

    # -- delegation to the Responses backend ---------------------------------------------

    def _weather_tool(self) -> str | None:
        delegation = (self.session.resource or {}).get("delegation")
        if not isinstance(delegation, dict) or delegation.get("type") != "responses":
            return None
        responses = delegation.get("responses") or {}
        for tool in responses.get("tools") or []:
            if isinstance(tool, dict) and "weather" in str(tool.get("name", "")):
                return str(tool["name"])
        return None

    def _snapshot(
        self, response_id: str, status: str, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A lifecycle snapshot as GPT-Live relays it: no input, instructions, tools or output."""
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": BACKEND_MODEL,
            "status": status,
            "output": [],
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
            "instructions": None,
            "usage": usage,
        }

    async def _relay(self, delegation_id: str, event_type: str, **fields: Any) -> None:
        self.sequence += 1
        nested = {"type": event_type, "sequence_number": self.sequence, **fields}
        await self.session.send("response.event", event=nested, delegation_id=delegation_id)

    async def _delegate(self) -> bool:
        """The weather question, delegated: a function call the client runs, then the backend's
        answer. False when halted or the client never answered."""
        session = self.session
        config = session.config
        tool = self._weather_tool()
        assert tool is not None
        delegation_id, first_id = new_id("dlg"), new_id("resp")
        self.facts["delegation_id"] = delegation_id
        await session.send(
            "session.delegation.created",
            delegation={
                "id": delegation_id,
                "target": "responses",
                "type": "delegation",
                "response_id": first_id,
            },
            offset_ms=self.facts["speech_end_ms"],
        )
        if await self._pause(config.first_response_delay_ms / 1000):
            return False
        await self._relay(
            delegation_id,
            "response.created",
            response=self._snapshot(first_id, "in_progress", None),
        )
        item_id, call_id = new_id("fc"), new_id("call")
        call = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "name": tool,
            "call_id": call_id,
            "arguments": "",
        }
        await self._relay(delegation_id, "response.output_item.added", output_index=0, item=call)
        for delta in argument_deltas(WEATHER_ARGUMENTS):
            await self._relay(
                delegation_id,
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=0,
                delta=delta,
            )
        await self._relay(
            delegation_id,
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            arguments=WEATHER_ARGUMENTS,
        )
        done_call = {**call, "status": "completed", "arguments": WEATHER_ARGUMENTS}
        await self._relay(
            delegation_id, "response.output_item.done", output_index=0, item=done_call
        )
        first_usage = _usage(text_tokens(self.user_text) + 60, text_tokens(WEATHER_ARGUMENTS))
        await self._relay(
            delegation_id,
            "response.completed",
            response=self._snapshot(first_id, "completed", first_usage),
        )
        try:
            output = await asyncio.wait_for(session.tool_output.get(), TOOL_WAIT_S)
            await asyncio.wait_for(session.response_requested.wait(), TOOL_WAIT_S)
        except TimeoutError:
            return False
        session.response_requested.clear()
        second_id = new_id("resp")
        await self._relay(
            delegation_id,
            "response.created",
            response=self._snapshot(second_id, "in_progress", None),
        )
        answer = utterance("reply_weather").text
        message_id = new_id("msg")
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await self._relay(delegation_id, "response.output_item.added", output_index=0, item=message)
        where = {"item_id": message_id, "output_index": 0, "content_index": 0}
        for word in word_deltas(answer):
            await self._relay(
                delegation_id, "response.output_text.delta", **where, delta=word, logprobs=[]
            )
        await self._relay(
            delegation_id, "response.output_text.done", **where, text=answer, logprobs=[]
        )
        part = {"type": "output_text", "text": answer, "annotations": []}
        await self._relay(
            delegation_id,
            "response.output_item.done",
            output_index=0,
            item={**message, "status": "completed", "content": [part]},
        )
        second_usage = _usage(
            first_usage["total_tokens"] + text_tokens(str(output.get("output", ""))),
            text_tokens(answer),
        )
        await self._relay(
            delegation_id,
            "response.completed",
            response=self._snapshot(second_id, "completed", second_usage),
        )
        return not self._stopped.is_set()
