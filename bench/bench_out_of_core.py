"""Out-of-core report: ``rt-analyze report`` over a fleet dataset in a process whose address space
is capped (``RLIMIT_AS``), against reading everything into memory first.

The dataset is copies of the real sessions in ``samples/`` (new uuid4-style ids, own start
times), written as run files of ``--sessions-per-run`` sessions in the ``date=/host=`` layout of
``rt_layout=partitioned``, with the recorder's Parquet settings. Each variant runs as a child
process; its peak RSS comes from ``wait4``. Results go to ``bench/out/out_of_core[-big].json``.

    python -m bench.bench_out_of_core            # small: 48 sessions, about a minute
    python -m bench.bench_out_of_core --big      # 9,600 sessions, 5.3 GB: streaming 4 min, eager 40
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analyzer.schema import ANALYSIS_COLUMNS, FRAME_SCHEMA, PARQUET_COMPRESSION, file_metadata
from bench.captures import Template, load_templates

BENCH_DIR = Path(__file__).resolve().parent
RT_ANALYZE = Path(sys.executable).with_name("rt-analyze")
DAY_S = 1_735_689_600.0  # 2025-01-01T00:00:00Z
HOSTS = ("proxy-eu-1", "proxy-us-1")
# RLIMIT_AS caps address space, not memory: without these, glibc's per-thread malloc arenas, Arrow's
# mimalloc pool and OpenBLAS's per-thread buffers reserve ~1.4 GB of address space that is never
# touched (VmSize 1.9 GB at 270 MB RSS). What a memory-capped deployment sets; all variants get it.
CAPPED_ENV = {
    "MALLOC_ARENA_MAX": "2",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "OPENBLAS_NUM_THREADS": "1",
}

_EAGER = """
import sys
from pathlib import Path
from analyzer.reader import read_capture
from analyzer.report import build_report
build_report(read_capture([Path(sys.argv[1])]))
"""


def _copy(
    template: Template, run_id: str, session_id: str, start_s: float
) -> tuple[pa.Table, dict]:
    shift = start_s - float(template.facts["start_s"])
    t = template.frames
    ids = pa.array([session_id] * t.num_rows, pa.string()).dictionary_encode()
    t = t.set_column(t.schema.get_field_index("session_id"), FRAME_SCHEMA.field("session_id"), ids)
    idx = t.schema.get_field_index("time_s")
    t = t.set_column(idx, FRAME_SCHEMA.field("time_s"), pc.add(t.column("time_s"), shift))
    facts = json.loads(json.dumps(template.facts))
    facts.update(session_id=session_id, run_id=run_id)
    for key in ("start_s", "end_s"):
        facts[key] = float(facts[key]) + shift
    return t, facts


def generate(root: Path, sessions: int, per_run: int) -> list[Path]:
    """Write the dataset under ``root`` (replacing it); returns the run files."""
    shutil.rmtree(root, ignore_errors=True)
    templates = load_templates()
    paths = []
    for first in range(0, sessions, per_run):
        run = first // per_run
        host = HOSTS[run % len(HOSTS)]
        day_s = DAY_S + (run // len(HOSTS)) * 86400
        date = time.strftime("%Y-%m-%d", time.gmtime(day_s))
        run_id = f"rt-bench-{run:04d}"
        copies = []
        for i in range(first, min(first + per_run, sessions)):
            sid = str(uuid.UUID(int=(7 << 64) + i))
            start = day_s + 3600 + (i - first) * 20.0  # overlapping, like concurrent sessions
            copies.append(_copy(templates[i % len(templates)], run_id, sid, start))
        path = root / f"date={date}" / f"host={host}" / f"{run_id}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = pa.concat_tables([c[0] for c in copies]).combine_chunks().sort_by("time_s")
        writer = pq.ParquetWriter(
            path,
            FRAME_SCHEMA,
            compression=PARQUET_COMPRESSION,
            use_dictionary=["session_id", "direction", "opcode", "event_type"],
            write_statistics=["session_id", "seq", "time_s", "event_type"],
        )
        try:
            for batch in frames.to_batches(max_chunksize=4096):
                writer.write_batch(batch)
            meta = file_metadata(run_id, [c[1] for c in copies])
            writer.add_key_value_metadata({k.decode(): v.decode() for k, v in meta.items()})
        finally:
            writer.close()
        paths.append(path)
    return paths


def analysis_bytes(paths: list[Path]) -> int:
    """Decompressed size of the columns a report reads (what an eager reader holds, before
    pandas' own overhead)."""
    total = 0
    for path in paths:
        md = pq.ParquetFile(path).metadata
        for rg in range(md.num_row_groups):
            group = md.row_group(rg)
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema in ANALYSIS_COLUMNS:
                    total += column.total_uncompressed_size
    return total


def measure(command: list[str], limit_bytes: int | None, timeout_s: float) -> dict[str, Any]:
    """Run ``command`` with an address-space cap; wall time, exit code, peak RSS (wait4)."""

    def cap() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=cap
    )
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN's maximum only if it was
    # the largest so far, so each measurement runs in its own fresh interpreter (see main()).
    return {
        "wall_s": round(time.perf_counter() - start, 2),
        "returncode": proc.returncode,
        "stderr_tail": stderr.decode(errors="replace")[-300:],
    }


def _measure_isolated(command: list[str], limit_bytes: int | None, timeout_s: float) -> dict:
    """:func:`measure` in a fresh interpreter, so RUSAGE_CHILDREN is this command's peak."""
    code = (
        "import json, resource, sys; from bench.bench_out_of_core import measure; "
        "r = measure(json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])); "
        "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss "
        "/ 1024, 1); print(json.dumps(r))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(command), json.dumps(limit_bytes), str(timeout_s)],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR.parent,
        env={**os.environ, **CAPPED_ENV},
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="9,600 sessions instead of 48.")
    parser.add_argument("--sessions", type=int, help="Number of sessions (overrides --big).")
    parser.add_argument("--sessions-per-run", type=int, default=24)
    parser.add_argument("--limit-mb", type=int, default=1024, help="RLIMIT_AS of the report.")
    parser.add_argument("--timeout-s", type=float, default=3600.0)
    parser.add_argument(
        "--skip-eager",
        action="store_true",
        help="Skip the in-memory variants (keeping earlier results of the same size).",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    args = parser.parse_args(argv)
    sessions = args.sessions or (9600 if args.big else 48)
    label = "big" if args.big and not args.sessions else f"{sessions}"
    root = args.out / f"fleet-{label}"
    started = time.perf_counter()
    expected_files = -(-sessions // args.sessions_per_run)
    paths = sorted(root.rglob("*.parquet")) if root.exists() else []
    if len(paths) != expected_files:  # generation is deterministic: reuse a complete one
        paths = generate(root, sessions, args.sessions_per_run)
    generated_s = time.perf_counter() - started
    limit = args.limit_mb * 1024 * 1024
    on_disk = sum(p.stat().st_size for p in paths)
    name = "out_of_core-big.json" if label == "big" else f"out_of_core-{label}.json"
    previous = args.out / name
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    if results.get("sessions") != sessions or not args.skip_eager:
        results = {}  # only --skip-eager keeps the eager figures of the same dataset
    results |= {
        "sessions": sessions,
        "run_files": len(paths),
        "frames": sum(pq.ParquetFile(p).metadata.num_rows for p in paths),
        "dataset_bytes_on_disk": on_disk,
        "analysis_columns_bytes": analysis_bytes(paths),
        "limit_as_mb": args.limit_mb,
        "generate_s": round(generated_s, 1),
        "env": CAPPED_ENV,
    }
    report = [str(RT_ANALYZE), "report", str(root), "--format", "json"]
    eager = [sys.executable, "-c", _EAGER, str(root)]
    variants: list[tuple[str, list[str], int | None]] = [
        ("streaming_capped", report, limit),
        ("eager_capped", eager, limit),
        ("eager_uncapped", eager, None),
    ]
    if args.skip_eager:
        variants = variants[:1]
    args.out.mkdir(parents=True, exist_ok=True)
    for key, command, cap in variants:
        results[key] = _measure_isolated(command, cap, args.timeout_s)
        (args.out / name).write_text(json.dumps(results, indent=2) + "\n")  # as it goes
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
