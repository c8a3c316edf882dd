"""The voice events of a whole session found at once (analyzer.voice_batch, decoding a capture
recorded without events) are exactly those the writer finds chunk by chunk (voice_events)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from analyzer.codecs import ulaw_encode
from analyzer.kinds import Kind
from analyzer.peer.voices import utterance
from analyzer.voice import VoiceDetector
from analyzer.voice_batch import BatchVoices
from analyzer.voice_events import SessionVoices

RATE = 24000
Frame = tuple[float, list[dict[str, Any]], bytes | None]


def pcm(name: str) -> np.ndarray:
    return np.frombuffer(utterance(name).pcm16, "<i2")


def silence(ms: int, rate: int = RATE) -> np.ndarray:
    return np.zeros(rate * ms // 1000, np.int16)


def clipping(ms: int) -> np.ndarray:
    """A microphone overdriven: a loud square wave, every sample at full scale."""
    n = RATE * ms // 1000
    return np.where(np.arange(n) % 48 < 24, 32767, -32768).astype(np.int16)


def pieces(audio: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """``audio`` cut in chunks of the ``sizes`` in turn (none on a 10 ms frame boundary)."""
    out: list[np.ndarray] = []
    at = 0
    for size in itertools.cycle(sizes):
        if at >= audio.size:
            return out
        out.append(audio[at : at + size])
        at += size
    return out


def user(chunk: np.ndarray, clock_ms: float) -> dict[str, Any]:
    return {"kind": Kind.USER_AUDIO, "audio_bytes": chunk.size * 2, "stream_ms": clock_ms}


def reply(chunk: np.ndarray, reply_id: str) -> dict[str, Any]:
    return {"kind": Kind.REPLY_AUDIO, "audio_bytes": chunk.size * 2, "reply_id": reply_id}


def conversation(sizes: tuple[int, ...] = (333, 1001, 7, 480, 2401, 17, 959)) -> list[Frame]:
    """A session as the writer sees it: a reply streamed while the microphone sends speech,
    silence, an overdriven burst and the reply's echo, in chunks of odd sizes; a pause of 1.5 s
    (push to talk), a chunk whose audio was dropped, a commit, a second reply, its end."""
    story, thanks = pcm("reply_story"), pcm("user_thanks")
    echo = (story[: RATE * 2].astype(np.float64) / 3).astype(np.int16)
    mic = np.concatenate(
        [silence(130), thanks, silence(170), clipping(95), silence(450), echo, silence(333)]
    )
    frames: list[Frame] = []
    mic_chunks = pieces(mic, list(sizes))
    reply_chunks = pieces(story[: RATE * 4], [4801, 2400, 999])
    time_s, clock = 10.0, 0.0
    for n, chunk in enumerate(mic_chunks):
        if n < len(reply_chunks):
            frames.append((time_s, [reply(reply_chunks[n], "r1")], reply_chunks[n].tobytes()))
        audio = None if n == 40 else chunk.tobytes()  # dropped: not known
        frames.append((time_s, [user(chunk, clock)], audio))
        time_s += 1.5 if n == 25 else chunk.size / RATE
        clock += chunk.size * 1000 / RATE
        if n == 60:
            frames.append((time_s, [{"kind": Kind.USER_AUDIO_COMMIT}], None))
    frames.append((time_s, [{"kind": Kind.REPLY_END, "reply_id": "r1"}], None))
    second = pcm("reply_thanks")
    for chunk in pieces(second, [1234, 3]):
        time_s += 0.01
        frames.append((time_s, [reply(chunk, "r2")], chunk.tobytes()))
    frames.append((time_s, [{"kind": Kind.REPLY_END, "reply_id": "r2"}], None))
    return frames


def g711_session() -> list[Frame]:
    """A session switching to G.711 µ-law at 8 kHz, two chunks of audio in one frame, its
    last speech cut by the end of the capture."""
    config = {"kind": Kind.CONFIG, "input_format": "g711_ulaw/8000"}
    story, thanks = pcm("user_story")[::3], pcm("user_thanks")[::3]
    # The last speech runs to the end of the session: started, never ended (nothing flushes).
    pcm8k = np.concatenate(
        [silence(90, 8000), story, silence(300, 8000), thanks, silence(300, 8000), story]
    )
    audio = ulaw_encode(pcm8k.tobytes())
    frames: list[Frame] = [(0.0, [config], None)]
    sizes = itertools.cycle([161, 77, 1003])
    at, time_s = 0, 0.0
    while at < len(audio):
        first, second = next(sizes), next(sizes)
        both = audio[at : at + first + second]
        events = [
            {"kind": Kind.USER_AUDIO, "audio_bytes": min(first, len(both)), "stream_ms": 0.0},
            {"kind": Kind.USER_AUDIO, "audio_bytes": max(0, len(both) - first)},
        ]
        frames.append((time_s, events, both))
        at, time_s = at + first + second, time_s + len(both) / 8000
    return frames


def chunked(frames: list[Frame]) -> list[list[dict[str, Any]]]:
    voices = SessionVoices()
    return [voices.feed(time_s, events, audio) for time_s, events, audio in frames]


def at_once(frames: list[Frame]) -> list[list[dict[str, Any]]]:
    voices = BatchVoices()
    for row, (time_s, events, audio) in enumerate(frames):
        voices.feed_row(row, time_s, events, audio)
    out: list[list[dict[str, Any]]] = [[] for _ in frames]
    for row, _, _, event in sorted(voices.events(), key=lambda found: found[:3]):
        out[row].append(event)
    return out


def aligned() -> list[Frame]:
    """The conversation in 20 ms chunks: marks found on the last sample of a chunk."""
    return conversation((480,))


def tiny_chunks() -> list[Frame]:
    """Speech in chunks of 5 samples: a mark's sample is more chunks back than the writer
    keeps (256), so its time is the oldest kept chunk's."""
    audio = np.concatenate([silence(100), pcm("user_shorter")[: RATE // 2], silence(300)])
    frames: list[Frame] = []
    for n, chunk in enumerate(pieces(audio, [5])):
        frames.append((n * 5 / RATE, [user(chunk, n * 5000 / RATE)], chunk.tobytes()))
    frames.append((audio.size / RATE, [{"kind": Kind.USER_AUDIO_COMMIT}], None))
    return frames


def long_chunk() -> list[Frame]:
    """Speech starting in 20 ms chunks and going on in one chunk of 3 s: the writer's echo
    ring (2 s) no longer holds the span's start when it measures it, so no score."""
    story = pcm("reply_story")
    frames: list[Frame] = [(0.0, [reply(story[:RATE], "r1")], story[:RATE].tobytes())]
    mic = np.concatenate([silence(100), pcm("user_story"), silence(2500)])
    small, rest = mic[: RATE // 5], mic[RATE // 5 :]
    for n, chunk in enumerate([*pieces(small, [480]), rest[: RATE * 3], rest[RATE * 3 :]]):
        frames.append((1.0 + n * 0.02, [user(chunk, 0.0)], chunk.tobytes()))
    return frames


@pytest.mark.parametrize("session", [conversation, aligned, g711_session, tiny_chunks, long_chunk])
def test_the_events_found_at_once_are_those_found_chunk_by_chunk(session: Any) -> None:
    frames = session()
    expected = chunked(frames)
    assert at_once(frames) == expected
    found = [e for row in expected for e in row]
    ends = [e for e in found if e["kind"] == Kind.VOICE_END]
    assert len(ends) >= 1  # the session has speech to find


def test_the_conversation_exercises_clipping_echo_and_a_pause() -> None:
    """What the equality above covers: a clipped span, a scored echo, marks found in frames
    other than the one holding their sample (a span ended by the pause)."""
    ends = [e for row in chunked(conversation()) for e in row if e["kind"] == Kind.VOICE_END]
    users = [e for e in ends if e["role"] == "user"]
    assert any(e["clipped_share"] > 0.2 for e in users)
    assert max(e.get("echo_score") or 0.0 for e in users) > 0.9
    assert {e["role"] for e in ends} == {"user", "assistant"}


def test_one_call_and_odd_chunks_give_the_detector_the_same_marks() -> None:
    audio = np.concatenate(
        [
            silence(55),
            pcm("user_story"),
            silence(190),
            clipping(40),
            silence(250),
            pcm("user_shorter"),
        ]
    )
    whole = VoiceDetector(RATE)
    marks = whole.feed(audio) + whole.flush()
    for sizes in ([7], [333, 1001], [4801, 13, 480]):
        detector = VoiceDetector(RATE)
        fed = [m for chunk in pieces(audio, sizes) for m in detector.feed(chunk)]
        assert fed + detector.flush() == marks
    assert len(marks) >= 4
