"""Figure 6: ``rt-analyze convert`` rebuilding a capture from a big multi-session journal.

Its time against reading the journal's lines with orjson alone (the least any conversion does),
its peak RSS against the journal's size (it streams: memory must not follow the journal), and
its scaling from the smallest journal to the biggest. Journals from :mod:`bench.captures`.
"""

from __future__ import annotations

import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench import captures
from bench.analyze import RT_ANALYZE, Measured, measure, session_count
from bench.stats import median, rotated

# The baseline: every line of the journal parsed, nothing kept.
_READ_LINES = """
import sys, orjson
loads = orjson.loads
with open(sys.argv[1], "rb") as f:
    for line in f:
        loads(line)
"""


@dataclass(frozen=True)
class ConvertSizes:
    journal_bytes: tuple[int, ...]  # scaling points, smallest first; the last is the big one
    reps: tuple[int, ...]  # repetitions at each point
    timeout_s: float = 900.0

    @classmethod
    def full(cls) -> ConvertSizes:
        return cls((10_000_000, 100_000_000, 1_000_000_000), (3, 3, 3))

    @classmethod
    def quick(cls) -> ConvertSizes:
        return cls((1_000_000, 3_000_000), (1, 1), timeout_s=60.0)


def convert_scaling(sizes: ConvertSizes, out_dir: Path) -> dict[str, Any]:
    """Figure 6: convert and the bare read of the same journal, interleaved, at every size."""
    converted = out_dir / "converted"
    converted.mkdir(parents=True, exist_ok=True)
    points = []
    for target, reps in zip(sizes.journal_bytes, sizes.reps, strict=True):
        journal = captures.cached_journal(out_dir, target)
        parquet = converted / journal.with_suffix(".parquet").name
        commands = {
            "convert": [str(RT_ANALYZE), "convert", str(journal), "-o", str(parquet)],
            "read": [sys.executable, "-c", _READ_LINES, str(journal)],
        }
        runs: dict[str, list[Measured]] = {name: [] for name in commands}
        for rep in range(reps):
            for name in rotated(list(commands), rep):  # the order rotates
                runs[name].append(measure(commands[name], sizes.timeout_s))
        journal_mb = journal.stat().st_size / 1e6
        convert_s = median([m.wall_s for m in runs["convert"]])
        read_s = median([m.wall_s for m in runs["read"]])
        peak_mb = max(m.peak_rss_mb for m in runs["convert"])
        points.append(
            {
                "journal_mb": journal_mb,
                "parquet_mb": parquet.stat().st_size / 1e6,
                "frames": pq.ParquetFile(parquet).metadata.num_rows,
                "sessions": session_count(parquet),
                "reps": reps,
                "convert_s": convert_s,
                "read_lines_s": read_s,
                "convert_vs_read": convert_s / read_s,
                "convert_peak_rss_mb": peak_mb,
                "read_peak_rss_mb": max(m.peak_rss_mb for m in runs["read"]),
                "convert_rss_share_of_journal": peak_mb / journal_mb,
            }
        )
        p = points[-1]
        print(
            f"  convert {journal_mb:7.1f} MB journal ({p['sessions']} sessions, {p['frames']} "
            f"frames) -> {p['parquet_mb']:.1f} MB: {convert_s:6.2f} s vs orjson read of its "
            f"lines {read_s:5.2f} s ({p['convert_vs_read']:.1f}x), peak RSS {peak_mb:.0f} MB "
            f"({p['convert_rss_share_of_journal']:.3f} of the journal)",
            flush=True,
        )
    shutil.rmtree(converted, ignore_errors=True)
    first, last = points[0], points[-1]
    return {
        "points": points,
        "scaling_exponent": math.log(last["convert_s"] / first["convert_s"])
        / math.log(last["journal_mb"] / first["journal_mb"]),
        "peak_rss_ratio": last["convert_peak_rss_mb"] / first["convert_peak_rss_mb"],
    }
