"""Record two real conversations through mitmdump and show what was captured.

    python -m analyzer.peer.demo --out demo-out

Starts the local realtime peer, mitmdump with the capture addon in reverse-proxy mode writing
to ``demo-out/captures``, plays the default scenario once in the GA dialect and once in beta,
stops mitmdump with SIGINT, then prints the addon's per-turn lines, the files and a frame count
per session. The peer's own record of the same frames is ``demo-out/peer-server.jsonl``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from analyzer.peer.client import ConversationResult, run_conversation_sync, summarize
from analyzer.peer.harness import run_mitmdump, run_server


@dataclass
class DemoRun:
    out_dir: Path
    captures_dir: Path
    server_record: Path
    rt_lines: list[str] = field(default_factory=list)
    conversations: list[ConversationResult] = field(default_factory=list)
    seconds: float = 0.0


def record_demo(out_dir: Path, speed: float = 4.0, audio_pace: float = 4.0) -> DemoRun:
    """Record the GA and beta default conversations through mitmdump into ``out_dir``."""
    captures_dir = out_dir / "captures"
    run = DemoRun(out_dir, captures_dir, out_dir / "peer-server.jsonl")
    out_dir.mkdir(parents=True, exist_ok=True)
    run.server_record.unlink(missing_ok=True)
    started = time.monotonic()
    with (
        run_server(record_path=run.server_record, audio_pace=audio_pace) as server,
        run_mitmdump(server.port, rt_dir=captures_dir) as proxy,
    ):
        for dialect in ("ga", "beta"):
            run.conversations.append(
                run_conversation_sync(proxy.url(), dialect=dialect, speed=speed)
            )
        proxy.stop()
        run.rt_lines = proxy.rt_lines()
    run.seconds = time.monotonic() - started
    return run


def frame_counts(parquet_path: Path) -> dict[str, Counter[tuple[str, str]]]:
    """Frames per session, by (direction, event type), read without touching the audio."""
    table = pq.read_table(parquet_path, columns=["session_id", "direction", "event_type"])
    counts: dict[str, Counter[tuple[str, str]]] = {}
    for row in table.to_pylist():
        key = (row["direction"], row["event_type"] or "(none)")
        counts.setdefault(row["session_id"], Counter())[key] += 1
    return counts


def show_recording(run: DemoRun) -> None:
    """What to show after recording: the proxy's live lines, the files, the frames captured."""
    print(f"Recorded {len(run.conversations)} conversations in {run.seconds:.1f} s.\n")
    for result in run.conversations:
        print("\n".join(summarize(result)))
    print("\nmitmdump said:")
    for line in run.rt_lines:
        print(f"  {line}")
    print(f"\nFiles in {run.captures_dir}:")
    for path in sorted(run.captures_dir.iterdir()):
        print(f"  {path.name}  {path.stat().st_size:,} bytes")
    for parquet_path in sorted(run.captures_dir.glob("*.parquet")):
        for session_id, counts in frame_counts(parquet_path).items():
            by_direction = Counter[str]()
            for (direction, _), count in counts.items():
                by_direction[direction] += count
            print(f"  session {session_id}: {dict(by_direction)} frames, {len(counts)} event types")


def analyze_recording(run: DemoRun) -> None:
    """Run the analyzer on what was recorded, as a user would from the shell."""
    rt_analyze = Path(sys.executable).parent / "rt-analyze"
    commands = [
        ["report", str(run.captures_dir)],
        ["sizes", str(run.captures_dir), "--by", "direction"],
        ["audio", str(run.captures_dir), "-o", str(run.out_dir / "audio")],
    ]
    for args in commands:
        print(f"\n$ rt-analyze {' '.join(args)}", flush=True)
        subprocess.run([str(rt_analyze), *args], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.peer.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory")
    parser.add_argument("--speed", type=float, default=4.0, help="x real time (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep earlier captures in --out")
    args = parser.parse_args(argv)
    if not args.keep and (args.out / "captures").exists():
        shutil.rmtree(args.out / "captures")
    run = record_demo(args.out, speed=args.speed, audio_pace=args.speed)
    show_recording(run)
    analyze_recording(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
