"""Gemini Live message fields as normalized event fields: token usage by modality, the setup's
config, function calls and their outputs, transcription text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from analyzer.kinds import Kind
from analyzer.protocols import Event
from analyzer.protocols.gemini_wire import field

_NAN = float("nan")


def number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _NAN


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _by_modality(details: Any) -> dict[str, float]:
    """``[{modality: AUDIO, tokenCount: 5}, ...]`` -> {"AUDIO": 5.0}."""
    out: dict[str, float] = {}
    for entry in details if isinstance(details, list) else []:
        if isinstance(entry, dict) and isinstance(field(entry, "modality"), str):
            out[field(entry, "modality")] = number(field(entry, "tokenCount"))
    return out


def usage_fields(usage: Mapping[str, Any]) -> Event:
    """Token counts of a ``usageMetadata``. Input: prompt (+ tool-use prompt) tokens; output:
    response (+ thinking) tokens, as billed; by modality from the ``*TokensDetails`` lists."""
    prompt, response = (
        number(field(usage, "promptTokenCount")),
        number(field(usage, "responseTokenCount")),
    )
    tool_prompt = number(field(usage, "toolUsePromptTokenCount"))
    thoughts = number(field(usage, "thoughtsTokenCount"))
    prompt_by = _by_modality(field(usage, "promptTokensDetails"))
    response_by = _by_modality(field(usage, "responseTokensDetails"))
    cache_by = _by_modality(field(usage, "cacheTokensDetails"))
    add = lambda a, b: a if b != b else (b if a != a else a + b)  # noqa: E731 (NaN-aware sum)
    return {
        "input_tokens": add(prompt, tool_prompt),
        "output_tokens": add(response, thoughts),
        "total_tokens": number(field(usage, "totalTokenCount")),
        "input_text_tokens": prompt_by.get("TEXT", _NAN),
        "input_audio_tokens": prompt_by.get("AUDIO", _NAN),
        "input_cached_tokens": number(field(usage, "cachedContentTokenCount")),
        "output_text_tokens": response_by.get("TEXT", _NAN),
        "output_audio_tokens": response_by.get("AUDIO", _NAN),
        "input_cached_text_tokens": cache_by.get("TEXT", _NAN),
        "input_cached_audio_tokens": cache_by.get("AUDIO", _NAN),
    }


def transcription_text(transcription: Any) -> str | None:
    text = field(transcription, "text") if isinstance(transcription, dict) else None
    return text if isinstance(text, str) else None


def setup_config(setup: Mapping[str, Any], input_hz: int, output_hz: int) -> Event:
    """The config a ``setup`` states: fixed PCM16 formats, automatic activity detection (its
    silence) or none when the client detects activity itself."""
    detection = as_dict(
        field(as_dict(field(setup, "realtimeInputConfig")), "automaticActivityDetection")
    )
    manual = field(detection, "disabled") is True
    return {
        "kind": Kind.CONFIG,
        "input_format": f"pcm16/{input_hz}",
        "output_format": f"pcm16/{output_hz}",
        "turn_detection": "none" if manual else "automatic_activity_detection",
        "silence_ms": number(field(detection, "silenceDurationMs")),
    }


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def function_call_fields(call: Mapping[str, Any]) -> Event:
    """A ``toolCall.functionCalls`` entry as an item's fields."""
    return {
        "item_kind": "function_call",
        "name": _str(field(call, "name")),
        "call_id": _str(field(call, "id")),
        "arguments": json.dumps(field(call, "args") or {}, ensure_ascii=False),
    }


def function_outputs(tool: Mapping[str, Any]) -> list[Event]:
    """The items a ``toolResponse`` adds: one function output per response."""
    responses = field(tool, "functionResponses")
    return [
        {
            "kind": Kind.ITEM_CREATE,
            "item_kind": "function_call_output",
            "call_id": _str(field(response, "id")),
            "name": _str(field(response, "name")),
            "output": json.dumps(field(response, "response"), ensure_ascii=False),
        }
        for response in (responses if isinstance(responses, list) else [])
        if isinstance(response, dict)
    ]


def blob_bytes(data: Any, frame_bytes: int | None, blobs: int) -> int:
    """A blob's decoded size: from its base64 when still in the message, else its share of the
    frame's audio size (the recorder cut it out; exact for a one-blob frame)."""
    if isinstance(data, str) and data:
        return len(data) * 3 // 4 - len(data) + len(data.rstrip("="))
    return int(frame_bytes or 0) // max(blobs, 1)
