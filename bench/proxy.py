"""Figures 1-3: what recording costs the proxy (throughput, delay per frame, memory)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import mitm, traffic
from bench.stats import median, percentile, rotated


@dataclass(frozen=True)
class ProxySizes:
    """How much load each figure uses (full run vs ``--quick``)."""

    reps: int
    blast_units: int  # per connection, see traffic.blast_mix
    blast_connections: int
    paced_seconds: float
    paced_warmup_s: float
    paced_sessions: int
    delay_reps: int
    long_session_hours: float
    long_session_speedup: float

    @classmethod
    def full(cls) -> ProxySizes:
        return cls(
            reps=5,
            blast_units=400,
            blast_connections=4,
            paced_seconds=16.0,
            paced_warmup_s=2.0,
            paced_sessions=4,
            delay_reps=3,
            long_session_hours=1.0,
            long_session_speedup=30.0,
        )

    @classmethod
    def quick(cls) -> ProxySizes:
        return cls(
            reps=1,
            blast_units=10,
            blast_connections=2,
            paced_seconds=1.0,
            paced_warmup_s=0.2,
            paced_sessions=2,
            delay_reps=1,
            long_session_hours=0.005,
            long_session_speedup=30.0,
        )


def _fresh(work: Path, name: str) -> Path:
    path = work / name
    shutil.rmtree(path, ignore_errors=True)
    return path


async def _warm_up(proxy: mitm.Proxy, upstream: traffic.LoadServer) -> None:
    """One short session first, so each variant has loaded its code before we measure."""
    saved = upstream.plan
    server, client = traffic.blast_mix(5)
    upstream.plan = traffic.Plan(server, client)
    try:
        await traffic.run_load(upstream, proxy.port, 1, 60)
    finally:
        upstream.plan = saved
    # The addon's writer process starts with mitmdump and imports pyarrow (a second or two of
    # CPU): measure once it and the proxy are idle, as they are when real traffic comes.
    await _settled_cpu_s(proxy, cpu=lambda: proxy.cpu_s() + proxy.children_cpu_s())


async def _settled_cpu_s(
    proxy: mitm.Proxy, limit_s: float = 20.0, cpu: Callable[[], float] | None = None
) -> float:
    """The proxy's CPU time once it has gone idle (it may still be closing or saving flows);
    ``cpu`` says what to watch instead of the proxy's own CPU time."""
    cpu = cpu or proxy.cpu_s
    deadline = time.monotonic() + limit_s
    last = cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        now = cpu()
        if now - last < 0.01:
            return now
        last = now
    return last


async def throughput(sizes: ProxySizes, work: Path) -> dict[str, Any]:
    """Figure 1: frames/s through mitmdump with the addon, without, with ``-w``, and with an
    addon whose hook does nothing."""
    server, client = traffic.blast_mix(sizes.blast_units)
    upstream = traffic.LoadServer(traffic.Plan(server, client))
    runs: list[dict[str, Any]] = []
    async with upstream.running():
        for rep in range(sizes.reps):
            for variant in rotated(mitm.VARIANTS, rep):
                with mitm.mitmdump(variant, upstream.port, _fresh(work, f"tp-{variant}")) as p:
                    await _warm_up(p, upstream)
                    cpu_before = p.cpu_s()
                    writer_before = p.children_cpu_s()
                    result = await traffic.run_load(upstream, p.port, sizes.blast_connections, 300)
                    cpu_s = await _settled_cpu_s(p) - cpu_before
                    writer_s = p.children_cpu_s() - writer_before
                    hwm_mb = p.status_kb()["VmHWM"] / 1024
                runs.append(
                    {
                        "rep": rep,
                        "variant": variant,
                        "frames": result.frames,
                        "bytes": result.bytes,
                        "seconds": result.seconds,
                        "frames_per_s": result.frames_per_s,
                        "mb_per_s": result.mb_per_s,
                        "proxy_cpu_us_per_frame": cpu_s / result.frames * 1e6,
                        # the addon's writer process: CPU it took while the proxy was busy
                        "writer_cpu_us_per_frame": writer_s / result.frames * 1e6,
                        "proxy_peak_rss_mb": hwm_mb,
                    }
                )
                print(
                    f"  throughput rep {rep} {variant:5}: {result.frames_per_s:6.0f} frames/s "
                    f"{result.mb_per_s:5.1f} MB/s, proxy CPU "
                    f"{runs[-1]['proxy_cpu_us_per_frame']:.0f} us/frame",
                    flush=True,
                )
    by = _by_variant(runs, "frames_per_s")
    cpu = _by_variant(runs, "proxy_cpu_us_per_frame")
    return {
        "frames_per_connection": server.frames + client.frames,
        "bytes_per_connection": server.bytes + client.bytes,
        "connections": sizes.blast_connections,
        "runs": runs,
        "median_frames_per_s": {v: median(x) for v, x in by.items()},
        "median_mb_per_s": {v: median(x) for v, x in _by_variant(runs, "mb_per_s").items()},
        "median_proxy_cpu_us_per_frame": {v: median(x) for v, x in cpu.items()},
        "median_writer_cpu_us_per_frame": median(
            [r["writer_cpu_us_per_frame"] for r in runs if r["variant"] == "addon"]
        ),
        "addon_vs_none": _paired_ratio(runs, "frames_per_s", "addon", "none"),
        "addon_vs_dump": _paired_ratio(runs, "frames_per_s", "addon", "dump"),
        "addon_vs_noop": _paired_ratio(runs, "frames_per_s", "addon", "noop"),
        "noop_vs_none": _paired_ratio(runs, "frames_per_s", "noop", "none"),
        "cpu_addon_vs_none": _paired_ratio(runs, "proxy_cpu_us_per_frame", "addon", "none"),
        "cpu_noop_vs_none": _paired_ratio(runs, "proxy_cpu_us_per_frame", "noop", "none"),
    }


async def delay(sizes: ProxySizes, work: Path) -> dict[str, Any]:
    """Figure 2: time a frame spends between sender and receiver at a realtime pace."""
    server, client = traffic.paced_mix(sizes.paced_seconds)
    plan = traffic.Plan(server, client, record_delays_after_s=sizes.paced_warmup_s)
    upstream = traffic.LoadServer(plan)
    runs: list[dict[str, Any]] = []
    variants = ("addon", "none", "direct")
    async with upstream.running():
        for rep in range(sizes.delay_reps):
            for variant in rotated(variants, rep):
                if variant == "direct":  # no proxy: the floor of the load generator itself
                    result = await traffic.run_load(
                        upstream, upstream.port, sizes.paced_sessions, 120
                    )
                else:
                    with mitm.mitmdump(variant, upstream.port, _fresh(work, f"dl-{variant}")) as p:
                        await _warm_up(p, upstream)
                        result = await traffic.run_load(upstream, p.port, sizes.paced_sessions, 120)
                delays_ms = [
                    d * 1000
                    for d in (*result.server_to_client_delays_s, *result.client_to_server_delays_s)
                ]
                runs.append(
                    {
                        "rep": rep,
                        "variant": variant,
                        "frames": len(delays_ms),
                        "p50_ms": percentile(delays_ms, 50),
                        "p99_ms": percentile(delays_ms, 99),
                        "max_ms": max(delays_ms) if delays_ms else float("nan"),
                        "frames_per_s": result.frames / result.seconds,
                    }
                )
                r = runs[-1]
                print(
                    f"  delay rep {rep} {variant:6}: p50 {r['p50_ms']:.2f} ms, p99 "
                    f"{r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms over {r['frames']} frames",
                    flush=True,
                )
    return {
        "sessions": sizes.paced_sessions,
        "frames_per_s_per_session": 70,
        "runs": runs,
        "median_p50_ms": {v: median(x) for v, x in _by_variant(runs, "p50_ms").items()},
        "median_p99_ms": {v: median(x) for v, x in _by_variant(runs, "p99_ms").items()},
        "median_max_ms": {v: median(x) for v, x in _by_variant(runs, "max_ms").items()},
        "added_p50_ms": _paired_diff(runs, "p50_ms", "addon", "none"),
        "added_p99_ms": _paired_diff(runs, "p99_ms", "addon", "none"),
    }


async def memory(sizes: ProxySizes, work: Path) -> dict[str, Any]:
    """Figure 3: RSS growth of mitmdump over one long session, with the addon, without, and
    with ``-w`` (which keeps every message of a flow until the flow ends, as no addon does)."""
    server, client = traffic.long_session_mix(sizes.long_session_hours, sizes.long_session_speedup)
    upstream = traffic.LoadServer(traffic.Plan(server, client))
    runs: list[dict[str, Any]] = []
    async with upstream.running():
        for variant in ("addon", "none", "dump"):
            with mitm.mitmdump(variant, upstream.port, _fresh(work, f"mem-{variant}")) as p:
                await _warm_up(p, upstream)
                await asyncio.sleep(0.5)
                base_kb = p.status_kb()["VmRSS"]
                samples: list[int] = []

                async def poll(proxy: mitm.Proxy = p, out: list[int] = samples) -> None:
                    while True:
                        out.append(proxy.status_kb()["VmRSS"])
                        await asyncio.sleep(0.5)

                poller = asyncio.create_task(poll())
                try:
                    result = await traffic.run_load(upstream, p.port, 1, 900)
                finally:
                    poller.cancel()
                status = p.status_kb()
                # Before stopping: the capture is finished only at shutdown.
            runs.append(
                {
                    "variant": variant,
                    "frames": result.frames,
                    "traffic_mb": result.bytes / 1e6,
                    "seconds": result.seconds,
                    "planned_seconds": sizes.long_session_hours * 3600 / sizes.long_session_speedup,
                    "rss_before_mb": base_kb / 1024,
                    "rss_end_mb": status["VmRSS"] / 1024,
                    "peak_rss_mb": status["VmHWM"] / 1024,
                    "growth_mb": (status["VmHWM"] - base_kb) / 1024,
                    "rss_samples_mb": [round(s / 1024, 1) for s in samples],
                }
            )
            r = runs[-1]
            print(
                f"  memory {variant:5}: {r['traffic_mb']:.0f} MB of frames in {r['seconds']:.0f} s,"
                f" RSS {r['rss_before_mb']:.0f} -> peak {r['peak_rss_mb']:.0f} MB "
                f"(growth {r['growth_mb']:.0f} MB)",
                flush=True,
            )
    return {"runs": runs, "growth_mb": {r["variant"]: r["growth_mb"] for r in runs}}


def _by_variant(runs: list[dict[str, Any]], key: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for run in runs:
        out.setdefault(run["variant"], []).append(run[key])
    return out


def _paired_ratio(runs: list[dict[str, Any]], key: str, a: str, b: str) -> float:
    """Median over repetitions of a/b measured in the same repetition."""
    by_rep: dict[int, dict[str, float]] = {}
    for run in runs:
        by_rep.setdefault(run["rep"], {})[run["variant"]] = run[key]
    return median([r[a] / r[b] for r in by_rep.values() if a in r and b in r and r[b]])


def _paired_diff(runs: list[dict[str, Any]], key: str, a: str, b: str) -> float:
    by_rep: dict[int, dict[str, float]] = {}
    for run in runs:
        by_rep.setdefault(run["rep"], {})[run["variant"]] = run[key]
    return median([r[a] - r[b] for r in by_rep.values() if a in r and b in r])
