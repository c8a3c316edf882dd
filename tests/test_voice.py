"""The energy voice-activity detector (analyzer.voice) and its events (analyzer.voice_events)."""

from __future__ import annotations

import numpy as np
import pytest

from analyzer.kinds import Kind
from analyzer.voice import VoiceDetector, VoiceMark, dbfs
from analyzer.voice_events import SessionVoices

RATE = 24000


def tone(ms: int, level_dbfs: float = -20.0, hz: float = 440.0) -> np.ndarray:
    """A sine of RMS ``level_dbfs`` (its peak is 3 dB higher)."""
    t = np.arange(RATE * ms // 1000) / RATE
    amplitude = 32768 * 10 ** (level_dbfs / 20) * np.sqrt(2)
    return np.round(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, np.int16)


def spans(audio: np.ndarray, chunk: int = 480) -> list[tuple[float, float]]:
    """(start ms, end ms) of each span found, the audio fed ``chunk`` samples at a time."""
    detector = VoiceDetector(RATE)
    marks: list[VoiceMark] = []
    for at in range(0, audio.size, chunk):
        marks.extend(detector.feed(audio[at : at + chunk]))
    marks.extend(detector.flush())
    ends = [m for m in marks if m.end]
    assert [m.sample for m in marks if not m.end] == [m.start_sample for m in ends]
    return [(detector.ms(m.start_sample), detector.ms(m.sample)) for m in ends]


@pytest.mark.parametrize("chunk", [480, 333, 4800, 7])
def test_tone_spans_are_exact_whatever_the_chunking(chunk: int) -> None:
    audio = np.concatenate([silence(100), tone(500), silence(400), tone(300), silence(250)])
    assert spans(audio, chunk) == [(100.0, 600.0), (1000.0, 1300.0)]


def test_a_pause_shorter_than_the_hangover_does_not_split_speech() -> None:
    audio = np.concatenate([silence(50), tone(200), silence(190), tone(200), silence(300)])
    assert spans(audio) == [(50.0, 640.0)]


def test_a_click_shorter_than_min_speech_is_not_speech() -> None:
    audio = np.concatenate([silence(100), tone(50), silence(400), tone(60), silence(300)])
    assert spans(audio) == [(550.0, 610.0)]


def test_quiet_audio_is_not_speech_and_the_threshold_is_minus_40_dbfs() -> None:
    audio = np.concatenate([tone(300, -43.0), silence(100), tone(300, -37.0), silence(300)])
    assert spans(audio) == [(400.0, 700.0)]


def test_speech_running_to_the_end_closes_on_flush() -> None:
    assert spans(np.concatenate([silence(20), tone(105)])) == [(20.0, 125.0)]


def test_levels_of_a_span() -> None:
    detector = VoiceDetector(RATE)
    clipped = np.full(RATE // 100, 32767, np.int16)  # 10 ms at full scale
    marks = detector.feed(np.concatenate([tone(90, -20.0), clipped, silence(300)]))
    (end,) = [m for m in marks if m.end]
    expected_rms = dbfs(np.sqrt(np.mean(np.concatenate([tone(90), clipped]).astype(float) ** 2)))
    assert end.rms_dbfs == pytest.approx(expected_rms, abs=0.01)
    assert end.peak_dbfs == pytest.approx(dbfs(32767), abs=0.01)
    assert end.clipped_share == pytest.approx(0.1, abs=1e-6)


def _append(audio: np.ndarray, time_s: float, clock_ms: float) -> list[dict]:
    return [
        {
            "kind": Kind.USER_AUDIO,
            "audio_bytes": audio.size * 2,
            "audio_ms": audio.size / 24,
            "stream_ms": clock_ms,
        }
    ]


def test_session_voices_time_marks_by_the_chunk_that_held_them() -> None:
    """20 ms chunks arriving 20 ms apart from t=100 s: speech 100..600 ms of the stream."""
    audio = np.concatenate([silence(100), tone(500), silence(400)])
    voices = SessionVoices()
    found = []
    for n, at in enumerate(range(0, audio.size, 480)):
        chunk = audio[at : at + 480]
        found += voices.feed(100.0 + n * 0.02, _append(chunk, 0, n * 20.0), chunk.tobytes())
    start, end = found
    assert (start["kind"], start["role"], start["stream_ms"]) == (Kind.VOICE_START, "user", 100.0)
    assert start["at_s"] == pytest.approx(100.1)  # chunk 5 holds sample at 100 ms
    assert (end["kind"], end["stream_ms"], end["audio_ms"]) == (Kind.VOICE_END, 600.0, 500.0)
    assert end["at_s"] == pytest.approx(100.58)  # chunk 29 (580..600 ms) holds the last sample
    assert end["rms_dbfs"] == pytest.approx(-20.0, abs=0.05)


def test_reply_audio_is_one_stream_per_reply_closed_by_its_end() -> None:
    voices = SessionVoices()
    audio = np.concatenate([silence(40), tone(200)])
    delta = {"kind": Kind.REPLY_AUDIO, "reply_id": "r1", "audio_bytes": audio.size * 2}
    found = voices.feed(5.0, [delta], audio.tobytes())
    found += voices.feed(5.5, [{"kind": Kind.REPLY_END, "reply_id": "r1"}], None)
    assert [(e["kind"], e["role"], e["reply_id"], e["stream_ms"], e["at_s"]) for e in found] == [
        (Kind.VOICE_START, "assistant", "r1", 40.0, 5.0),
        (Kind.VOICE_END, "assistant", "r1", 240.0, 5.0),
    ]


def test_dropped_audio_ends_a_span_and_keeps_the_clock() -> None:
    voices = SessionVoices()
    first = tone(200)
    found = voices.feed(1.0, _append(first, 0, 0.0), first.tobytes())
    found += voices.feed(1.2, _append(first, 0, 200.0), None)  # no samples: not known
    found += voices.feed(1.4, _append(first, 0, 400.0), first.tobytes())
    found += voices.feed(1.6, _append(silence(300), 0, 600.0), silence(300).tobytes())
    assert [(e["kind"], e["stream_ms"]) for e in found] == [
        (Kind.VOICE_START, 0.0),
        (Kind.VOICE_END, 200.0),
        (Kind.VOICE_START, 400.0),
        (Kind.VOICE_END, 600.0),
    ]
