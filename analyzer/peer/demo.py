"""Record real conversations of three protocols through one mitmdump and show what was captured.

    python -m analyzer.peer.demo --out demo-out

Starts the local realtime peer (it serves OpenAI Realtime and GPT-Live) and the local Gemini
Live peer, mitmdump with the capture addon as an HTTP proxy (regular mode, so one proxy reaches
both peers) writing to ``demo-out/captures``, plays the default scenario in Realtime's GA and
beta dialects, over GPT-Live (``/v1/live/sessions``) and over Gemini Live, stops mitmdump with
SIGINT, then prints the addon's per-turn lines, the files, a frame count per session, and a
line per provider from the report. The peers' own records are ``demo-out/peer-server.jsonl``
and ``demo-out/peer-gemini.jsonl``.
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
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync


@dataclass
class DemoRun:
    out_dir: Path
    captures_dir: Path
    server_record: Path
    rt_lines: list[str] = field(default_factory=list)
    conversations: list[ConversationResult] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # GPT-Live / Gemini: one line each
    seconds: float = 0.0


def record_demo(out_dir: Path, speed: float = 4.0, audio_pace: float = 4.0) -> DemoRun:
    """Record the default conversation in Realtime GA and beta, GPT-Live and Gemini Live
    through one mitmdump (an HTTP proxy to both peers) into ``out_dir``."""
    captures_dir = out_dir / "captures"
    run = DemoRun(out_dir, captures_dir, out_dir / "peer-server.jsonl")
    gemini_record = out_dir / "peer-gemini.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    run.server_record.unlink(missing_ok=True)
    gemini_record.unlink(missing_ok=True)
    started = time.monotonic()
    with (
        run_server(record_path=run.server_record, audio_pace=audio_pace) as server,
        run_gemini_server(gemini_record, GeminiPeerConfig(audio_pace=audio_pace)) as gemini,
        run_mitmdump(mode="regular", rt_dir=captures_dir) as proxy,
    ):
        via = proxy.proxy_url
        for dialect in ("ga", "beta"):
            run.conversations.append(
                run_conversation_sync(server.url(), dialect=dialect, speed=speed, proxy=via)
            )
        # GPT-Live's client appends 20 ms chunks: at 4x that is 200 frames a second, more
        # than this 2-core machine's mitmdump forwards on time (first audio 1.9 s p50 vs 0.4 s
        # at 2x); it plays at 2x at most.
        live_speed = min(speed, 2.0)
        live = run_live_conversation_sync(
            server.url("/v1/live/sessions"), speed=live_speed, proxy=via
        )
        errors = f", errors {live.errors()}" if live.errors() else ""
        run.others.append(f"GPT-Live session {live.session_id}: {len(live.frames)} frames{errors}")
        result = run_gemini_conversation_sync(f"ws://127.0.0.1:{gemini}", speed=speed, proxy=via)
        run.others.append(f"Gemini Live session: {len(result.frames)} frames")
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
    count = len(run.conversations) + len(run.others)
    print(f"Recorded {count} conversations in {run.seconds:.1f} s.\n")
    for result in run.conversations:
        print("\n".join(summarize(result)))
    print("\n".join(run.others))
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


PROVIDERS = {"ga": "OpenAI Realtime (GA)", "beta": "OpenAI Realtime (beta)",
             "live": "OpenAI GPT-Live", "gemini": "Google Gemini Live"}  # fmt: skip


def provider_lines(captures_dir: Path) -> list[str]:
    """One line per session from the report: provider, turns, first-audio p50, reply audio, cost."""
    from analyzer.reader import read_capture
    from analyzer.report import build_report

    lines = []
    for session in build_report(read_capture(captures_dir))["sessions"]:
        dialect = session["dialect"]
        first = (session["latency_ms"].get("first_audio") or {}).get("p50")
        played = sum(t["reply_audio_ms"] or 0 for t in session["turns"])
        usd = session["cost"]["usd"]
        lines.append(
            f"{PROVIDERS.get(dialect, dialect)}: {len(session['turns'])} turns, "
            f"first audio p50 {'-' if first is None else f'{first:.0f} ms'}, "
            f"reply audio {played / 1000:.1f} s, "
            f"cost {'unknown' if usd is None else f'~${usd:.4f}'}"
            f" ({session['model']})"
        )
    return lines


def analyze_recording(run: DemoRun) -> None:
    """Run the analyzer on what was recorded, as a user would from the shell."""
    print("\nPer provider (from the report):")
    for line in provider_lines(run.captures_dir):
        print(f"  {line}")
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
