"""WAV export of the GPT-Live samples (primary socket and sideband), checked against the peer's
own record of each turn (``samples/live-*.server-turns.json``)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from analyzer.audio import export_audio, load_audio, session_streams

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RATE = 24000  # GPT-Live: PCM16 24 kHz both ways
NAMES = ["live-voice", "live-sideband"]


def _wav(path: Path) -> tuple[int, int, int]:
    """(rate, channels, frames) of a WAV file."""
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnchannels(), w.getnframes()


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
@pytest.mark.parametrize("name", NAMES)
def test_each_utterance_and_reply_is_a_wav_as_long_as_the_peer_says(
    name: str, suffix: str, tmp_path: Path
) -> None:
    turns = json.loads((SAMPLES / f"{name}.server-turns.json").read_text())
    result = export_audio([SAMPLES / f"{name}{suffix}"], tmp_path / "out")
    assert result.warnings == []
    names = [p.name for p in result.files]
    expected = []
    for n, _ in enumerate(turns, start=1):
        expected += [f"{2 * n - 1:02d}-user-live_user_{n}.wav"]
        expected += [f"{2 * n:02d}-assistant-live_item_{n}.wav"]
    assert names == [*expected, "session-stereo.wav"]
    wavs = [_wav(p) for p in result.files]
    for n, turn in enumerate(turns):
        speech_ms = turn["speech_end_ms"] - turn["speech_start_ms"]
        assert wavs[2 * n] == (RATE, 1, speech_ms * RATE // 1000)  # the transcript's span
        assert wavs[2 * n + 1] == (RATE, 1, turn["audio_ms_sent"] * RATE // 1000)
    rate, channels, frames = wavs[-1]
    assert (rate, channels) == (RATE, 2)
    assert frames >= turns[-1]["speech_end_ms"] * RATE // 1000  # the session up to its end


@pytest.mark.parametrize("name", NAMES)
def test_streams_hold_every_append_and_every_reply_chunk(name: str) -> None:
    turns = json.loads((SAMPLES / f"{name}.server-turns.json").read_text())
    (streams,) = session_streams([SAMPLES / f"{name}.parquet"])
    user, reply = streams.user, streams.reply
    assert (user.rate_hz, reply.rate_hz) == (RATE, RATE)
    assert len(reply.samples) == sum(t["audio_ms_sent"] for t in turns) * RATE // 1000
    assert sorted({i for i in reply.chunk_item if i}) == [
        f"live_item_{n}" for n in range(1, len(turns) + 1)
    ]
    # a user chunk belongs to the utterance whose transcript span it starts in
    for n, turn in enumerate(turns, start=1):
        mine = [k for k, item in enumerate(user.chunk_item) if item == f"live_user_{n}"]
        starts_ms = user.chunk_start[mine] * 1000 / RATE
        assert starts_ms.min() <= turn["speech_start_ms"] < starts_ms.min() + 40
        assert starts_ms.max() < turn["speech_end_ms"]
    assert np.all(np.diff(user.chunk_time_s) >= 0) and user.chunk_reply == [None] * len(
        user.chunk_reply
    )


def test_a_live_journal_gives_the_same_audio_as_its_parquet(tmp_path: Path) -> None:
    parquet, journal = SAMPLES / "live-voice.parquet", SAMPLES / "live-voice.jsonl"
    assert load_audio(journal).sessions == load_audio(parquet).sessions
    (a,) = session_streams([parquet])
    (b,) = session_streams([journal])
    for x, y in ((a.user, b.user), (a.reply, b.reply)):
        assert np.array_equal(x.samples, y.samples) and x.rate_hz == y.rate_hz
        assert np.array_equal(x.chunk_start, y.chunk_start)
        assert np.array_equal(x.chunk_time_s, y.chunk_time_s)
        assert (x.chunk_item, x.chunk_reply) == (y.chunk_item, y.chunk_reply)
    one = export_audio([parquet], tmp_path / "p").files
    other = export_audio([journal], tmp_path / "j").files
    assert [p.read_bytes() for p in one] == [p.read_bytes() for p in other]
