"""Audio formats: what each session declared, per direction, at each moment of the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PCM16 = "pcm16"
ULAW = "g711_ulaw"
ALAW = "g711_alaw"
WAV = "wav"  # base64 WAV files with a RIFF header (Zhipu GLM-Realtime)
MP3 = "mp3"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    encoding: str  # one of PCM16, ULAW, ALAW, WAV, MP3, or what the session named
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == PCM16 else 1

    @property
    def bytes_per_second(self) -> int | None:
        """None where size does not map to time (compressed or self-describing payloads)."""
        if self.encoding in (PCM16, ULAW, ALAW):
            return self.sample_rate * self.bytes_per_sample
        return None

    def duration_ms(self, audio_bytes: int) -> float | None:
        rate = self.bytes_per_second
        return None if rate is None else audio_bytes * 1000.0 / rate


OPENAI_PCM = AudioFormat(PCM16, 24000)

# Providers whose defaults differ from OpenAI's, recognised by host or path.
_PROVIDER_BY_HOST = {
    "dashscope": "qwen",
    "aliyuncs": "qwen",
    "bigmodel.cn": "zhipu",
    "stepfun": "stepfun",
    "azure": "azure",
}
_PROVIDER_BY_PATH = {"/api-ws/v1/realtime": "qwen", "/api/paas/v4/realtime": "zhipu"}
_DEFAULTS: dict[str, tuple[AudioFormat, AudioFormat]] = {
    "openai": (OPENAI_PCM, OPENAI_PCM),
    "qwen": (AudioFormat(PCM16, 16000), AudioFormat(PCM16, 24000)),
    "zhipu": (AudioFormat(WAV, 16000), AudioFormat(PCM16, 24000)),
}


def provider_of(host: str | None, path: str | None) -> str:
    """A provider name for format defaults: openai, azure, qwen, zhipu, stepfun."""
    if path in _PROVIDER_BY_PATH:
        return _PROVIDER_BY_PATH[path]
    for needle, name in _PROVIDER_BY_HOST.items():
        if host and needle in host:
            return name
    return "openai"


def default_formats(provider: str) -> tuple[AudioFormat, AudioFormat]:
    """(input, output) formats before any session event says otherwise."""
    return _DEFAULTS.get(provider, _DEFAULTS["openai"])


# Sample rates a realtime voice API plausibly uses; anything else is a broken declaration.
_MIN_RATE, _MAX_RATE = 4000, 192000


def _rate(value: Any, default: int) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and _MIN_RATE <= value <= _MAX_RATE
    return int(value) if ok else default


def parse_format(
    value: Any, provider: str = "openai", direction: str = "input"
) -> AudioFormat | None:
    """A beta format name (``"pcm16"``, ``"g711_ulaw"``, Qwen's ``"pcm24"``) or a GA format
    object (``{"type": "audio/pcm", "rate": 24000}``); None when the value says nothing."""
    if isinstance(value, dict):
        kind = value.get("type")
        rate = value.get("rate")
        if kind == "audio/pcm":
            return AudioFormat(PCM16, _rate(rate, 24000))
        if kind == "audio/pcmu":
            return AudioFormat(ULAW, 8000)
        if kind == "audio/pcma":
            return AudioFormat(ALAW, 8000)
        return AudioFormat(kind, _rate(rate, 24000)) if isinstance(kind, str) else None
    if not isinstance(value, str):
        return None
    name = value.lower()
    if name == "pcm16":
        # Qwen-Omni calls its 16 kHz input "pcm16"; OpenAI's pcm16 is 24 kHz.
        return AudioFormat(PCM16, 16000 if provider == "qwen" and direction == "input" else 24000)
    if name == "pcm24":
        return AudioFormat(PCM16, 24000)
    if name in ("g711_ulaw", "pcmu", "audio/pcmu"):
        return AudioFormat(ULAW, 8000)
    if name in ("g711_alaw", "pcma", "audio/pcma"):
        return AudioFormat(ALAW, 8000)
    if name == "wav":
        return AudioFormat(WAV, 16000)
    if name == "mp3":
        return AudioFormat(MP3, 24000)
    return AudioFormat(name, 24000)


def formats_in_session(
    session: dict[str, Any], provider: str = "openai"
) -> tuple[AudioFormat | None, AudioFormat | None]:
    """(input, output) formats a session object declares, beta (flat) or GA (``audio.*``)."""
    audio = session.get("audio")
    if isinstance(audio, dict):
        inp: dict[str, Any] = audio.get("input") or {}
        out: dict[str, Any] = audio.get("output") or {}
        if not isinstance(inp, dict) or not isinstance(out, dict):
            return None, None
        return (
            parse_format(inp.get("format"), provider, "input"),
            parse_format(out.get("format"), provider, "output"),
        )
    return (
        parse_format(session.get("input_audio_format"), provider, "input"),
        parse_format(session.get("output_audio_format"), provider, "output"),
    )
