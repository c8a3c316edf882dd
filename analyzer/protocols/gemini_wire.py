"""Google Gemini Live (BidiGenerateContent) on the wire: what the recorder must know, as data.

Declared here so the recorder's generic code (filter, redaction, audio cutting, event naming)
never names a Gemini field; :mod:`analyzer.protocols.gemini` turns the messages into events.

Source of truth: the ``google-genai`` SDK (``types.py`` ``LiveClientMessage`` /
``LiveServerMessage``, ``live.py``). A message is a JSON object without ``type``; its top-level
fields say what it is. The official client mixes spellings (``setup`` camelCase, but
``realtime_input.audio.mime_type`` snake_case) and encodes audio in URL-safe base64; the
service sends camelCase JSON in *binary* WebSocket frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

DIALECT = "gemini"

# Paths of the endpoints (mldev v1, v1alpha, v1beta; ephemeral-token "Constrained"; Vertex AI).
ENDPOINT_RE = re.compile(
    r"/ws/google[.](?:ai[.]generativelanguage[.]v1(?:alpha|beta)?[.]GenerativeService"
    r"[.]BidiGenerateContent(?:Constrained)?"
    r"|cloud[.]aiplatform[.][^/]+[.]LlmBidiService/BidiGenerateContent)$"
)
# The same, as a URL regex for the recorder's default mitmproxy filter (no backslashes: filter
# strings unescape them).
URL_PATTERN = (
    r"/ws/google[.](ai[.]generativelanguage[.]v1(alpha|beta)?[.]GenerativeService"
    r"[.]BidiGenerateContent(Constrained)?|cloud[.]aiplatform[.][^/]+[.]LlmBidiService"
    r"/BidiGenerateContent)($|[?])"
)

# Secrets (recording/redact.py already strips these names; listed so the lead can check it):
# ``?key=`` (API key) and ``?access_token=`` (OAuth), ``x-goog-api-key`` and
# ``Authorization: Token auth_tokens/...`` (ephemeral) / ``Bearer`` (Vertex) headers.
SECRET_QUERY_PARAMS = ("key", "access_token")
SECRET_HEADERS = ("x-goog-api-key", "authorization")

# Top-level message fields, camelCase, in the order event types name them.
CLIENT_FIELDS = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")
SERVER_FIELDS = (
    "setupComplete",
    "serverContent",
    "toolCall",
    "toolCallCancellation",
    "usageMetadata",
    "goAway",
    "sessionResumptionUpdate",
    "voiceActivityDetectionSignal",
    "voiceActivity",
)
MESSAGE_FIELDS = CLIENT_FIELDS + SERVER_FIELDS
# Sub-fields an event type names (the parts of the message that carry the news).
NAMED_SUBFIELDS: dict[str, tuple[str, ...]] = {
    "realtimeInput": (
        "audio",
        "mediaChunks",
        "video",
        "text",
        "activityStart",
        "activityEnd",
        "audioStreamEnd",
    ),
    "serverContent": (
        "inputTranscription",
        "modelTurn",
        "outputTranscription",
        "interrupted",
        "generationComplete",
        "turnComplete",
        "waitingForInput",
    ),
}

# Where audio sits: paths of base64 ``data`` fields ("*": every element of a list). A blob
# counts as audio when its mime type (``mimeType`` or ``mime_type``) starts with "audio/".
AUDIO_PATHS: tuple[tuple[str, ...], ...] = (
    ("realtimeInput", "audio", "data"),
    ("realtimeInput", "mediaChunks", "*", "data"),
    ("serverContent", "modelTurn", "parts", "*", "inlineData", "data"),
)

_CAMEL_RE = re.compile(r"_([a-z])")
_SNAKE_RE = re.compile(r"([A-Z])")


def camel(name: str) -> str:
    """``realtime_input`` -> ``realtimeInput`` (the service accepts both spellings)."""
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name) if "_" in name else name


def _snake(name: str) -> str:
    return _SNAKE_RE.sub(lambda m: "_" + m.group(1).lower(), name)


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name))


def is_endpoint(path: Any) -> bool:
    return isinstance(path, str) and ENDPOINT_RE.search(path.split("?", 1)[0]) is not None


def event_type(message: Mapping[str, Any]) -> str | None:
    """What a Gemini message is, or None when it is not one (it has a ``type``, or no known
    top-level field). The name is the top-level fields present, comma-separated, each followed
    by the sub-fields :data:`NAMED_SUBFIELDS` lists that it holds, joined by "+":
    ``realtimeInput.audio``, ``serverContent.modelTurn+turnComplete,usageMetadata``.
    Unknown top-level fields are named as they are spelled (``serverContent,newThing``)."""
    if "type" in message or not message:
        return None
    parts: list[str] = []
    known = False
    for key in message:
        if not isinstance(key, str):
            continue
        name = camel(key)
        known = known or name in MESSAGE_FIELDS
        value = message[key]
        subs = NAMED_SUBFIELDS.get(name)
        if subs and isinstance(value, dict):
            present = {camel(k) for k in value if isinstance(k, str)}
            held = [s for s in subs if s in present]
            if held:
                name += "." + "+".join(held)
        parts.append(name)
    if not known:
        return None
    order = {name: i for i, name in enumerate(MESSAGE_FIELDS)}
    parts.sort(key=lambda p: order.get(p.split(".", 1)[0], len(order)))
    return ",".join(parts)


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[Mapping[str, Any], str]]:
    """(the blob holding it, the data field's key) of every node at ``path``."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list):
            for element in node:
                yield from _walk(element, rest)
        return
    if not isinstance(node, Mapping):
        return
    if not rest:
        if head in node:
            yield node, head
        return
    snake = _snake(head)
    for key in (head, snake) if snake != head else (head,):
        if key in node:
            yield from _walk(node[key], rest)


def audio_fields(message: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """(blob, data key) of every audio blob of a message, in :data:`AUDIO_PATHS` order."""
    found: list[tuple[Mapping[str, Any], str]] = []
    for path in AUDIO_PATHS:
        for blob, key in _walk(message, path):
            mime = field(blob, "mimeType")
            if isinstance(mime, str) and mime.lower().startswith("audio/"):
                found.append((blob, key))
    return found


def audio_rate(mime: Any, default: int) -> int:
    """The sample rate a blob's mime type states (``audio/pcm;rate=16000``), else ``default``."""
    if isinstance(mime, str):
        match = re.search(r"rate=(\d{3,6})\b", mime)
        if match and int(match.group(1)) >= 1000:  # a rate of 0 (or 100 Hz) is no rate
            return int(match.group(1))
    return default


def model_of(message: Mapping[str, Any]) -> str | None:
    """The model a ``setup`` message asks for."""
    setup = message.get("setup")
    model = setup.get("model") if isinstance(setup, dict) else None
    return model if isinstance(model, str) else None
