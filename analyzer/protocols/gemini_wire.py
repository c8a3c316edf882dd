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
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from analyzer.protocols.audio_paths import AudioPaths, declare, find_fields, snake

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

# Where audio sits (google-genai 3.6 ``LiveClientMessage`` / ``LiveServerMessage``: every
# ``bytes`` field of a model with a mime type; scripts/sdk_gemini_audio_paths.py lists them and
# tests/test_gemini_audio.py checks these against its output). Every key may be spelled
# camelCase or snake_case, base64 may be URL-safe (pydantic writes bytes so). ``AUDIO``: audio
# whatever the blob's mime type says; ``BLOBS``: audio unless the blob states another type.
_VOICE = "setup.generationConfig.speechConfig"
_REPLICATED = (
    f"{_VOICE}.voiceConfig.replicatedVoiceConfig",
    f"{_VOICE}.multiSpeakerVoiceConfig.speakerVoiceConfigs[*].voiceConfig.replicatedVoiceConfig",
)
AUDIO = (
    "realtimeInput.audio.data",
    *(f"{voice}.{key}" for voice in _REPLICATED for key in ("consentAudio", "voiceSampleAudio")),
)
_PART_BLOBS = ("inlineData.data", "functionResponse.parts[*].inlineData.data")
BLOBS = (
    *(f"clientContent.turns[*].parts[*].{blob}" for blob in _PART_BLOBS),
    *(
        f"{top}.systemInstruction{content}.{blob}"
        for top in ("contextUpdate", "setup")
        for content in ("", ".parts[*]", "[*]")
        for blob in _PART_BLOBS
    ),
    "realtimeInput.mediaChunks[*].data",
    "realtimeInput.video.data",
    *(f"serverContent.modelTurn.parts[*].{blob}" for blob in _PART_BLOBS),
    "toolResponse.functionResponses[*].parts[*].inlineData.data",
)


def _by_top_field(texts: tuple[str, ...], audio_mime: bool) -> dict[str, AudioPaths]:
    """The paths keyed by their message's top-level field (what an event type names)."""
    grouped: dict[str, list[str]] = {}
    for text in texts:
        grouped.setdefault(text.split(".", 1)[0], []).append(text + "?")
    return declare(grouped, urlsafe=True, snake_case=True, audio_mime=audio_mime)


_AUDIO_PATHS = _by_top_field(AUDIO, audio_mime=False)
_BLOB_PATHS = _by_top_field(BLOBS, audio_mime=True)
AUDIO_PATHS: dict[str, AudioPaths] = {
    top: _AUDIO_PATHS.get(top, ()) + _BLOB_PATHS.get(top, ())
    for top in dict.fromkeys([*_AUDIO_PATHS, *_BLOB_PATHS])
}
# Where the decoder finds the audio it times: the user's stream and the model's turn.
STREAM_PATHS: AudioPaths = (
    *AUDIO_PATHS["realtimeInput"][:1],
    *(p for p in _BLOB_PATHS["realtimeInput"] if "mediaChunks" in p.text),
    *(p for p in _BLOB_PATHS["serverContent"] if "functionResponse" not in p.text),
)


@lru_cache(maxsize=512)
def audio_paths(event_type: str) -> AudioPaths:
    """Every audio path of a message of this event type (the paths of each top-level field it
    names: ``serverContent.modelTurn,usageMetadata`` -> ``serverContent``'s)."""
    paths: AudioPaths = ()
    for name in event_type.split(","):
        paths += AUDIO_PATHS.get(name.split(".", 1)[0], ())
    return paths


_CAMEL_RE = re.compile(r"_([a-z])")


def camel(name: str) -> str:
    """``realtime_input`` -> ``realtimeInput`` (the service accepts both spellings)."""
    return _CAMEL_RE.sub(lambda m: m.group(1).upper(), name) if "_" in name else name


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


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


def audio_fields(message: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """(blob, data key) of every audio blob the decoder times (the user's stream, the model's
    turn): blobs whose mime type says audio, in :data:`STREAM_PATHS` order."""
    found: list[tuple[Mapping[str, Any], str]] = []
    if not isinstance(message, dict):
        return found
    for blob in find_fields(message, STREAM_PATHS):
        mime = field(blob.holder, "mimeType")
        if isinstance(mime, str) and mime.lower().startswith("audio/"):
            found.append((blob.holder, blob.key))
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
