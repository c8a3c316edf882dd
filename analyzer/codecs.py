"""G.711 µ-law / A-law and resampling for 16-bit little-endian mono PCM, in numpy.

The standard library's ``audioop`` is gone in Python 3.13, so this is our own. Decoding follows
the ITU-T G.711 tables exactly; encoding is the classic Sun reference (``g711.c``) algorithm,
precomputed for all 65,536 sample values so a call is one table lookup.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_ULAW_BIAS = 0x84
_ULAW_CLIP_14 = 8159
_ULAW_SEGMENT_ENDS = np.array(
    [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32
)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    magnitude = (code & 0x0F) << 4
    magnitude = np.where(segment == 0, magnitude + 8, magnitude + 0x108)
    magnitude = np.where(segment > 1, magnitude << np.maximum(segment - 1, 0), magnitude)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, indexed by its uint16 bit pattern."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    # Sun's algorithm works on 14-bit samples: shift first, then take the magnitude.
    sample = _all_int16() >> 2
    mask = np.where(sample < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(sample), _ULAW_CLIP_14) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left").astype(np.int32)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    sample = _all_int16() >> 3
    mask = np.where(sample >= 0, 0xD5, 0x55)
    magnitude = np.where(sample >= 0, sample, -sample - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude, side="left").astype(np.int32)
    shift = np.where(segment < 2, 1, segment)
    value = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


_ULAW_TO_PCM = _ulaw_decode_table()
_ALAW_TO_PCM = _alaw_decode_table()
_PCM_TO_ULAW = _ulaw_encode_table()
_PCM_TO_ALAW = _alaw_encode_table()


def _samples(pcm16le: bytes) -> npt.NDArray[np.int16]:
    if len(pcm16le) % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(pcm16le)}.")
    return np.frombuffer(pcm16le, dtype="<i2")


def ulaw_encode(pcm16le: bytes) -> bytes:
    """16-bit little-endian PCM -> G.711 µ-law, one byte a sample."""
    return _PCM_TO_ULAW[_samples(pcm16le).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 µ-law -> 16-bit little-endian PCM."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_encode(pcm16le: bytes) -> bytes:
    """16-bit little-endian PCM -> G.711 A-law, one byte a sample."""
    return _PCM_TO_ALAW[_samples(pcm16le).view(np.uint16)].tobytes()


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law -> 16-bit little-endian PCM."""
    return _ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def resample_pcm16(pcm16le: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample 16-bit PCM by linear interpolation (no anti-alias filter: fine for speech
    assets and tests, not for hi-fi)."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"Sample rates must be positive, got {from_rate} -> {to_rate}.")
    samples = _samples(pcm16le)
    if from_rate == to_rate or samples.size == 0:
        return samples.astype("<i2").tobytes()
    out_count = round(samples.size * to_rate / from_rate)
    positions = np.arange(out_count, dtype=np.float64) * (from_rate / to_rate)
    resampled = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
    return np.clip(np.rint(resampled), -32768, 32767).astype("<i2").tobytes()
