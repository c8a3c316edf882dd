"""Audio export speed vs a plain base64 decode of the same audio.

``python -m bench.bench_audio [--mb 100] [--repeat 3]`` builds a synthetic capture (GA session,
100 ms pcm16 appends with server VAD turns, 100 ms reply deltas) with the real recording code,
then times ``load_audio`` (read + per-item assembly), ``export_audio`` (that plus the WAV files
and the stereo mix) and ``base64.b64decode`` of the audio's base64 text.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.audio import export_audio, load_audio
from analyzer.recording.frames import FrameRecord, build_frame
from analyzer.recording.session import handshake_facts
from analyzer.recording.writers import write_parquet

T0 = 1_700_000_000.0
CHUNK_BYTES = 4800  # 100 ms of 24 kHz pcm16
URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def synthetic_capture(directory: Path, audio_mb: float) -> tuple[Path, list[str]]:
    """A one-session capture holding about ``audio_mb`` MB of decoded audio, half each way;
    returns its path and the base64 texts of its audio."""
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, CHUNK_BYTES, dtype=np.uint8).tobytes() for _ in range(64)]
    texts = [base64.b64encode(p).decode() for p in pool]
    sid = "bench-session"
    frames: list[FrameRecord] = []
    b64s: list[str] = []

    def add(t: float, direction: str, event: dict[str, Any]) -> None:
        text = json.dumps(event).encode()
        frames.append(build_frame(sid, len(frames), t, direction == "client", True, text))

    add(T0, "server", {"type": "session.created", "session": {"type": "realtime"}})
    turns = max(1, int(audio_mb * 1e6 / CHUNK_BYTES / 2 / 50))  # 5 s of speech, 5 s of reply
    t = T0 + 0.1
    clock_ms = 0
    for turn in range(turns):
        user, reply = f"item_u{turn}", f"item_a{turn}"
        for i in range(50):
            add(t, "client", {"type": "input_audio_buffer.append", "audio": texts[i % 64]})
            b64s.append(texts[i % 64])
            if i == 5:
                add(t, "server", _vad("speech_started", user, audio_start_ms=clock_ms + 300))
            t += 0.1
            clock_ms += 100
        add(t, "server", _vad("speech_stopped", user, audio_end_ms=clock_ms - 500))
        add(t, "server", _vad("committed", user))
        add(t, "server", {"type": "response.created", "response": {"id": "r" + reply}})
        for i in range(50):
            delta = texts[(i + 7) % 64]
            event = {"type": "response.output_audio.delta", "item_id": reply, "delta": delta}
            add(t + i * 0.02, "server", event)
            b64s.append(delta)
        t += 5.0
    facts = handshake_facts(sid, "rt-bench", URL, [], [], T0, True)
    path = directory / "rt-bench.parquet"
    write_parquet(path, frames, "rt-bench", [facts])
    return path, b64s


def _vad(kind: str, item_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"input_audio_buffer.{kind}", "item_id": item_id, **fields}


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="decoded audio, MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        capture, b64s = synthetic_capture(root, args.mb)
        file_mb = capture.stat().st_size / 1e6
        runs = iter(range(10**6))
        decode_s = best_of(args.repeat, lambda: [base64.b64decode(s) for s in b64s])
        load_s = best_of(args.repeat, lambda: load_audio([capture]))
        export_s = best_of(args.repeat, lambda: export_audio([capture], root / f"out{next(runs)}"))
        written_mb = sum(p.stat().st_size for p in (root / "out0").rglob("*") if p.is_file()) / 1e6
    audio_mb = sum(len(s) for s in b64s) * 3 / 4 / 1e6
    print(f"capture {file_mb:.0f} MB: {audio_mb:.1f} MB of audio in {len(b64s)} frames")
    print(f"best of {args.repeat}:")
    print(f"  base64.b64decode of each frame: {decode_s:6.3f} s")
    print(f"  load_audio (items in memory)  : {load_s:6.3f} s = {load_s / decode_s:.2f}x decode")
    print(
        f"  export_audio ({written_mb:.0f} MB written) : {export_s:6.3f} s "
        f"= {export_s / decode_s:.2f}x decode"
    )


if __name__ == "__main__":
    main()
