"""G.711 tables and resampling in analyzer.codecs."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.codecs import alaw_decode, alaw_encode, resample_pcm16, ulaw_decode, ulaw_encode

pytestmark = pytest.mark.timeout(30)

ALL_CODES = bytes(range(256))


def pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def samples(data: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(data, dtype="<i2")]


def test_ulaw_decode_matches_g711_table_values() -> None:
    assert samples(ulaw_decode(bytes([0xFF, 0x00, 0x80, 0x7F, 0xFE, 0x01, 0xF0]))) == [
        0,
        -32124,
        32124,
        0,
        8,
        -31100,
        120,
    ]


def test_alaw_decode_matches_g711_table_values() -> None:
    assert samples(alaw_decode(bytes([0xD5, 0x55, 0x80, 0x00, 0xAA, 0x2A]))) == [
        8,
        -8,
        5504,
        -5504,
        32256,
        -32256,
    ]


def test_decoded_tables_are_monotonic_and_symmetric() -> None:
    ulaw = np.array(samples(ulaw_decode(ALL_CODES)))
    alaw = np.array(samples(alaw_decode(ALL_CODES)))
    # µ-law: 0x00..0x7F negative (loudest first), 0x80..0xFF positive (loudest first).
    assert (np.diff(ulaw[:128]) > 0).all() and (np.diff(ulaw[128:]) < 0).all()
    assert (ulaw[:128] == -ulaw[128:]).all()
    # A-law: flipping the sign bit negates the value.
    assert (alaw[np.arange(256) ^ 0x80] == -alaw).all()


def test_encode_of_extremes_and_silence() -> None:
    assert ulaw_encode(pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])
    assert alaw_encode(pcm(0, 32767, -32768)) == bytes([0xD5, 0xAA, 0x2A])


def test_encode_inverts_decode_for_every_code() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # µ-law has two zeros (0x7F is "negative zero"); it encodes back to 0xFF.
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == bytes(expected)


def test_roundtrip_error_is_within_the_quantisation_step() -> None:
    ramp = np.linspace(-32000, 32000, 4001).astype("<i2")
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        back = np.frombuffer(decode(encode(ramp.tobytes())), dtype="<i2").astype(np.int32)
        error = np.abs(back - ramp.astype(np.int32))
        # Companding keeps the relative error small: <= 1/16 of the magnitude, plus a floor.
        assert (error <= np.abs(ramp) / 16 + 16).all()


def test_odd_length_pcm_is_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        ulaw_encode(b"\x00\x01\x02")


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24000, 8000), (8000, 24000), (24000, 16000)])
def test_resample_keeps_duration_and_tone(from_rate: int, to_rate: int) -> None:
    duration_s = 0.5
    t = np.arange(int(from_rate * duration_s)) / from_rate
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes()
    out = np.frombuffer(resample_pcm16(tone, from_rate, to_rate), dtype="<i2")
    assert out.size == int(to_rate * duration_s)
    expected = np.sin(2 * np.pi * 440 * np.arange(out.size) / to_rate) * 10000
    # The last output samples may lie past the last input sample (held, not extrapolated).
    assert np.max(np.abs(out - expected)[:-4]) < 600


def test_resample_same_rate_and_empty() -> None:
    assert resample_pcm16(pcm(1, 2, 3), 24000, 24000) == pcm(1, 2, 3)
    assert resample_pcm16(b"", 24000, 8000) == b""
