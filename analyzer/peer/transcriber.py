"""The input transcription of one committed user turn, as the peer streams it: a few
``...input_audio_transcription.delta`` events, then ``.completed`` with its usage (and the log
probabilities when the session asked for them), each send recorded in the timeline."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from analyzer.peer.conversation import ItemFacts, transcription_usage
from analyzer.peer.dialect import GA

if TYPE_CHECKING:
    from analyzer.peer.server import PeerConnection, UserTurn

DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
WORDS_PER_DELTA = 2
# Transcribers that send the whole transcript in one delta (the API's note on whisper-1).
WHOLE_TRANSCRIPT_MODELS = frozenset({"whisper-1"})


def transcript_deltas(text: str, model: str) -> list[str]:
    """The deltas a transcriber streams: groups of a few words (with their leading space), or
    the whole transcript at once."""
    if not text:
        return []
    if model in WHOLE_TRANSCRIPT_MODELS:
        return [text]
    words = text.split(" ")
    pieces = [words[0]] + [" " + word for word in words[1:]]
    return [
        "".join(pieces[i : i + WORDS_PER_DELTA]) for i in range(0, len(pieces), WORDS_PER_DELTA)
    ]


def logprobs_of(delta: str) -> list[dict[str, Any]]:
    """Deterministic token log probabilities of a delta: one token per word."""
    out: list[dict[str, Any]] = []
    for word in delta.split(" "):
        if word:
            token = word if delta.startswith(word) and not out else " " + word
            out.append(
                {
                    "token": token,
                    "logprob": -round(0.01 * (1 + len(word) % 7), 4),
                    "bytes": list(token.encode()),
                }
            )
    return out


class Transcription:
    """Streams the transcript of one user item and records when each part went out."""

    def __init__(self, conn: PeerConnection, turn: UserTurn, facts: ItemFacts, text: str) -> None:
        self.conn = conn
        self.facts = facts
        self.text = text
        config = conn.session.transcription or {}
        self.model = str(config.get("model") or "whisper-1")
        self.record: dict[str, Any] = {
            "record": "transcription",
            "session": conn.session_id,
            "item_id": facts.id,
            "model": self.model,
            "trigger": "speech_stopped" if turn.speech_stopped_at_s is not None else "commit",
            "speech_stopped_at_s": turn.speech_stopped_at_s,
            "commit_requested_at_s": turn.commit_requested_at_s,
            "committed_at_s": turn.committed_at_s,
            "utterance": turn.utterance,
            "first_delta_at_s": None,
            "delta_at_s": [],
            "completed_at_s": None,
            "transcript": text,
            "usage": None,
            "logprobs": None,
        }

    async def run(self) -> None:
        config = self.conn.config
        session = self.conn.session
        start = time.monotonic()
        deltas = transcript_deltas(self.text, self.model)
        last_s = config.transcription_delay_ms / 1000
        first_s = min(config.transcription_first_delta_ms / 1000, last_s)
        # Deltas spread from the first one to just before the completed event.
        step = (last_s - first_s) / len(deltas) if deltas else 0.0
        logprobs: list[dict[str, Any]] = []
        for index, delta in enumerate(deltas):
            await asyncio.sleep(max(0.0, start + first_s + index * step - time.monotonic()))
            fields: dict[str, Any] = {"item_id": self.facts.id, "content_index": 0, "delta": delta}
            if session.logprobs:
                fields["logprobs"] = logprobs_of(delta)
                logprobs += fields["logprobs"]
            sent_s = await self.conn.send(DELTA, **fields)
            self.record["first_delta_at_s"] = self.record["first_delta_at_s"] or sent_s
            self.record["delta_at_s"].append(sent_s)
        await asyncio.sleep(max(0.0, start + last_s - time.monotonic()))
        self.facts.text = self.text
        self.facts.wire["content"][0]["transcript"] = self.text
        fields = {"item_id": self.facts.id, "content_index": 0, "transcript": self.text}
        # Beta voice sessions predate transcription usage; GA and transcription sessions have it.
        if self.conn.dialect == GA or session.transcribes_only:
            usage = transcription_usage(self.model, self.facts.audio_ms, self.text)
            fields["usage"] = usage
            self.record["usage"] = usage
        if session.logprobs:
            fields["logprobs"] = logprobs
            self.record["logprobs"] = logprobs
        self.record["completed_at_s"] = await self.conn.send(COMPLETED, **fields)
        self.conn.timeline.add(self.record)
