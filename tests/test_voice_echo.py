"""Echo suspicion (analyzer.voice_echo) on the peers' voices fed through the writer's voice
pass: the reply's own audio sent back by the microphone scores near 1, other speech low."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analyzer.heard import Span, Voices, heard_notes, turn_heard
from analyzer.kinds import Kind
from analyzer.peer.voices import utterance
from analyzer.voice_echo import ECHO_SCORE, decimate, echo_match
from analyzer.voice_events import SessionVoices

RATE = 24000
CHUNK = 480  # 20 ms


def pcm(name: str) -> np.ndarray:
    return np.frombuffer(utterance(name).pcm16, "<i2")


def session(user: np.ndarray, reply: np.ndarray, reply_lead: int = 0) -> list[dict[str, Any]]:
    """The reply's chunks, then the user's (``reply_lead`` chunks of reply go first): one
    frame each, 20 ms apart on the capture clock; the events the voice pass found."""
    voices = SessionVoices()
    found: list[dict[str, Any]] = []
    frames: list[tuple[Kind, bytes]] = []
    reply_chunks = [reply[i : i + CHUNK].tobytes() for i in range(0, reply.size, CHUNK)]
    user_chunks = [user[i : i + CHUNK].tobytes() for i in range(0, user.size, CHUNK)]
    frames += [(Kind.REPLY_AUDIO, c) for c in reply_chunks[:reply_lead]]
    rest = reply_chunks[reply_lead:]
    for n, chunk in enumerate(user_chunks):  # reply and microphone interleaved
        if n < len(rest):
            frames.append((Kind.REPLY_AUDIO, rest[n]))
        frames.append((Kind.USER_AUDIO, chunk))
    for n, (kind, audio) in enumerate(frames):
        event = {"kind": kind, "audio_bytes": len(audio), "reply_id": "r1", "stream_ms": 0.0}
        found += voices.feed(n * 0.02, [event], audio)
    return [e for e in found if e["kind"] == Kind.VOICE_END and e["role"] == "user"]


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, np.int16)


def test_the_reply_sent_back_by_the_microphone_is_an_echo() -> None:
    """The microphone hears the reply at -12 dB, 150 ms late, and nothing else."""
    reply = pcm("reply_story")
    echo = (reply[: RATE * 3].astype(np.float64) / 4).astype(np.int16)
    user = np.concatenate([silence(150), echo, silence(600)])
    (end,) = session(user, reply)
    assert end["echo_score"] > 0.95
    assert end["echo_score"] >= ECHO_SCORE
    assert end["echo_delay_ms"] == 300.0  # user chunk 7 (0.30 s) vs reply chunk 0 (0 s)


def test_the_users_own_speech_is_no_echo() -> None:
    reply = pcm("reply_story")
    user = np.concatenate([silence(300), pcm("user_story"), silence(600)])
    ends = session(user, reply, reply_lead=50)
    assert ends and all(e["echo_score"] < 0.35 for e in ends)


def test_no_reply_audio_no_score() -> None:
    user = np.concatenate([silence(300), pcm("user_thanks"), silence(600)])
    (end,) = session(user, np.zeros(0, np.int16))
    assert "echo_score" not in end


def test_echo_match_finds_the_offset() -> None:
    rng = np.random.default_rng(7)
    reply = (rng.standard_normal(16000) * 3000).astype(np.float32)
    user = reply[5000:9000] * -0.3  # inverted and attenuated
    found = echo_match(user, reply)
    assert found is not None
    score, offset = found
    assert offset == 5000 and score > 0.999
    assert echo_match(user, np.zeros(16000, np.float32)) is None  # silence matches nothing


def test_a_turn_whose_speech_or_talk_over_is_an_echo_is_flagged() -> None:
    echoed = Span(11.0, 11.8, 800.0, (-20.0, -3.0, 0.0), echo=(0.93, 160.0))
    clean = Span(8.0, 10.0, 2000.0, (-20.0, -3.0, 0.0), echo=(0.12, 40.0))
    row = {"response_id": "r1", "first_audio_s": 10.5, "reply_audio_ms": 3000.0}
    heard = turn_heard(row, Voices(user=[clean, echoed]), set())
    assert heard["echo_suspected"] is True
    assert heard["echo_score"] == 0.93 and heard["echo_delay_ms"] == 160.0
    heard = turn_heard(row, Voices(user=[clean]), set())
    assert heard["echo_suspected"] is False and heard["echo_score"] == 0.12
    unscored = Span(8.0, 10.0, 2000.0, (-20.0, -3.0, 0.0))
    heard = turn_heard(row, Voices(user=[unscored]), set())
    assert heard["echo_suspected"] is None and math.isnan(heard["echo_score"])


def test_the_terminal_report_notes_an_echo() -> None:
    turn_dict: dict[str, Any] = {"latency_ms": {}, "echo_suspected": True, "mic_flag": None}
    assert heard_notes(turn_dict) == ", echo?"
    assert heard_notes({**turn_dict, "echo_suspected": False}) == ""


def test_the_planted_microphone_clips_and_echoes() -> None:
    """analyzer.peer.mic: gain 8 clips the peer's speech; the echo comes back at its gain,
    echo_delay_ms late, mixed into what the microphone sends."""
    from analyzer.peer.mic import Microphone
    from analyzer.peer.scenarios import SCENARIOS

    loud = np.frombuffer(
        Microphone(SCENARIOS["clipping"]).speech(pcm("user_thanks").tobytes()), "<i2"
    )
    assert loud.max() == 32767 and loud.min() == -32768
    mic = Microphone(SCENARIOS["echo"])
    reply = np.full(RATE // 10, 1000, np.int16)  # 100 ms
    mic.heard(reply.tobytes())
    assert mic.queued_ms() == 250
    sent = np.frombuffer(mic.mix(bytes(RATE * 2 // 5)), "<i2")  # 200 ms of silence said
    assert (sent[: RATE * 150 // 1000] == 0).all()
    assert (sent[RATE * 150 // 1000 :] == 300).all()  # 1000 at gain 0.3
    assert mic.queued_ms() == 50


def test_decimate_is_the_float32_mean_of_each_run() -> None:
    """Bit for bit the mean numpy takes (echo scores of recorded captures depend on it), full
    scale included, at every rate's run length; a run cut by the end is dropped."""
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32768, 24_005).astype(np.int16)
    samples[:600] = -32768
    samples[600:1200] = 32767
    for rate in (8000, 16000, 24000, 48000, 4000):
        factor = max(1, round(rate / 4000))
        whole = samples.size - samples.size % factor
        mean = samples[:whole].reshape(-1, factor).mean(axis=1, dtype=np.float32)
        got = decimate(samples, rate)
        assert got.dtype == np.float32
        assert np.array_equal(got, mean)
