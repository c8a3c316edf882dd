"""Speed of the voice-activity pass (issue 18): audio seconds analyzed per CPU second.

``python -m bench.bench_voice [--minutes 10] [--chunk-ms 20] [--repeat 5]`` feeds the peer's
speech assets, with silences between them, chunk by chunk through
``analyzer.voice_events.SessionVoices`` (what the recorder's writer runs per frame: the
detector, the chunk timing, the events), and beside it, in the same run, a baseline: one
vectorized numpy pass computing the same 10 ms frame energies over the whole audio at once
(the least any energy detector must do). A third variant, "with echo", feeds the same audio
as reply audio too (each frame one user chunk and one reply chunk: both streams' detectors, and
every user span cross-correlated against 10 s of reply audio by the echo watch,
``analyzer.voice_echo``); its x real time counts both streams' audio. Reported: x real time of
each, and their ratio; the
order of the variants rotates each repetition and the median is kept (the machine is noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analyzer.kinds import Kind
from analyzer.voice_events import SessionVoices

ASSETS = Path(__file__).resolve().parents[1] / "analyzer" / "peer" / "assets"
RATE = 24000


def speech(minutes: float) -> np.ndarray:
    """The user and reply assets in turn, 600 ms of silence after each, ``minutes`` long."""
    pieces = []
    for path in sorted(ASSETS.glob("*.wav")):
        with wave.open(str(path), "rb") as wav:
            pieces.append(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"))
        pieces.append(np.zeros(RATE * 6 // 10, np.int16))
    one = np.concatenate(pieces)
    repeat = int(minutes * 60 * RATE // one.size) + 1
    return np.tile(one, repeat)[: int(minutes * 60 * RATE)]


def voice_pass(audio: np.ndarray, chunk: int, echo: bool = False) -> Callable[[], int]:
    """The writer's pass over ``audio`` in chunks; with ``echo`` the same audio is also reply
    audio, so every span of speech is correlated against it (the worst case)."""
    data = audio.tobytes()
    size = chunk * 2

    def run() -> int:
        voices = SessionVoices()
        found = 0
        for n, at in enumerate(range(0, len(data), size)):
            piece = data[at : at + size]
            user = {"kind": Kind.USER_AUDIO, "audio_bytes": len(piece), "stream_ms": 0.0}
            if echo:
                reply = {"kind": Kind.REPLY_AUDIO, "audio_bytes": len(piece), "reply_id": "r"}
                found += len(voices.feed(n * 0.02, [reply, user], piece + piece))
            else:
                found += len(voices.feed(n * 0.02, [user], piece))
        return found

    return run


def baseline(audio: np.ndarray) -> Callable[[], int]:
    frame = RATE // 100

    def run() -> int:
        values = audio[: audio.size - audio.size % frame].astype(np.float64).reshape(-1, frame)
        energy = np.einsum("ij,ij->i", values, values)
        return int((energy > 1e6).sum())

    return run


def cpu_seconds(fn: Callable[[], int]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_voice", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-ms", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    audio = speech(args.minutes)
    seconds = audio.size / RATE
    variants = {
        "voice pass": voice_pass(audio, RATE * args.chunk_ms // 1000),
        "baseline": baseline(audio),
        "with echo": voice_pass(audio, RATE * args.chunk_ms // 1000, echo=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(args.repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            times[name].append(cpu_seconds(variants[name]))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{seconds:.0f} s of speech and silence, {args.chunk_ms} ms chunks, {args.repeat} reps")
    for name, cpu in median.items():
        audio_s = seconds * (2 if name == "with echo" else 1)  # user and reply audio
        print(f"  {name:10s} {cpu * 1000:8.1f} ms CPU  {audio_s / cpu:10,.0f}x real time")
    ratio = median["voice pass"] / median["baseline"]
    print(f"  voice pass / baseline: {ratio:.1f}x the CPU")
    echo = median["with echo"] / median["voice pass"]
    print(f"  with echo / voice pass: {echo:.1f}x the CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
