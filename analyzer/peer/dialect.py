"""What differs between the beta and GA dialects: event names, session shape, audio formats."""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

BETA = "beta"
GA = "ga"

# Logical name -> wire type, per dialect.
EVENT_TYPES: dict[str, dict[str, str]] = {
    BETA: {
        "audio_delta": "response.audio.delta",
        "audio_done": "response.audio.done",
        "transcript_delta": "response.audio_transcript.delta",
        "transcript_done": "response.audio_transcript.done",
        "text_delta": "response.text.delta",
        "text_done": "response.text.done",
    },
    GA: {
        "audio_delta": "response.output_audio.delta",
        "audio_done": "response.output_audio.done",
        "transcript_delta": "response.output_audio_transcript.delta",
        "transcript_done": "response.output_audio_transcript.done",
        "text_delta": "response.output_text.delta",
        "text_done": "response.output_text.done",
    },
}
CONTENT_PART_TYPES = {
    BETA: {"audio": "audio", "text": "text"},
    GA: {"audio": "output_audio", "text": "output_text"},
}

# Audio formats by their beta names (our internal names) and their GA objects.
PCM16, ULAW, ALAW = "pcm16", "g711_ulaw", "g711_alaw"
GA_FORMATS: dict[str, dict[str, Any]] = {
    PCM16: {"type": "audio/pcm", "rate": 24000},
    ULAW: {"type": "audio/pcmu"},
    ALAW: {"type": "audio/pcma"},
}
_GA_FORMAT_BY_TYPE = {value["type"]: name for name, value in GA_FORMATS.items()}
SAMPLE_RATE_BY_FORMAT = {PCM16: 24000, ULAW: 8000, ALAW: 8000}
BYTES_PER_SAMPLE_BY_FORMAT = {PCM16: 2, ULAW: 1, ALAW: 1}

DEFAULT_MODEL = {BETA: "gpt-4o-realtime-preview-2024-12-17", GA: "gpt-realtime"}
# Session kinds: GA ``session.type`` (beta: ``session.*`` vs ``transcription_session.*``).
REALTIME, TRANSCRIPTION = "realtime", "transcription"
# The peer's transcriber when a transcription session names none (an assumption: the API
# documents no default).
DEFAULT_TRANSCRIBER = "gpt-4o-transcribe"
LOGPROBS_INCLUDE = "item.input_audio_transcription.logprobs"
DEFAULT_INSTRUCTIONS = "You are a helpful, witty, and friendly AI. Talk quickly."
VAD_TYPES = ("server_vad", "semantic_vad")

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """``event_``/``item_``/``resp_``/``sess_``/``call_`` + 21 random characters, like OpenAI's."""
    return prefix + "_" + "".join(secrets.choice(_ALPHABET) for _ in range(21))


class SessionUpdateError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def normalize_turn_detection(value: Any, param: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type", "server_vad") not in VAD_TYPES:
        raise SessionUpdateError(
            f"Invalid value for '{param}': expected null or an object with type "
            f"{' or '.join(VAD_TYPES)}.",
            param,
        )
    kind = value.get("type", "server_vad")
    result: dict[str, Any] = {"type": kind}
    if kind == "server_vad":
        result["threshold"] = float(value.get("threshold", 0.5))
        result["prefix_padding_ms"] = int(value.get("prefix_padding_ms", 300))
        result["silence_duration_ms"] = int(value.get("silence_duration_ms", 200))
    else:
        result["eagerness"] = value.get("eagerness", "auto")
    result["create_response"] = bool(value.get("create_response", True))
    result["interrupt_response"] = bool(value.get("interrupt_response", True))
    return result


def _beta_format(value: Any, param: str) -> str:
    if value not in SAMPLE_RATE_BY_FORMAT:
        raise SessionUpdateError(
            f"Invalid value for '{param}': {value!r}. Supported values are: "
            "'pcm16', 'g711_ulaw', and 'g711_alaw'.",
            param,
        )
    return str(value)


def _ga_format(value: Any, param: str) -> str:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in _GA_FORMAT_BY_TYPE:
        raise SessionUpdateError(
            f"Invalid value for '{param}.type': {kind!r}. Supported values are: "
            "'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
            param,
        )
    if kind == "audio/pcm" and value.get("rate", 24000) != 24000:
        raise SessionUpdateError(
            f"Invalid value for '{param}.rate': only 24000 is supported.", param
        )
    return _GA_FORMAT_BY_TYPE[kind]


@dataclass
class SessionConfig:
    """The session as the server keeps it, dialect-neutral; rendered per dialect on the wire."""

    dialect: str
    model: str
    kind: str = REALTIME
    id: str = field(default_factory=lambda: new_id("sess"))
    expires_at: int = field(default_factory=lambda: int(time.time()) + 30 * 60)
    modalities: list[str] = field(default_factory=lambda: ["audio", "text"])
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = "alloy"
    input_format: str = PCM16
    output_format: str = PCM16
    turn_detection: dict[str, Any] | None = field(
        default_factory=lambda: normalize_turn_detection({"type": "server_vad"}, "turn_detection")
    )
    transcription: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    temperature: float = 0.8
    max_output_tokens: Any = "inf"
    include: list[str] | None = None

    def __post_init__(self) -> None:
        if self.dialect == GA:
            self.modalities = ["audio"]
        if self.kind == TRANSCRIPTION and self.transcription is None:
            self.transcription = {"model": DEFAULT_TRANSCRIBER, "language": None, "prompt": ""}
            self.modalities = ["text"]

    @property
    def transcribes_only(self) -> bool:
        return self.kind == TRANSCRIPTION

    @property
    def logprobs(self) -> bool:
        return LOGPROBS_INCLUDE in (self.include or [])

    @property
    def speaks(self) -> bool:
        return "audio" in self.modalities

    def render(self) -> dict[str, Any]:
        if self.kind == TRANSCRIPTION:
            return (
                self._render_beta_transcription()
                if self.dialect == BETA
                else self._render_ga_transcription()
            )
        return self._render_beta() if self.dialect == BETA else self._render_ga()

    def _render_beta_transcription(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "realtime.transcription_session",
            "expires_at": self.expires_at,
            "modalities": list(self.modalities),
            "input_audio_format": self.input_format,
            "input_audio_transcription": self.transcription,
            "turn_detection": self.turn_detection,
            "input_audio_noise_reduction": None,
            "include": self.include,
            # Required by the SDK's type; an ephemeral-looking key the recorder must redact.
            "client_secret": {
                "value": "ek_" + self.id.removeprefix("sess_"),
                "expires_at": self.expires_at,
            },
        }

    def _render_ga_transcription(self) -> dict[str, Any]:
        turn_detection = self.turn_detection
        if turn_detection is not None and turn_detection["type"] == "server_vad":
            turn_detection = {**turn_detection, "idle_timeout_ms": None}
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.id,
            "expires_at": self.expires_at,
            "audio": {
                "input": {
                    "format": GA_FORMATS[self.input_format],
                    "transcription": self.transcription,
                    "noise_reduction": None,
                    "turn_detection": turn_detection,
                }
            },
            "include": self.include,
        }

    def _render_beta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "realtime.session",
            "model": self.model,
            "expires_at": self.expires_at,
            "modalities": list(self.modalities),
            "instructions": self.instructions,
            "voice": self.voice,
            "turn_detection": self.turn_detection,
            "input_audio_format": self.input_format,
            "output_audio_format": self.output_format,
            "input_audio_transcription": self.transcription,
            "tool_choice": self.tool_choice,
            "temperature": self.temperature,
            "max_response_output_tokens": self.max_output_tokens,
            "tools": self.tools,
        }

    def _render_ga(self) -> dict[str, Any]:
        turn_detection = self.turn_detection
        if turn_detection is not None and turn_detection["type"] == "server_vad":
            turn_detection = {**turn_detection, "idle_timeout_ms": None}
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": list(self.modalities),
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": None,
            "prompt": None,
            "expires_at": self.expires_at,
            "audio": {
                "input": {
                    "format": GA_FORMATS[self.input_format],
                    "transcription": self.transcription,
                    "noise_reduction": None,
                    "turn_detection": turn_detection,
                },
                "output": {
                    "format": GA_FORMATS[self.output_format],
                    "voice": self.voice,
                    "speed": 1.0,
                },
            },
            "include": None,
        }

    def update(self, session: Any) -> None:
        """Apply a client ``session.update``'s ``session`` object; all or nothing."""
        if not isinstance(session, dict):
            raise SessionUpdateError("Invalid type for 'session': expected an object.", "session")
        staged = SessionConfig(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        staged.modalities = list(self.modalities)
        if self.dialect == GA:
            staged._update_ga(session)
        elif self.kind == TRANSCRIPTION:
            staged._update_beta_transcription(session)
        else:
            staged._update_beta(session)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(staged, name))

    def _update_common(self, session: dict[str, Any]) -> None:
        if "instructions" in session:
            self.instructions = str(session["instructions"])
        if "tools" in session:
            if not isinstance(session["tools"], list):
                raise SessionUpdateError(
                    "Invalid type for 'session.tools': expected an array.", "session.tools"
                )
            self.tools = session["tools"]
        if "tool_choice" in session:
            self.tool_choice = session["tool_choice"]
        if "temperature" in session:
            self.temperature = float(session["temperature"])

    def _update_beta(self, session: dict[str, Any]) -> None:
        self._update_common(session)
        if "modalities" in session:
            self.modalities = _modalities(session["modalities"], "session.modalities")
        if "voice" in session:
            self.voice = str(session["voice"])
        if "input_audio_format" in session:
            self.input_format = _beta_format(
                session["input_audio_format"], "session.input_audio_format"
            )
        if "output_audio_format" in session:
            self.output_format = _beta_format(
                session["output_audio_format"], "session.output_audio_format"
            )
        if "turn_detection" in session:
            self.turn_detection = normalize_turn_detection(
                session["turn_detection"], "session.turn_detection"
            )
        if "input_audio_transcription" in session:
            self.transcription = session["input_audio_transcription"]
        if "max_response_output_tokens" in session:
            self.max_output_tokens = session["max_response_output_tokens"]

    def _update_include(self, session: dict[str, Any], param: str) -> None:
        if "include" in session:
            include = session["include"]
            if include is not None and (
                not isinstance(include, list) or not set(include) <= {LOGPROBS_INCLUDE}
            ):
                raise SessionUpdateError(
                    f"Invalid value for '{param}': expected null or ['{LOGPROBS_INCLUDE}'].",
                    param,
                )
            self.include = include

    def _update_beta_transcription(self, session: dict[str, Any]) -> None:
        """A beta ``transcription_session.update``."""
        if "input_audio_format" in session:
            self.input_format = _beta_format(
                session["input_audio_format"], "session.input_audio_format"
            )
        if "turn_detection" in session:
            self.turn_detection = normalize_turn_detection(
                session["turn_detection"], "session.turn_detection"
            )
        if "input_audio_transcription" in session:
            self.transcription = session["input_audio_transcription"]
        self._update_include(session, "session.include")

    def _update_ga_transcription(self, session: dict[str, Any]) -> None:
        """A GA ``session.update`` with ``session.type: "transcription"``."""
        audio_in = (session.get("audio") or {}).get("input") or {}
        if "format" in audio_in:
            self.input_format = _ga_format(audio_in["format"], "session.audio.input.format")
        if "turn_detection" in audio_in:
            self.turn_detection = normalize_turn_detection(
                audio_in["turn_detection"], "session.audio.input.turn_detection"
            )
        if "transcription" in audio_in:
            self.transcription = audio_in["transcription"]
        self._update_include(session, "session.include")

    def _update_ga(self, session: dict[str, Any]) -> None:
        kind = session.get("type")
        if kind not in (REALTIME, TRANSCRIPTION):
            raise SessionUpdateError(
                "Missing required parameter: 'session.type'."
                if "type" not in session
                else f"Invalid value: {kind!r}. Supported values are: 'realtime' and "
                "'transcription'.",
                "session.type",
            )
        if kind != self.kind:
            raise SessionUpdateError(
                f"Invalid value: {kind!r}: this is a {self.kind} session (connect with "
                "?intent=transcription for a transcription session).",
                "session.type",
            )
        if kind == TRANSCRIPTION:
            self._update_ga_transcription(session)
            return
        self._update_common(session)
        if "output_modalities" in session:
            self.modalities = _modalities(session["output_modalities"], "session.output_modalities")
            if len(self.modalities) != 1:
                raise SessionUpdateError(
                    "Invalid value for 'session.output_modalities': use ['audio'] or ['text'].",
                    "session.output_modalities",
                )
        if "max_output_tokens" in session:
            self.max_output_tokens = session["max_output_tokens"]
        audio = session.get("audio") or {}
        audio_in = audio.get("input") or {}
        audio_out = audio.get("output") or {}
        if "format" in audio_in:
            self.input_format = _ga_format(audio_in["format"], "session.audio.input.format")
        if "turn_detection" in audio_in:
            self.turn_detection = normalize_turn_detection(
                audio_in["turn_detection"], "session.audio.input.turn_detection"
            )
        if "transcription" in audio_in:
            self.transcription = audio_in["transcription"]
        if "format" in audio_out:
            self.output_format = _ga_format(audio_out["format"], "session.audio.output.format")
        if "voice" in audio_out:
            self.voice = str(audio_out["voice"])


def _modalities(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not value or not set(value) <= {"audio", "text"}:
        raise SessionUpdateError(
            f"Invalid value for '{param}': expected a list of 'audio' and 'text'.", param
        )
    return [str(v) for v in value]
