"""Figures 4-5: the analyzer on big captures (report time, memory, audio decoding, scaling)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench import captures
from bench.stats import median

RT_ANALYZE = Path(sys.executable).with_name("rt-analyze")

# Runs a command as its only child and prints its wall time and peak RSS (kB) as JSON. The
# peak is the biggest of the process tree's summed RSS (sampled every 50 ms, in case the
# command starts processes of its own) and the biggest single process's peak (getrusage).
_MEASURE = """
import json, os, resource, subprocess, sys, tempfile, time

def tree_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            total = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                total += sum(tree_rss_kb(int(child)) for child in f.read().split())
    except (OSError, ValueError):
        return 0
    return total

start = time.perf_counter()
with tempfile.TemporaryFile() as err:
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=err)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss_kb(child.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    err.seek(0)
    stderr = err.read()
print(json.dumps({"wall_s": wall, "returncode": child.returncode,
    "peak_rss_kb": max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
    "stderr": stderr.decode(errors="replace")[-2000:]}))
"""

# What "just reading the columns" means: every column but the samples (issue 15's baseline).
_READ_COLUMNS = """
import sys, pyarrow.parquet as pq
pq.read_table(sys.argv[1], columns=sys.argv[2].split(","))
"""

# The same read without pyarrow's dataset layer, which ``read_table`` goes through and which
# imports pandas (~0.3 s): how ``rt-analyze report`` itself reads a capture.
_READ_FILE_COLUMNS = """
import sys, pyarrow.parquet as pq
pq.ParquetFile(sys.argv[1]).read(columns=sys.argv[2].split(","))
"""

_LOAD_AUDIO = """
import sys
from pathlib import Path
from analyzer.audio import load_audio
load_audio([Path(sys.argv[1])])
"""


@dataclass(frozen=True)
class AnalyzerSizes:
    capture_bytes: tuple[int, ...]  # scaling points, smallest first; the last is the big one
    report_reps: tuple[int, ...]  # repetitions at each point
    audio_reps: int
    timeout_s: float = 900.0
    measure_start_up: bool = True

    @classmethod
    def full(cls) -> AnalyzerSizes:
        # Three runs at every point, the big one too: one run on a shared machine is +-5%.
        return cls((10_000_000, 100_000_000, 1_000_000_000), (3, 3, 3), audio_reps=3)

    @classmethod
    def quick(cls) -> AnalyzerSizes:
        return cls(
            (1_000_000, 3_000_000), (1, 1), audio_reps=1, timeout_s=60.0, measure_start_up=False
        )


@dataclass
class Measured:
    wall_s: float
    peak_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)


def measure(cmd: list[str], timeout_s: float) -> Measured:
    """Wall time and peak RSS of ``cmd``, run alone under a small wrapper process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measuring {cmd} failed: {out.stderr}")
    result = json.loads(out.stdout)
    if result["returncode"] != 0:
        raise RuntimeError(f"{cmd} exited {result['returncode']}: {result['stderr']}")
    return Measured(result["wall_s"], result["peak_rss_kb"] / 1024)


def _report_cmd(path: Path) -> list[str]:
    return [str(RT_ANALYZE), "report", str(path), "--format", "json"]


def _read_cmd(path: Path, script: str = _READ_COLUMNS) -> list[str]:
    names = pq.ParquetFile(path).schema_arrow.names
    return [sys.executable, "-c", script, str(path), ",".join(c for c in names if c != "audio")]


def _report_vs_read(path: Path, reps: int, timeout_s: float) -> dict[str, Any]:
    """One capture's report and plain read, interleaved: medians and the report's peak RSS."""
    report_runs: list[Measured] = []
    read_runs: list[Measured] = []
    for _ in range(reps):
        report_runs.append(measure(_report_cmd(path), timeout_s))
        read_runs.append(measure(_read_cmd(path), timeout_s))
    report_s = median([m.wall_s for m in report_runs])
    read_s = median([m.wall_s for m in read_runs])
    file_mb = path.stat().st_size / 1e6
    peak_mb = max(m.peak_rss_mb for m in report_runs)
    return {
        "file_mb": file_mb,
        "report_s": report_s,
        "read_columns_s": read_s,
        "report_vs_read": report_s / read_s,
        "report_peak_rss_mb": peak_mb,
        "report_rss_share_of_file": peak_mb / file_mb,
    }


def report_other_formats(sizes: AnalyzerSizes, out_dir: Path) -> dict[str, Any]:
    """The biggest point's report on a capture of the previous format (1: events decoded at
    read time) and on one ``rt-analyze convert`` rebuilt from a journal."""
    target, reps = sizes.capture_bytes[-1], sizes.report_reps[-1]
    old = captures.cached(out_dir, target, format_version=1)
    journal = captures.cached_journal(out_dir, target)
    rebuilt = out_dir / f"{journal.stem}-converted.parquet"
    subprocess.run(
        [str(RT_ANALYZE), "convert", str(journal), "-o", str(rebuilt), "--force"],
        check=True,
        capture_output=True,
    )
    try:
        found = {
            "format1": _report_vs_read(old, reps, sizes.timeout_s),
            "converted": _report_vs_read(rebuilt, reps, sizes.timeout_s),
        }
    finally:
        rebuilt.unlink(missing_ok=True)
    for name, point in found.items():
        print(
            f"  report of the {name} capture ({point['file_mb']:.0f} MB): "
            f"{point['report_s']:.2f} s vs read {point['read_columns_s']:.2f} s "
            f"({point['report_vs_read']:.2f}x), peak RSS {point['report_peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return found


# The other commands a user runs on a big capture, each against the same plain read: none may
# be far slower than the report (session 10 found latency, turns, compare and export at 5-20x
# it, a table built per session).
_COMMANDS: dict[str, list[str]] = {
    "latency": ["latency", "--format", "json"],
    "turns": ["turns", "--format", "json"],
    "conversation": ["conversation", "--format", "json"],
    "slowest": ["slowest", "--format", "json"],
    "export --turns": ["export", "--force", "--turns"],
}


def other_commands(sizes: AnalyzerSizes, out_dir: Path) -> dict[str, Any]:
    """The biggest capture's other commands against ``read_table`` of every column but audio,
    interleaved: the median wall time of each and its peak RSS."""
    target, reps = sizes.capture_bytes[-1], sizes.report_reps[-1]
    path = captures.cached(out_dir, target)
    exported = out_dir / "exported-turns.parquet"
    found: dict[str, Any] = {}
    read_runs: list[Measured] = []
    runs: dict[str, list[Measured]] = {name: [] for name in _COMMANDS}
    for _ in range(reps):
        read_runs.append(measure(_read_cmd(path), sizes.timeout_s))
        for name, args in _COMMANDS.items():
            tail = [str(exported)] if name.startswith("export") else []
            cmd = [str(RT_ANALYZE), args[0], str(path), *args[1:], *tail]
            runs[name].append(measure(cmd, sizes.timeout_s))
    exported.unlink(missing_ok=True)
    read_s = median([m.wall_s for m in read_runs])
    for name, measured in runs.items():
        wall = median([m.wall_s for m in measured])
        found[name] = {
            "s": wall,
            "vs_read": wall / read_s,
            "peak_rss_mb": max(m.peak_rss_mb for m in measured),
        }
        print(
            f"  {name} of the {path.stat().st_size / 1e6:.0f} MB capture: {wall:.2f} s "
            f"({wall / read_s:.1f}x the read), peak RSS {found[name]['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    return {"read_columns_s": read_s, "commands": found}


def report_scaling(sizes: AnalyzerSizes, out_dir: Path) -> dict[str, Any]:
    """Figures 4 (report time and memory) and 5 (scaling), report and plain read interleaved."""
    points = []
    one_session_s = float("nan")
    if sizes.measure_start_up:
        sample = captures.ROOT / "samples" / "ga-voice.parquet"
        one_session_s = measure(_report_cmd(sample), sizes.timeout_s).wall_s
        print(f"  report on one 15 s sample session: {one_session_s:.2f} s (start-up included)")
    for target, reps in zip(sizes.capture_bytes, sizes.report_reps, strict=True):
        path = captures.cached(out_dir, target)
        file_mb = path.stat().st_size / 1e6
        meta = pq.ParquetFile(path).metadata
        report_runs: list[Measured] = []
        read_runs: list[Measured] = []
        file_read_runs: list[Measured] = []
        commands = {
            "report": (_report_cmd(path), report_runs),
            "read": (_read_cmd(path), read_runs),
            "file_read": (_read_cmd(path, _READ_FILE_COLUMNS), file_read_runs),
        }
        names = list(commands)
        for rep in range(reps):
            for what in names[rep % 3 :] + names[: rep % 3]:  # the order rotates
                cmd, runs = commands[what]
                runs.append(measure(cmd, sizes.timeout_s))
        report_s = median([m.wall_s for m in report_runs])
        read_s = median([m.wall_s for m in read_runs])
        file_read_s = median([m.wall_s for m in file_read_runs])
        peak_mb = max(m.peak_rss_mb for m in report_runs)
        points.append(
            {
                "file_mb": file_mb,
                "frames": meta.num_rows,
                "sessions": session_count(path),
                "reps": reps,
                "report_s": report_s,
                "read_columns_s": read_s,
                "report_vs_read": report_s / read_s,
                "read_file_columns_s": file_read_s,
                "report_vs_file_read": report_s / file_read_s,
                "report_peak_rss_mb": peak_mb,
                "read_peak_rss_mb": max(m.peak_rss_mb for m in read_runs),
                "report_rss_share_of_file": peak_mb / file_mb,
                "report_s_per_100mb": report_s / file_mb * 100,
            }
        )
        p = points[-1]
        print(
            f"  report {file_mb:7.1f} MB ({p['sessions']} sessions, {p['frames']} frames): "
            f"{report_s:7.2f} s vs read {read_s:5.2f} s ({p['report_vs_read']:.1f}x; "
            f"ParquetFile.read {file_read_s:5.2f} s, {p['report_vs_file_read']:.1f}x), "
            f"peak RSS {peak_mb:.0f} MB ({p['report_rss_share_of_file']:.2f} of the file)",
            flush=True,
        )
    first, last = points[0], points[-1]
    size_ratio = last["file_mb"] / first["file_mb"]
    time_ratio = last["report_s"] / first["report_s"]
    # Start-up is a fixed cost; the slope between the two biggest points is the marginal cost.
    prev = points[-2] if len(points) > 1 else first
    slope = (
        (last["report_s"] - prev["report_s"]) / (last["file_mb"] - prev["file_mb"]) * 100
        if last is not prev
        else float("nan")
    )
    return {
        "one_sample_session_s": one_session_s,
        "points": points,
        "other_formats": report_other_formats(sizes, out_dir),
        "other_commands": other_commands(sizes, out_dir),
        "size_ratio": size_ratio,
        "time_ratio": time_ratio,
        "scaling_exponent": _exponent(first, last),
        "marginal_s_per_100mb": slope,
    }


def _exponent(a: dict[str, Any], b: dict[str, Any]) -> float:
    import math

    return math.log(b["report_s"] / a["report_s"]) / math.log(b["file_mb"] / a["file_mb"])


def session_count(path: Path) -> int:
    from analyzer.schema import parse_file_metadata

    meta = parse_file_metadata(pq.ParquetFile(path).metadata.metadata)
    return len(meta["sessions"]) if meta else 0


def base64_decode_rate(path: Path) -> dict[str, float]:
    """Seconds a bare ``base64.b64decode`` takes over the capture's audio, frame by frame (the
    base64 text is made first, untimed: it is what the frames carried on the wire)."""
    pf = pq.ParquetFile(path)
    decoded = 0
    seconds = 0.0
    for group in range(pf.num_row_groups):
        audio = pf.read_row_group(group, columns=["audio"]).column("audio").to_pylist()
        texts = [base64.b64encode(a) for a in audio if a]
        start = time.perf_counter()
        for text in texts:
            decoded += len(base64.b64decode(text))
        seconds += time.perf_counter() - start
    return {"audio_mb": decoded / 1e6, "seconds": seconds, "mb_per_s": decoded / 1e6 / seconds}


def audio_export(sizes: AnalyzerSizes, out_dir: Path) -> dict[str, Any]:
    """Figure 4 (audio): ``rt-analyze audio`` and ``load_audio`` vs bare base64 decoding."""
    path = captures.cached(out_dir, sizes.capture_bytes[-1])
    # Each repetition exports into a directory of its own, all removed at the end: deleting
    # ~16,000 files slows the creation of new ones on this disk for minutes, which a repetition
    # right after a removal would measure (ext4 without a journal skips recently deleted inodes
    # when it allocates one, looking each up: half of an export's time in `perf`). And each
    # export starts once the last one's 3.3 GB are on disk (os.sync, untimed): written back
    # while the next export runs, they doubled its kernel time (7.3 vs 3.4 s of sys).
    wavs = out_dir / "wav"
    shutil.rmtree(wavs, ignore_errors=True)
    runs: list[dict[str, Any]] = []
    for rep in range(sizes.audio_reps):
        wav_dir = wavs / f"rep-{rep}"
        b64 = base64_decode_rate(path)
        export_cmd = [str(RT_ANALYZE), "audio", str(path), "-o", str(wav_dir)]
        os.sync()  # see above
        export = measure(export_cmd, sizes.timeout_s)
        written_mb = sum(f.stat().st_size for f in wav_dir.rglob("*") if f.is_file()) / 1e6
        os.sync()
        again = measure(export_cmd, sizes.timeout_s)  # into the same directory: written over
        load = measure([sys.executable, "-c", _LOAD_AUDIO, str(path)], sizes.timeout_s)
        runs.append(
            {
                "rep": rep,
                "audio_mb": b64["audio_mb"],
                "b64decode_s": b64["seconds"],
                "b64decode_mb_per_s": b64["mb_per_s"],
                "export_s": export.wall_s,
                "export_peak_rss_mb": export.peak_rss_mb,
                "export_written_mb": written_mb,
                "export_mb_per_s": b64["audio_mb"] / export.wall_s,
                "export_again_s": again.wall_s,
                "export_again_mb_per_s": b64["audio_mb"] / again.wall_s,
                "load_audio_s": load.wall_s,
                "load_audio_peak_rss_mb": load.peak_rss_mb,
                "load_audio_mb_per_s": b64["audio_mb"] / load.wall_s,
            }
        )
        r = runs[-1]
        print(
            f"  audio {r['audio_mb']:.0f} MB: b64decode {r['b64decode_mb_per_s']:.0f} MB/s, "
            f"rt-analyze audio {r['export_mb_per_s']:.1f} MB/s ({r['export_s']:.1f} s, wrote "
            f"{written_mb:.0f} MB, peak RSS {export.peak_rss_mb:.0f} MB; again into the same "
            f"directory {r['export_again_s']:.1f} s), load_audio "
            f"{r['load_audio_mb_per_s']:.1f} MB/s",
            flush=True,
        )
    shutil.rmtree(wavs, ignore_errors=True)
    b64_rate = median([r["b64decode_mb_per_s"] for r in runs])
    return {
        "file_mb": path.stat().st_size / 1e6,
        "runs": runs,
        "audio_mb": runs[0]["audio_mb"],
        "b64decode_mb_per_s": b64_rate,
        "export_mb_per_s": median([r["export_mb_per_s"] for r in runs]),
        "export_again_mb_per_s": median([r["export_again_mb_per_s"] for r in runs]),
        "load_audio_mb_per_s": median([r["load_audio_mb_per_s"] for r in runs]),
        "export_peak_rss_mb": max(r["export_peak_rss_mb"] for r in runs),
        "export_vs_b64decode": median([r["export_mb_per_s"] for r in runs]) / b64_rate,
        "export_again_vs_b64decode": median([r["export_again_mb_per_s"] for r in runs]) / b64_rate,
        "load_audio_vs_b64decode": median([r["load_audio_mb_per_s"] for r in runs]) / b64_rate,
    }
