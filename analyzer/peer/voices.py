"""The shipped speech assets (24 kHz mono PCM16 WAVs + manifest), loaded from package data."""

from __future__ import annotations

import functools
import io
import json
import wave
from dataclasses import dataclass
from importlib import resources

SAMPLE_RATE_HZ = 24000


@dataclass(frozen=True)
class Utterance:
    name: str
    role: str  # "user" or "assistant"
    text: str
    pcm16: bytes  # 24 kHz mono 16-bit little-endian

    @property
    def duration_ms(self) -> int:
        return len(self.pcm16) * 1000 // (2 * SAMPLE_RATE_HZ)


def _read_wav(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SAMPLE_RATE_HZ):
            raise ValueError("peer assets must be 24 kHz mono 16-bit WAV")
        return wav.readframes(wav.getnframes())


@functools.cache
def utterances() -> dict[str, Utterance]:
    """Every asset by name (``user_story``, ``reply_weather``, ...)."""
    folder = resources.files("analyzer.peer") / "assets"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {
        name: Utterance(
            name, entry["role"], entry["text"], _read_wav((folder / f"{name}.wav").read_bytes())
        )
        for name, entry in manifest.items()
    }


def utterance(name: str) -> Utterance:
    try:
        return utterances()[name]
    except KeyError:
        raise KeyError(f"no speech asset {name!r}; known: {', '.join(utterances())}") from None


def closest_user_utterance(speech_ms: int, tolerance_ms: int = 120) -> Utterance | None:
    """The user asset whose voiced length is nearest ``speech_ms``; None if none is close.

    The server "understands" the scripted client this way: the assets are trimmed to their voiced
    edges and their lengths differ by more than the tolerance.
    """
    users = [u for u in utterances().values() if u.role == "user"]
    best = min(users, key=lambda u: abs(u.duration_ms - speech_ms))
    return best if abs(best.duration_ms - speech_ms) <= tolerance_ms else None
