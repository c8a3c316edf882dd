"""G.711 µ-law / A-law and resampling for 16-bit little-endian mono PCM, in numpy.

The standard library's ``audioop`` is gone in Python 3.13, so this is our own. Decoding follows
the ITU-T G.711 tables exactly; encoding is the classic Sun reference (``g711.c``) algorithm,
precomputed for all 65,536 sample values so a call is one table lookup.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np
import numpy.typing as npt

BytesLike = bytes | bytearray | memoryview

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


def ulaw_samples(data: BytesLike) -> npt.NDArray[np.int16]:
    """G.711 µ-law -> 16-bit samples."""
    return _ULAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def ulaw_decode(data: bytes) -> bytes:
    """G.711 µ-law -> 16-bit little-endian PCM."""
    return ulaw_samples(data).astype("<i2").tobytes()


def alaw_encode(pcm16le: bytes) -> bytes:
    """16-bit little-endian PCM -> G.711 A-law, one byte a sample."""
    return _PCM_TO_ALAW[_samples(pcm16le).view(np.uint16)].tobytes()


def alaw_samples(data: BytesLike) -> npt.NDArray[np.int16]:
    """G.711 A-law -> 16-bit samples."""
    return _ALAW_TO_PCM[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law -> 16-bit little-endian PCM."""
    return alaw_samples(data).astype("<i2").tobytes()


def resample_pcm16(pcm16le: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample 16-bit PCM by linear interpolation (no anti-alias filter: fine for speech
    assets and tests, not for hi-fi)."""
    return resample(_samples(pcm16le), from_rate, to_rate).tobytes()


def resampled_count(count: int, from_rate: int, to_rate: int) -> int:
    """How many samples :func:`resample` makes of ``count``."""
    if from_rate == to_rate or count == 0:
        return count
    return round(count * to_rate / from_rate)


def resample(
    samples: npt.NDArray[np.int16],
    from_rate: int,
    to_rate: int,
    out: npt.NDArray[np.int16] | None = None,
) -> npt.NDArray[np.int16]:
    """:func:`resample_pcm16` of samples: output sample ``i`` is the input interpolated at
    ``i * from_rate / to_rate``, rounded half to even (``np.interp``, then ``np.rint``). Into
    ``out`` (any strides, :func:`resampled_count` long) when given."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"Sample rates must be positive, got {from_rate} -> {to_rate}.")
    count = resampled_count(samples.size, from_rate, to_rate)
    if out is None:
        out = np.empty(count, dtype="<i2")
    elif len(out) != count:
        raise ValueError(f"{count} samples do not fit in {len(out)}.")
    step = Fraction(from_rate, to_rate)
    if from_rate == to_rate or samples.size == 0:
        out[:] = samples
    elif _exact_is_safe(samples.size, step):
        _resample_exact(samples, step.numerator, step.denominator, out)
    else:
        positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
        resampled = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
        out[:] = np.clip(np.rint(resampled), -32768, 32767)
    return out


# Integer interpolation gives exactly what np.interp + np.rint give when no exact value is a tie
# (an odd step denominator q puts every value at least 1/(2q) from one) and the float error of
# positions (relative 2**-52, times a slope of at most 65535) stays below that distance.
_EXACT_MAX_DENOMINATOR = 1001
_EXACT_LIMIT = 2**34


def _exact_is_safe(count: int, step: Fraction) -> bool:
    q = step.denominator
    return q % 2 == 1 and q < _EXACT_MAX_DENOMINATOR and (count + step.numerator) * q < _EXACT_LIMIT


def _resample_exact(
    samples: npt.NDArray[np.int16], p: int, q: int, out: npt.NDArray[np.int16]
) -> None:
    """Linear interpolation at positions ``i * p / q`` in integers, rounded to nearest, into
    ``out``. Output ``b * q + m`` lies ``(m * p) % q / q`` past input ``b * p + (m * p) // q``,
    so each of the ``q`` phases is one strided numpy expression; positions past the last input
    hold it."""
    n = samples.size
    now = samples.astype(np.int32)
    slope = np.zeros(n, dtype=np.int32)
    np.subtract(now[1:], now[:-1], out=slope[:-1])
    base = now * (2 * q) + q  # round(v) = (2 * q * v + q) // (2 * q) with v = now + r * slope / q
    for m in range(min(q, len(out))):
        first, r = divmod(m * p, q)
        column = out[m::q]
        count = min(len(column), len(range(first, n, p)))
        if r == 0:
            column[:count] = samples[first::p][:count]
        else:
            part = base[first::p][:count] + (2 * r) * slope[first::p][:count]
            column[:count] = part // (2 * q)
        column[count:] = samples[-1]


def ulaw_resampled(
    data: BytesLike, from_rate: int, to_rate: int, out: npt.NDArray[np.int16] | None = None
) -> npt.NDArray[np.int16]:
    """:func:`resample` of :func:`ulaw_samples`, in one step."""
    return _g711_resampled(data, "ulaw", from_rate, to_rate, out)


def alaw_resampled(
    data: BytesLike, from_rate: int, to_rate: int, out: npt.NDArray[np.int16] | None = None
) -> npt.NDArray[np.int16]:
    """:func:`resample` of :func:`alaw_samples`, in one step."""
    return _g711_resampled(data, "alaw", from_rate, to_rate, out)


_DECODE_TABLES = {"ulaw": _ULAW_TO_PCM, "alaw": _ALAW_TO_PCM}


def _g711_resampled(
    data: BytesLike, law: str, from_rate: int, to_rate: int, out: npt.NDArray[np.int16] | None
) -> npt.NDArray[np.int16]:
    """G.711 has 256 sample values, so an interpolated sample is a function of the codes on
    either side: one lookup in a 65,536-entry table per phase instead of the arithmetic."""
    codes = np.frombuffer(data, dtype=np.uint8)
    table = _DECODE_TABLES[law]
    step = Fraction(from_rate, to_rate)
    if from_rate <= 0 or to_rate <= 0 or from_rate == to_rate or not codes.size:
        return resample(table[codes], from_rate, to_rate, out)
    if not _exact_is_safe(codes.size, step):
        return resample(table[codes], from_rate, to_rate, out)
    count = resampled_count(codes.size, from_rate, to_rate)
    if out is None:
        out = np.empty(count, dtype="<i2")
    elif len(out) != count:
        raise ValueError(f"{count} samples do not fit in {len(out)}.")
    p, q = step.numerator, step.denominator
    pairs = codes.astype(np.intp) << 8  # this code and the next (the last one's next: itself)
    pairs[:-1] |= codes[1:]
    pairs[-1] |= codes[-1]
    if p == 1:  # q outputs an input (8 kHz to 24 kHz): one row of a table each
        out.reshape(codes.size, q)[:] = np.take(_upsampling_table(law, q), pairs, axis=0)
        return out
    for m in range(min(q, count)):
        first, r = divmod(m * p, q)
        column = out[m::q]
        n = min(len(column), len(range(first, codes.size, p)))
        phase = table if r == 0 else _pair_table(law, r, q)
        column[:n] = phase[(codes if r == 0 else pairs)[first::p][:n]]
        column[n:] = table[codes[-1]]
    return out


@cache
def _upsampling_table(law: str, q: int) -> npt.NDArray[np.int16]:
    """The ``q`` samples from each code towards the next, indexed by ``code << 8 | next``."""
    columns = [np.repeat(_DECODE_TABLES[law], 256)]
    columns += [_pair_table(law, r, q) for r in range(1, q)]
    return np.ascontiguousarray(np.stack(columns, axis=1))


@cache
def _pair_table(law: str, r: int, q: int) -> npt.NDArray[np.int16]:
    """The sample ``r / q`` of the way from each code to the next, indexed by
    ``code << 8 | next``, rounded as :func:`_resample_exact` rounds."""
    table = _DECODE_TABLES[law].astype(np.int32)
    now = np.repeat(table, 256)
    slope = np.tile(table, 256) - now
    return ((now * (2 * q) + q + (2 * r) * slope) // (2 * q)).astype("<i2")
