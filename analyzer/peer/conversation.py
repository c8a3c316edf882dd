"""The peer's "model": what it answers, and deterministic token usage (pure functions)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from analyzer.peer.voices import utterances

# Which asset answers which user utterance.
REPLY_TO: dict[str, str] = {
    "user_story": "reply_story",
    "user_shorter": "reply_short_story",
    "user_weather": "reply_weather",
    "user_thanks": "reply_thanks",
}
FALLBACK_REPLY = "reply_sorry"
WEATHER_ARGUMENTS = '{"location":"Paris","unit":"celsius"}'

# Rough OpenAI-like rates: ~10 tokens per second of user audio, ~20 per second of model audio.
INPUT_AUDIO_MS_PER_TOKEN = 100
OUTPUT_AUDIO_MS_PER_TOKEN = 50
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 64


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


@dataclass
class ItemFacts:
    """What the server knows about a conversation item beyond its wire shape."""

    id: str
    kind: str  # "user_audio", "user_text", "assistant", "function_call", "function_call_output"
    utterance: str | None = None  # asset name of a recognised user utterance
    text: str = ""  # transcript / text / arguments / output
    audio_ms: int = 0  # user audio length, or assistant audio sent (truncation shortens it)
    call_id: str | None = None
    name: str | None = None
    wire: dict[str, Any] = field(default_factory=dict)  # the item as last shown to the client

    def input_tokens(self) -> tuple[int, int]:
        """(text, audio) tokens this item adds to the input of later responses."""
        if self.kind == "user_audio":
            return 0, math.ceil(self.audio_ms / INPUT_AUDIO_MS_PER_TOKEN)
        if self.kind == "assistant":
            return text_tokens(self.text), math.ceil(self.audio_ms / OUTPUT_AUDIO_MS_PER_TOKEN)
        if self.kind == "function_call":
            return text_tokens((self.name or "") + self.text), 0
        return text_tokens(self.text), 0


@dataclass(frozen=True)
class ReplyPlan:
    kind: str  # "message" or "function_call"
    asset: str | None = None  # reply asset for messages
    tool_name: str | None = None
    arguments: str = ""


def recognise_text(text: str) -> str | None:
    """The user asset a typed message means, if any."""
    lowered = text.lower()
    for name, utterance in utterances().items():
        if utterance.role == "user" and utterance.text.lower().rstrip(".?!") in lowered:
            return name
    if "weather" in lowered:
        return "user_weather"
    return None


def weather_tool(tools: list[dict[str, Any]], tool_choice: Any) -> str | None:
    if tool_choice == "none":
        return None
    for tool in tools:
        name = tool.get("name") if isinstance(tool, dict) else None
        if isinstance(name, str) and "weather" in name:
            return name
    return None


def plan_reply(items: list[ItemFacts], tools: list[dict[str, Any]], tool_choice: Any) -> ReplyPlan:
    """Answer the latest user message or function output."""
    for item in reversed(items):
        if item.kind == "function_call_output":
            return ReplyPlan("message", asset="reply_weather")
        if item.kind in ("user_audio", "user_text"):
            if item.utterance == "user_weather":
                tool = weather_tool(tools, tool_choice)
                if tool is not None:
                    return ReplyPlan("function_call", tool_name=tool, arguments=WEATHER_ARGUMENTS)
            return ReplyPlan("message", asset=REPLY_TO.get(item.utterance or "", FALLBACK_REPLY))
    return ReplyPlan("message", asset=FALLBACK_REPLY)


def usage(
    instructions: str,
    tools: list[dict[str, Any]],
    context: list[ItemFacts],
    output_text: str,
    output_audio_ms: int,
    previous_input_tokens: int,
    dialect: str,
) -> dict[str, Any]:
    """``response.done`` usage: the input re-counts the whole conversation every turn."""
    in_text = text_tokens(instructions) + text_tokens(json.dumps(tools) if tools else "")
    in_audio = 0
    for item in context:
        text, audio = item.input_tokens()
        in_text += text
        in_audio += audio
    input_tokens = in_text + in_audio
    cached = 0
    if previous_input_tokens >= CACHE_MIN_TOKENS:
        cached = min(input_tokens, previous_input_tokens // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS)
    out_text = text_tokens(output_text)
    out_audio = math.ceil(output_audio_ms / OUTPUT_AUDIO_MS_PER_TOKEN)
    input_details: dict[str, Any] = {
        "text_tokens": in_text,
        "audio_tokens": in_audio,
        "cached_tokens": cached,
    }
    if dialect == "ga":
        cached_text = min(cached, in_text)
        input_details["image_tokens"] = 0
        input_details["cached_tokens_details"] = {
            "text_tokens": cached_text,
            "audio_tokens": cached - cached_text,
            "image_tokens": 0,
        }
    return {
        "total_tokens": input_tokens + out_text + out_audio,
        "input_tokens": input_tokens,
        "output_tokens": out_text + out_audio,
        "input_token_details": input_details,
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


def transcription_usage(model: str, audio_ms: int, transcript: str) -> dict[str, Any]:
    """GA transcription usage: whisper bills by duration, the gpt-4o transcribers by tokens."""
    if "transcribe" not in model:
        return {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
    audio = math.ceil(audio_ms / INPUT_AUDIO_MS_PER_TOKEN)
    out = text_tokens(transcript)
    return {
        "type": "tokens",
        "total_tokens": audio + out,
        "input_tokens": audio,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
        "output_tokens": out,
    }
