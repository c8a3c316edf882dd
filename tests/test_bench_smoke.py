"""The bench's machinery runs end to end (``python -m bench --quick``); no performance checks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.__main__ import markdown_table, summary_rows, update_readme

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_quick_bench_runs_every_figure_and_prints_ratios(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads((tmp_path / "results-quick.json").read_text())
    for figure in ("throughput", "delay", "memory", "report", "audio", "convert"):
        assert figure in results
    assert results["throughput"]["addon_vs_none"] > 0
    assert results["delay"]["runs"] and all(r["frames"] > 0 for r in results["delay"]["runs"])
    assert {r["variant"] for r in results["memory"]["runs"]} == {"addon", "none", "dump"}
    # CPU ticks are 10 ms: a quick run may see none of the writer process, but it is reported
    assert results["throughput"]["median_writer_cpu_us_per_frame"] >= 0
    assert len(results["report"]["points"]) == 2
    commands = results["report"]["other_commands"]["commands"]
    assert set(commands) == {"latency", "turns", "conversation", "slowest", "export --turns"}
    assert all(c["s"] > 0 and c["peak_rss_mb"] > 0 for c in commands.values())
    assert [p["sessions"] for p in results["convert"]["points"]] == [1, 3]
    assert "| 1. capture throughput, addon / no addon |" in out.stdout
    assert "x (" in out.stdout  # ratios are printed


def test_summary_says_which_targets_are_met() -> None:
    results = {
        "memory": {
            "growth_mb": {"addon": 12.0, "none": 350.0},
            "runs": [
                {"variant": "addon", "traffic_mb": 355.0, "rss_before_mb": 75.0},
                {"variant": "none", "traffic_mb": 355.0, "rss_before_mb": 71.0},
            ],
        },
        "report": {
            "points": [
                {"file_mb": 10.0, "report_s": 2.0, "read_columns_s": 1.0},
                {
                    "file_mb": 1000.0,
                    "report_s": 40.0,
                    "read_columns_s": 4.0,
                    "report_vs_read": 10.0,
                    "report_peak_rss_mb": 100.0,
                    "report_rss_share_of_file": 0.1,
                },
            ],
            "scaling_exponent": 0.65,
        },
        "convert": {
            "points": [
                {"journal_mb": 10.0, "convert_s": 2.0, "convert_peak_rss_mb": 140.0},
                {
                    "journal_mb": 1000.0,
                    "sessions": 998,
                    "convert_s": 30.0,
                    "read_lines_s": 3.0,
                    "convert_vs_read": 10.0,
                    "convert_peak_rss_mb": 300.0,
                    "convert_rss_share_of_journal": 0.3,
                },
            ],
            "scaling_exponent": 0.59,
        },
    }
    rows = summary_rows(results)
    met = {r["figure"].split(" (")[0]: r["met"] for r in rows}
    assert met["3. mitmdump RSS growth over one long session"] is True
    assert met["4. `report --format json` / `read_table` of every column but audio"] is False
    assert met["4. `report` peak RSS / file size"] is True  # 0.1 < 0.15
    assert met["6. `convert` peak RSS / journal size"] is False
    assert met["6. convert time scaling"] is True
    measured = {r["figure"]: r["measured"] for r in rows}
    rss = measured["3. mitmdump RSS after its warm-up session, addon / no addon"]
    assert rss.startswith("1.06x (75 vs 71 MB")
    assert measured["6. `convert` peak RSS / journal size"] == "0.300 (300 MB; 140 MB at 10 MB)"
    assert markdown_table(rows).splitlines()[0] == "| figure | measured | target | met? |"


def test_readme_results_block_is_replaced_not_appended(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Bench\n\nintro\n")
    update_readme(readme, "<!-- results:start -->\nA\n<!-- results:end -->")
    update_readme(readme, "<!-- results:start -->\nB\n<!-- results:end -->")
    text = readme.read_text()
    assert text.count("results:start") == 1
    assert "B" in text and "\nA\n" not in text
    assert text.startswith("# Bench\n\nintro\n")


def test_ab_runs_each_side_from_its_own_tree(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m bench.ab``: HEAD's analyzer against the working tree's, on a sample."""
    from bench.ab import export_tree, main

    sample = Path(__file__).resolve().parent.parent / "samples" / "ga-voice.parquet"
    # Each run asserts that it imported the analyzer of its own tree (not the editable install's).
    assert main(["HEAD", "--runs", "1", "--capture", str(sample)]) == 0
    out = capsys.readouterr().out
    assert "A HEAD: median" in out and "B working tree: median" in out
    assert "B / A: " in out and "reports " in out
    with tempfile.TemporaryDirectory() as tmp:
        tree = export_tree("HEAD", Path(tmp))
        assert (tree / "analyzer" / "report.py").read_bytes() == subprocess.run(
            ["git", "show", "HEAD:analyzer/report.py"], capture_output=True, check=True
        ).stdout


def test_ab_says_in_one_line_what_it_cannot_compare(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.ab import main

    sample = Path(__file__).resolve().parent.parent / "samples" / "ga-voice.parquet"
    assert main(["no-such-ref", "--runs", "1", "--capture", str(sample)]) == 2
    assert capsys.readouterr().out.startswith("cannot read 'no-such-ref' from git: ")
    assert main(["HEAD", "--capture", "/nonexistent.parquet"]) == 2
    assert "no capture at /nonexistent.parquet" in capsys.readouterr().out
