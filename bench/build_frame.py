"""The recorder's per-frame cost (``build_frame``) by kind of frame, against another checkout.

``python -m bench.build_frame --against DIR`` times ``build_frame`` on frames of each kind
(audio delta, append, transcript delta, item and response events) in this checkout and in the
checkout at ``DIR`` (e.g. ``git archive main | tar -x -C /tmp/base``), each in fresh processes,
alternated ``--runs`` times (best per-frame time of each), and prints the ratios. The writer
process spends ~40 us a frame (bench/README.md, figure 1): this is most of it.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def frames() -> dict[str, bytes]:
    rng = random.Random(0)

    def audio(n: int) -> str:
        return base64.b64encode(rng.randbytes(n)).decode()

    ids = {"event_id": "event_x", "response_id": "resp_1", "item_id": "item_1"}
    item = {"id": "item_1", "object": "realtime.item", "type": "message", "status": "completed"}
    events: dict[str, Any] = {
        "output_audio.delta 4800 B": {
            "type": "response.output_audio.delta",
            **ids,
            "delta": audio(4800),
        },
        "append 960 B": {"type": "input_audio_buffer.append", "audio": audio(960)},
        "transcript delta": {
            "type": "response.output_audio_transcript.delta",
            **ids,
            "delta": " hi",
        },
        "conversation.item.added": {
            "type": "conversation.item.added",
            "event_id": "e",
            "previous_item_id": "p",
            "item": {
                **item,
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        },
        "response.done": {
            "type": "response.done",
            "event_id": "e",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "output": [
                    {
                        **item,
                        "role": "assistant",
                        "content": [{"type": "output_audio", "transcript": "A little bear."}],
                    }
                ],
                "usage": {"total_tokens": 10, "input_tokens": 5, "output_tokens": 5},
            },
        },
    }
    return {name: json.dumps(event).encode() for name, event in events.items()}


def measure(count: int) -> dict[str, float]:
    """Best per-frame microseconds of each kind, audio kept and dropped."""
    from analyzer.recording.frames import build_frame

    out = {}
    for name, raw in frames().items():
        for keep in (True, False):
            best = float("inf")
            for _ in range(5):
                start = time.perf_counter()
                for seq in range(count):
                    build_frame("s", seq, 1.0, False, True, raw, keep)
                best = min(best, (time.perf_counter() - start) / count)
            out[f"{name}, {'kept' if keep else 'dropped'}"] = best * 1e6
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the baseline checkout")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.count)))
        return 0
    trees = {"baseline": args.against.resolve(), "this": ROOT}
    best: dict[str, dict[str, float]] = {"baseline": {}, "this": {}}
    for run in range(args.runs):
        for name in ("baseline", "this") if run % 2 == 0 else ("this", "baseline"):
            # the script is this checkout's; what it imports is the tree's
            command = [
                sys.executable,
                str(Path(__file__)),
                "--child",
                "--count",
                str(args.count),
                "--against",
                ".",
            ]
            env = {"PYTHONPATH": str(trees[name])}
            result = json.loads(
                subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            )
            for kind, us in result.items():
                best[name][kind] = min(us, best[name].get(kind, float("inf")))
    for kind, base in best["baseline"].items():
        now = best["this"][kind]
        print(f"{kind:40s} {base:6.2f} -> {now:6.2f} us  ({now / base:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
