"""G.711 tables and resampling in analyzer.codecs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from analyzer.codecs import (
    alaw_decode,
    alaw_encode,
    alaw_resampled,
    alaw_samples,
    resample,
    resample_pcm16,
    ulaw_decode,
    ulaw_encode,
    ulaw_resampled,
    ulaw_samples,
)

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


# --- exact integer resampling and G.711 in one step -----------------------------------------------


def interp_resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """What resampling has always meant: np.interp at ``i * from / to``, rounded half to even."""
    count = round(samples.size * to_rate / from_rate)
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    values = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
    return np.clip(np.rint(values), -32768, 32767).astype("<i2")


RATE_PAIRS = [
    (8000, 24000),  # integer steps: the exact path
    (16000, 24000),
    (24000, 8000),
    (48000, 24000),
    (24000, 16000),
    (11025, 24000),  # 441/960: even denominator, np.interp
    (22050, 24000),
    (12000, 24000),
    (44100, 24000),
]


def random_samples(rng: np.random.Generator, kind: int, n: int) -> np.ndarray:
    if kind == 0:  # anything
        return rng.integers(-32768, 32768, n).astype(np.int16)
    if kind == 1:  # the steepest slopes there are
        return np.where(rng.random(n) < 0.5, -32768, 32767).astype(np.int16)
    return rng.integers(-3, 4, n).astype(np.int16)  # small steps: values near .5 boundaries


@pytest.mark.parametrize(("from_rate", "to_rate"), RATE_PAIRS)
def test_resample_equals_np_interp_rounded_to_the_sample(from_rate: int, to_rate: int) -> None:
    rng = np.random.default_rng(from_rate + to_rate)
    for trial in range(60):
        samples = random_samples(rng, trial % 3, int(rng.integers(1, 4000)))
        expected = interp_resample(samples, from_rate, to_rate)
        assert np.array_equal(resample(samples, from_rate, to_rate), expected)
        assert resample_pcm16(samples.tobytes(), from_rate, to_rate) == expected.tobytes()


def test_resample_writes_into_a_strided_view_and_checks_its_length() -> None:
    samples = np.array([0, 300, -300, 32767, -32768], dtype=np.int16)
    mix = np.zeros((15, 2), dtype="<i2")
    resample(samples, 8000, 24000, out=mix[:, 1])
    assert np.array_equal(mix[:, 1], interp_resample(samples, 8000, 24000))
    assert not mix[:, 0].any()
    with pytest.raises(ValueError, match="do not fit"):
        resample(samples, 8000, 24000, out=mix[:14, 1])


@pytest.mark.parametrize(
    ("resampled", "decode"), [(ulaw_resampled, ulaw_decode), (alaw_resampled, alaw_decode)]
)
@pytest.mark.parametrize(("from_rate", "to_rate"), [(8000, 24000), (8000, 16000), (8000, 22050)])
def test_g711_resampled_equals_decode_then_resample(
    resampled: Callable[..., np.ndarray],
    decode: Callable[[bytes], bytes],
    from_rate: int,
    to_rate: int,
) -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        codes = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
        expected = interp_resample(np.frombuffer(decode(codes), "<i2"), from_rate, to_rate)
        assert np.array_equal(resampled(codes, from_rate, to_rate), expected)
        mix = np.zeros((len(expected), 2), dtype="<i2")
        resampled(codes, from_rate, to_rate, out=mix[:, 0])
        assert np.array_equal(mix[:, 0], expected) and not mix[:, 1].any()
    assert np.array_equal(ulaw_samples(ALL_CODES), np.frombuffer(ulaw_decode(ALL_CODES), "<i2"))
    assert np.array_equal(alaw_samples(ALL_CODES), np.frombuffer(alaw_decode(ALL_CODES), "<i2"))
