"""The peer's energy VAD and its shipped speech assets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analyzer.peer.vad import EnergyVad, speech_span_ms
from analyzer.peer.voices import closest_user_utterance, utterances

pytestmark = pytest.mark.timeout(30)


def tone(duration_ms: int, amplitude: int = 8000) -> bytes:
    t = np.arange(duration_ms * 24) / 24000
    return (np.sin(2 * np.pi * 300 * t) * amplitude).astype("<i2").tobytes()


def silence(duration_ms: int) -> bytes:
    return bytes(duration_ms * 48)


def test_vad_reports_start_with_padding_and_stop_after_the_silence() -> None:
    vad = EnergyVad(prefix_padding_ms=300, silence_duration_ms=200)
    events = vad.feed(silence(1000) + tone(500) + silence(600))
    assert [(e.kind, e.audio_ms) for e in events] == [("started", 700), ("stopped", 1700)]
    assert events[1].speech_ms == 500


def test_vad_works_on_frames_split_across_appends() -> None:
    vad = EnergyVad(silence_duration_ms=200)
    audio = silence(100) + tone(300) + silence(300)
    events = [e for i in range(0, len(audio), 700) for e in vad.feed(audio[i : i + 700])]
    assert [(e.kind, e.audio_ms) for e in events] == [("started", 0), ("stopped", 600)]


def test_short_pauses_do_not_end_speech() -> None:
    vad = EnergyVad(silence_duration_ms=200)
    events = vad.feed(tone(200) + silence(120) + tone(200) + silence(400))
    assert [e.kind for e in events] == ["started", "stopped"]
    assert events[1].speech_ms == 520


def test_padding_never_reaches_before_the_last_commit() -> None:
    vad = EnergyVad(prefix_padding_ms=300)
    vad.feed(silence(1000))
    vad.reset_buffer()
    (started,) = vad.feed(silence(100) + tone(100))
    assert started.audio_ms == 1000


def test_speech_span_of_a_buffer() -> None:
    assert speech_span_ms(silence(200) + tone(400) + silence(200)) == (200, 600)
    assert speech_span_ms(silence(500)) is None


def test_assets_are_small_24khz_and_cover_the_script() -> None:
    assets = utterances()
    assert sum(len(u.pcm16) for u in assets.values()) < 1_400_000
    users = [u for u in assets.values() if u.role == "user"]
    assert len(users) >= 4
    for u in assets.values():
        assert u.text and 1000 <= u.duration_ms <= 7000
        # Trimmed to voiced edges: the VAD sees exactly the asset's length.
        assert speech_span_ms(u.pcm16) == (0, u.duration_ms)
    lengths = sorted(u.duration_ms for u in users)
    assert min(b - a for a, b in itertools.pairwise(lengths)) > 120


def test_user_utterances_are_recognised_by_length() -> None:
    for u in utterances().values():
        if u.role == "user":
            match = closest_user_utterance(u.duration_ms + 20)
            assert match is not None and match.name == u.name
    assert closest_user_utterance(10_000) is None
