"""``python -m bench``: every figure of bench/README.md; ``--quick`` is a tiny smoke run.

Each figure is a ratio of variants measured side by side in the same run (interleaved, repeated,
median), because the machine is noisy. Results go to ``bench/out/results[-quick].json``; a full
run also rewrites the results section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import analyze, convert, proxy
from bench.stats import machine

BENCH_DIR = Path(__file__).resolve().parent
FIGURES = ("throughput", "delay", "memory", "report", "audio", "convert")
RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"


def _row(figure: str, measured: str, target: str, met: bool | None) -> dict[str, Any]:
    return {"figure": figure, "measured": measured, "target": target, "met": met}


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if tp := results.get("throughput"):
        fps = tp["median_frames_per_s"]
        rows.append(
            _row(
                "1. capture throughput, addon / no addon",
                f"{tp['addon_vs_none']:.2f}x ({fps['addon']:.0f} vs {fps['none']:.0f} frames/s)",
                ">= 0.9x",
                tp["addon_vs_none"] >= 0.9,
            )
        )
        rows.append(
            _row(
                "1. capture throughput, addon / `-w` flow dump",
                f"{tp['addon_vs_dump']:.2f}x ({fps['addon']:.0f} vs {fps['dump']:.0f} frames/s)",
                "> 1x",
                tp["addon_vs_dump"] > 1.0,
            )
        )
        if "addon_vs_noop" in tp:
            rows.append(
                _row(
                    "1. capture throughput, addon / an addon that does nothing",
                    f"{tp['addon_vs_noop']:.2f}x ({fps['addon']:.0f} vs {fps['noop']:.0f} "
                    f"frames/s; the do-nothing addon / no addon: {tp['noop_vs_none']:.2f}x)",
                    "(what is ours)",
                    None,
                )
            )
        cpu = tp["median_proxy_cpu_us_per_frame"]
        noop_cpu = f"; do-nothing addon {cpu['noop']:.0f} us" if "noop" in cpu else ""
        if "median_writer_cpu_us_per_frame" in tp:
            writer_cpu = tp["median_writer_cpu_us_per_frame"]
            noop_cpu += f"; the addon's writer process {writer_cpu:.0f} us"
        rows.append(
            _row(
                "1. proxy CPU per frame, addon / no addon",
                f"{tp['cpu_addon_vs_none']:.2f}x ({cpu['addon']:.0f} vs {cpu['none']:.0f} us"
                f"{noop_cpu})",
                "(explains the above)",
                None,
            )
        )
    if dl := results.get("delay"):
        p99 = dl["median_p99_ms"]
        p50 = dl["median_p50_ms"]
        rows.append(
            _row(
                "2. delay added by the addon, p99",
                f"{dl['added_p99_ms']:+.2f} ms (p99 {p99['addon']:.2f} vs {p99['none']:.2f} ms;"
                f" no proxy {p99['direct']:.2f} ms)",
                "< 1 ms",
                dl["added_p99_ms"] < 1.0,
            )
        )
        rows.append(
            _row(
                "2. delay added by the addon, p50",
                f"{dl['added_p50_ms']:+.2f} ms (p50 {p50['addon']:.2f} vs {p50['none']:.2f} ms)",
                "-",
                None,
            )
        )
        mx = dl["median_max_ms"]
        rows.append(
            _row(
                "2. worst frame delay (median over runs)",
                f"{mx['addon']:.1f} ms with addon vs {mx['none']:.1f} ms without",
                "-",
                None,
            )
        )
    if mem := results.get("memory"):
        growth = mem["growth_mb"]
        traffic = mem["runs"][0]["traffic_mb"]
        rows.append(
            _row(
                f"3. mitmdump RSS growth over one long session ({traffic:.0f} MB of frames)",
                f"{growth['addon']:.0f} MB with addon ({growth['none']:.0f} MB without"
                + (f", {growth['dump']:.0f} MB with `-w`)" if "dump" in growth else ")"),
                "< 50 MB with addon",
                growth["addon"] < 50,
            )
        )
        before = {r["variant"]: r["rss_before_mb"] for r in mem["runs"]}
        rows.append(
            _row(
                "3. mitmdump RSS after its warm-up session, addon / no addon",
                f"{before['addon'] / before['none']:.2f}x ({before['addon']:.0f} vs "
                f"{before['none']:.0f} MB; the writer process is apart)",
                "(what the addon costs the proxy)",
                None,
            )
        )
    if rp := results.get("report"):
        big = rp["points"][-1]
        rows.append(
            _row(
                f"4. `report --format json` / `read_table` of every column but audio "
                f"({big['file_mb']:.0f} MB, as recorded: format 2)",
                f"{big['report_vs_read']:.2f}x ({big['report_s']:.2f} s vs "
                f"{big['read_columns_s']:.2f} s)",
                "<= 1.5x",
                big["report_vs_read"] <= 1.5,
            )
        )
        for name, label in (("converted", "rebuilt by convert"), ("format1", "format 1")):
            other = rp.get("other_formats", {}).get(name)
            if other:
                rows.append(
                    _row(
                        f"4. the same, on a capture {label} ({other['file_mb']:.0f} MB)",
                        f"{other['report_vs_read']:.2f}x ({other['report_s']:.2f} s; peak RSS "
                        f"{other['report_rss_share_of_file']:.3f} of the file)",
                        "<= 1.5x" if name == "converted" else "(reported)",
                        other["report_vs_read"] <= 1.5 if name == "converted" else None,
                    )
                )
        for name, point in rp.get("other_commands", {}).get("commands", {}).items():
            rows.append(
                _row(
                    f"4. `{name}` / the same read ({big['file_mb']:.0f} MB)",
                    f"{point['vs_read']:.2f}x ({point['s']:.2f} s; peak RSS "
                    f"{point['peak_rss_mb']:.0f} MB)",
                    "(reported)",
                    None,
                )
            )
        if "report_vs_file_read" in big:
            rows.append(
                _row(
                    "4. `report --format json` / `ParquetFile.read` of its columns (a read "
                    "that imports no pandas, as the report's own)",
                    f"{big['report_vs_file_read']:.2f}x ({big['report_s']:.2f} s vs "
                    f"{big['read_file_columns_s']:.2f} s)",
                    "(stricter baseline)",
                    None,
                )
            )
        rows.append(
            _row(
                "4. `report` peak RSS / file size",
                f"{big['report_rss_share_of_file']:.3f} ({big['report_peak_rss_mb']:.0f} MB)",
                "< 0.15",
                big["report_rss_share_of_file"] < 0.15,
            )
        )
        times = ", ".join(f"{p['file_mb']:.0f} MB: {p['report_s']:.1f} s" for p in rp["points"])
        rows.append(
            _row(
                "5. report time scaling (time ~ size^k)",
                f"k = {rp['scaling_exponent']:.2f} ({times})",
                "k <= 1 (linear or better)",
                rp["scaling_exponent"] <= 1.05,
            )
        )
    if au := results.get("audio"):
        run = au  # medians over the repetitions (peak RSS: the biggest)
        rows.append(
            _row(
                f"4. `rt-analyze audio` / bare base64 decode ({run['audio_mb']:.0f} MB of audio)",
                f"{au['export_vs_b64decode']:.2f}x ({run['export_mb_per_s']:.1f} vs "
                f"{run['b64decode_mb_per_s']:.0f} MB/s; peak RSS "
                f"{run['export_peak_rss_mb']:.0f} MB)",
                ">= 0.5x",
                au["export_vs_b64decode"] >= 0.5,
            )
        )
        rows.append(
            _row(
                "4. `rt-analyze audio` again into the same directory / bare base64 decode",
                f"{au['export_again_vs_b64decode']:.2f}x ({run['export_again_mb_per_s']:.1f} MB/s)",
                "(files written over in place)",
                None,
            )
        )
        rows.append(
            _row(
                "4. `analyzer.audio.load_audio` alone / bare base64 decode",
                f"{au['load_audio_vs_b64decode']:.2f}x ({run['load_audio_mb_per_s']:.1f} MB/s)",
                "(decoding without the WAV writing)",
                None,
            )
        )
    if cv := results.get("convert"):
        rows.extend(convert_rows(cv))
    return rows


def convert_rows(cv: dict[str, Any]) -> list[dict[str, Any]]:
    big = cv["points"][-1]
    times = ", ".join(f"{p['journal_mb']:.0f} MB: {p['convert_s']:.1f} s" for p in cv["points"])
    return [
        _row(
            f"6. `convert` / orjson read of the journal's lines ({big['journal_mb']:.0f} MB "
            f"journal, {big['sessions']} sessions)",
            f"{big['convert_vs_read']:.2f}x ({big['convert_s']:.1f} s vs "
            f"{big['read_lines_s']:.1f} s)",
            "(what parsing, redaction and Parquet add)",
            None,
        ),
        _row(
            "6. `convert` peak RSS / journal size",
            f"{big['convert_rss_share_of_journal']:.3f} ({big['convert_peak_rss_mb']:.0f} MB; "
            f"{cv['points'][0]['convert_peak_rss_mb']:.0f} MB at "
            f"{cv['points'][0]['journal_mb']:.0f} MB)",
            "< 0.25",
            big["convert_rss_share_of_journal"] < 0.25,
        ),
        _row(
            "6. convert time scaling (time ~ size^k)",
            f"k = {cv['scaling_exponent']:.2f} ({times})",
            "k <= 1 (linear or better)",
            cv["scaling_exponent"] <= 1.05,
        ),
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| figure | measured | target | met? |", "|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        lines.append(f"| {r['figure']} | {r['measured']} | {r['target']} | {met} |")
    return "\n".join(lines)


def results_markdown(results: dict[str, Any], command: str) -> str:
    m = results["machine"]
    machine_line = (
        f"{m['nproc']} CPUs ({m['cpu']}), {m['memory']}, Linux {m['kernel']}, Python "
        f"{m['python']}, mitmproxy {m['mitmproxy']}, websockets {m['websockets']}, pyarrow "
        f"{m['pyarrow']}, pandas {m['pandas']}; analyzer: {m.get('analyzer', 'plain Python')}"
    )
    return "\n".join(
        [
            RESULTS_START,
            f"Measured {results['finished']} with `{command}` in {results['seconds']:.0f} s on: "
            f"{machine_line}.",
            "",
            markdown_table(summary_rows(results)),
            RESULTS_END,
        ]
    )


def update_readme(readme: Path, block: str) -> None:
    text = readme.read_text() if readme.exists() else ""
    if RESULTS_START in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_START, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    readme.write_text(text)


def _cache_bytecode() -> None:
    """Compile the measured code's bytecode ahead, as an installed package has it: with
    PYTHONDONTWRITEBYTECODE set (as on these machines), each timed run would compile every
    module edited since the last cached copy again (~30 ms a run)."""
    for package in ("analyzer", "addon"):
        compileall.compile_dir(BENCH_DIR.parent / package, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (< 30 s)")
    parser.add_argument(
        "--only", nargs="+", choices=FIGURES, default=list(FIGURES), help="run only these"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="work directory")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite bench/README.md's results"
    )
    args = parser.parse_args(argv)
    _cache_bytecode()
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    started = time.time()
    proxy_sizes = proxy.ProxySizes.quick() if args.quick else proxy.ProxySizes.full()
    analyzer_sizes = analyze.AnalyzerSizes.quick() if args.quick else analyze.AnalyzerSizes.full()
    convert_sizes = convert.ConvertSizes.quick() if args.quick else convert.ConvertSizes.full()
    out: Path = args.out
    work = out / ("quick" if args.quick else "full")
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": lambda: asyncio.run(proxy.throughput(proxy_sizes, work)),
        "delay": lambda: asyncio.run(proxy.delay(proxy_sizes, work)),
        "memory": lambda: asyncio.run(proxy.memory(proxy_sizes, work)),
        "report": lambda: analyze.report_scaling(analyzer_sizes, out),
        "audio": lambda: analyze.audio_export(analyzer_sizes, out),
        "convert": lambda: convert.convert_scaling(convert_sizes, out),
    }
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    for name in FIGURES:
        if name in args.only:
            print(f"{name}:", flush=True)
            step_start = time.time()
            results[name] = steps[name]()
            print(f"  ({time.time() - step_start:.0f} s)", flush=True)
    results["seconds"] = time.time() - started
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / f"results{'-quick' if args.quick else ''}.json"
    results_path.write_text(json.dumps(results, indent=1))
    print()
    print(markdown_table(summary_rows(results)))
    print(f"\n{results['seconds']:.0f} s; all numbers in {results_path}")
    if not args.quick and not args.no_readme and set(args.only) == set(FIGURES):
        update_readme(BENCH_DIR / "README.md", results_markdown(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
