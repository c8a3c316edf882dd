"""One realtime frame as readable text: its fields, with audio summarized (bytes, duration,
format) instead of kilobytes of base64. Pure; the mitmproxy contentview shows it."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterable
from typing import Any

import orjson
import pybase64

from analyzer.formats import AudioFormat, default_formats, formats_in_session, parse_format
from analyzer.protocols import streamed_audio_field
from analyzer.protocols.realtime_events import CLIENT_AUDIO_EVENTS, CONFIG_EVENTS

# A string this long that is valid base64 is a payload (audio, image), not a word.
MIN_BLOB_CHARS = 256
_RATE_IN_MIME = re.compile(r"rate=(\d+)")


def _decoded_size(text: str) -> int | None:
    """Bytes the base64 ``text`` decodes to, or None when it is not base64."""
    try:
        return len(pybase64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None


def audio_summary(size: int, audio_format: AudioFormat | None) -> str:
    """``<audio: 4,800 bytes, 100 ms of pcm16 24 kHz>``."""
    if audio_format is None:
        return f"<audio: {size:,} bytes>"
    kind = f"{audio_format.encoding} {audio_format.sample_rate / 1000:g} kHz"
    duration = audio_format.duration_ms(size)
    if duration is None:
        return f"<audio: {size:,} bytes of {kind}>"
    return f"<audio: {size:,} bytes, {duration:,.0f} ms of {kind}>"


def _mime_format(mime: str) -> AudioFormat | None:
    """Gemini's ``audio/pcm;rate=16000`` (PCM16 at that rate)."""
    kind = mime.split(";")[0].strip().lower()
    match = _RATE_IN_MIME.search(mime)
    if kind in ("audio/pcm", "audio/l16"):
        return AudioFormat("pcm16", int(match.group(1)) if match else 16000)
    return parse_format(kind)


def _summarize(value: Any, sibling_mime: str | None = None) -> Any:
    """Every base64 blob in ``value`` replaced by a summary (audio when a mime type says so)."""
    if isinstance(value, dict):
        mime = value.get("mimeType") or value.get("mime_type")
        mime = mime if isinstance(mime, str) else None
        return {key: _summarize(item, mime) for key, item in value.items()}
    if isinstance(value, list):
        return [_summarize(item) for item in value]
    if isinstance(value, str) and len(value) >= MIN_BLOB_CHARS:
        size = _decoded_size(value)
        if size is not None:
            if sibling_mime and sibling_mime.startswith("audio/"):
                return audio_summary(size, _mime_format(sibling_mime))
            return f"<base64: {size:,} bytes{f' of {sibling_mime}' if sibling_mime else ''}>"
    return value


def summarize_event(
    event: dict[str, Any], formats: tuple[AudioFormat | None, AudioFormat | None]
) -> dict[str, Any]:
    """``event`` with its audio (and any other base64 payload) summarized."""
    event_type = event.get("type")
    field = streamed_audio_field(event_type) if isinstance(event_type, str) else None
    audio = event.get(field) if field else None
    summarized: dict[str, Any] = _summarize(event)
    if field and isinstance(audio, str):
        size = _decoded_size(audio)
        if size is not None:
            audio_format = formats[0] if event_type in CLIENT_AUDIO_EVENTS else formats[1]
            summarized[field] = audio_summary(size, audio_format)
    return summarized


def render_frame(
    data: bytes, formats: tuple[AudioFormat | None, AudioFormat | None]
) -> tuple[str, str] | None:
    """(title, text) of one frame: the event type, then the event as indented JSON with audio
    summarized. None when the frame is not a JSON object."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    event_type = event.get("type")
    # Gemini Live names its message by its one top-level key (serverContent, realtimeInput...).
    title = event_type if isinstance(event_type, str) else ", ".join(event) or "{}"
    text = json.dumps(summarize_event(event, formats), indent=2, ensure_ascii=False)
    return title, text


def session_formats(
    messages: Iterable[bytes], provider: str = "openai"
) -> tuple[AudioFormat, AudioFormat]:
    """(input, output) audio formats in force after ``messages`` (a connection's frames up to
    the one shown): the provider's defaults, then the last session configuration, field by
    field."""
    input_format, output_format = default_formats(provider)
    for content in messages:
        if b"session" not in content[:160]:  # skip audio frames without parsing them
            continue
        try:
            event = orjson.loads(content)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(event, dict) or event.get("type") not in CONFIG_EVENTS:
            continue
        session = event.get("session")
        if isinstance(session, dict):
            declared_in, declared_out = formats_in_session(session, provider)
            input_format = declared_in or input_format
            output_format = declared_out or output_format
    return input_format, output_format
