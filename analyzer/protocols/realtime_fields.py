"""Realtime event fields as normalized event fields: items, usage, transcription usage and log
probabilities, the session's config (formats, turn detection, transcription, intent)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from analyzer.formats import AudioFormat
from analyzer.kinds import Kind
from analyzer.protocols import Event

_NAN = float("nan")


def non_empty_str(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value != "" else None


def raw_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _NAN


def format_name(fmt: AudioFormat) -> str:
    return f"{fmt.encoding}/{fmt.sample_rate}"


def item_fields(item: Mapping[str, Any]) -> Event:
    """An item's fields as event fields: role, kind and status only when non-empty; the
    transcript and text joined from its content parts."""
    fields: Event = {
        "role": non_empty_str(item.get("role")),
        "item_kind": non_empty_str(item.get("type")),
        "status": non_empty_str(item.get("status")),
        "name": raw_str(item.get("name")),
        "call_id": raw_str(item.get("call_id")),
        "arguments": raw_str(item.get("arguments")),
        "output": raw_str(item.get("output")),
    }
    content = item.get("content")
    if content:
        transcripts: list[str] = []
        texts: list[str] = []
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("transcript"), str):
                transcripts.append(part["transcript"])
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
        fields["transcript"] = "".join(transcripts) or None
        fields["text"] = "".join(texts) or None
    return fields


def usage_fields(usage: Any) -> Event:
    """Token counts of a response's ``usage`` (NaN where not reported)."""
    out: Event = {}
    if not isinstance(usage, dict):
        return out
    out["input_tokens"] = number(usage.get("input_tokens"))
    out["output_tokens"] = number(usage.get("output_tokens"))
    out["total_tokens"] = number(usage.get("total_tokens"))
    inp = usage.get("input_token_details")
    if isinstance(inp, dict):
        out["input_text_tokens"] = number(inp.get("text_tokens"))
        out["input_audio_tokens"] = number(inp.get("audio_tokens"))
        out["input_cached_tokens"] = number(inp.get("cached_tokens"))
        cached = inp.get("cached_tokens_details")
        if isinstance(cached, dict):
            out["input_cached_text_tokens"] = number(cached.get("text_tokens"))
            out["input_cached_audio_tokens"] = number(cached.get("audio_tokens"))
    outp = usage.get("output_token_details")
    if isinstance(outp, dict):
        out["output_text_tokens"] = number(outp.get("text_tokens"))
        out["output_audio_tokens"] = number(outp.get("audio_tokens"))
    return out


def transcription_usage_fields(usage: Any) -> Event:
    """A transcription's ``usage``: token counts (``type: "tokens"``) or the seconds of audio
    billed (``type: "duration"``)."""
    if not isinstance(usage, dict):
        return {}
    if usage.get("type") == "duration" or "seconds" in usage:
        return {"audio_seconds": number(usage.get("seconds"))}
    out: Event = {
        "input_tokens": number(usage.get("input_tokens")),
        "output_tokens": number(usage.get("output_tokens")),
        "total_tokens": number(usage.get("total_tokens")),
    }
    details = usage.get("input_token_details")
    if isinstance(details, dict):
        out["input_text_tokens"] = number(details.get("text_tokens"))
        out["input_audio_tokens"] = number(details.get("audio_tokens"))
    return out


def logprob_fields(logprobs: Any) -> Event:
    """How many token log probabilities an event carries, and their mean."""
    if not isinstance(logprobs, list):
        return {}
    values = [number(p.get("logprob")) for p in logprobs if isinstance(p, dict)]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {"logprob_count": 0}
    return {"logprob_count": len(values), "logprob_mean": round(sum(values) / len(values), 6)}


def transcription_config(session: Mapping[str, Any]) -> Event:
    """The input transcription model a session object names (GA ``audio.input.transcription``,
    beta ``input_audio_transcription``), if it says."""
    audio = session.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("input"), dict):
        config = audio["input"].get("transcription")
    else:
        config = session.get("input_audio_transcription")
    model = config.get("model") if isinstance(config, dict) else None
    return {"transcription_model": non_empty_str(model)}


def session_kind_of(session: Mapping[str, Any], event_type: str) -> str | None:
    """``transcription`` for a transcription session (GA ``type``, beta event names)."""
    if event_type.startswith("transcription_session."):
        return "transcription"
    kind = session.get("type")
    if kind == "transcription":
        return "transcription"
    return "conversation" if kind == "realtime" else None


def intent_of(url: Any) -> str | None:
    """The session kind a connection URL asks for (``?intent=transcription``)."""
    if not isinstance(url, str):
        return None
    query = parse_qs(urlsplit(url).query)
    return "transcription" if "transcription" in query.get("intent", []) else None


def turn_detection(session: Mapping[str, Any]) -> Event:
    """The VAD a session object declares (beta flat or GA ``audio.input``), if it says."""
    audio = session.get("audio")
    holder = (
        audio["input"]
        if isinstance(audio, dict) and isinstance(audio.get("input"), dict)
        else session
    )
    if "turn_detection" not in holder:
        return {}
    detection = holder["turn_detection"]
    if not isinstance(detection, dict):
        return {"turn_detection": "none", "silence_ms": _NAN}
    kind = detection.get("type")
    return {
        "turn_detection": kind if isinstance(kind, str) else "server_vad",
        "silence_ms": number(detection.get("silence_duration_ms")),
    }


def truncation(kind: Kind, item_id: str | None, event: Mapping[str, Any]) -> Event:
    """A reply item cut at the audio the client played (``audio_end_ms``)."""
    played = event.get("audio_end_ms")
    return {
        "kind": kind,
        "item_id": item_id,
        "stream_ms": float(played) if isinstance(played, int | float) else None,
    }
