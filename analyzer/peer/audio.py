"""Converting between the session's audio formats and the peer's 24 kHz PCM16."""

from __future__ import annotations

from analyzer.codecs import alaw_decode, alaw_encode, resample_pcm16, ulaw_decode, ulaw_encode
from analyzer.peer.dialect import ALAW, BYTES_PER_SAMPLE_BY_FORMAT, SAMPLE_RATE_BY_FORMAT, ULAW

PCM_RATE_HZ = 24000
G711_RATE_HZ = 8000


def to_pcm16_24k(audio: bytes, audio_format: str) -> bytes:
    """Client audio in ``audio_format`` (beta names) -> 24 kHz PCM16 for the VAD."""
    if audio_format == ULAW:
        return resample_pcm16(ulaw_decode(audio), G711_RATE_HZ, PCM_RATE_HZ)
    if audio_format == ALAW:
        return resample_pcm16(alaw_decode(audio), G711_RATE_HZ, PCM_RATE_HZ)
    return audio


def from_pcm16_24k(pcm16: bytes, audio_format: str) -> bytes:
    """24 kHz PCM16 -> ``audio_format`` for an output delta."""
    if audio_format == ULAW:
        return ulaw_encode(resample_pcm16(pcm16, PCM_RATE_HZ, G711_RATE_HZ))
    if audio_format == ALAW:
        return alaw_encode(resample_pcm16(pcm16, PCM_RATE_HZ, G711_RATE_HZ))
    return pcm16


def audio_ms(data: bytes, audio_format: str) -> int:
    """Duration of ``data`` in ``audio_format``, in whole milliseconds."""
    per_ms = SAMPLE_RATE_BY_FORMAT[audio_format] * BYTES_PER_SAMPLE_BY_FORMAT[audio_format] // 1000
    return len(data) // per_ms
