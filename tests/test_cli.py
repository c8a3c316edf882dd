"""The rt-analyze CLI: every command, its help, and one-line errors on bad input."""

from __future__ import annotations

import csv
import importlib
import io
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from analyzer.cli import main
from tests.capture_factory import record_sessions, seed_capture, seed_events
from tests.test_turns import ga_barge_in_session


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, text: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert text in lines[0]


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    return seed_capture(tmp_path / "seed")


def test_every_command_has_help_with_an_example() -> None:
    assert set(main.commands) >= {"report", "latency", "sizes", "conversation", "convert", "audio"}
    for name, command in main.commands.items():
        assert command.help, f"{name} has no help"
        result = run(name, "--help")
        assert result.exit_code == 0 and "Example" in result.output, name
    assert "Example" in run("--help").output


def test_report_json_is_clean_json_on_stdout(seed: Path) -> None:
    result = run("report", seed, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    turn = report["sessions"][0]["turns"][0]
    assert turn["user_transcript"].strip() == "讲一个睡前故事"
    assert report["summary"]["usage"]["total_tokens"] == 1606


def test_report_table_shows_turns_and_cost(seed: Path) -> None:
    result = run("report", seed)
    assert result.exit_code == 0, result.output
    assert "讲一个睡前故事" in result.stdout and "1,606" in result.stdout
    assert "estimate" in result.stdout


def test_report_with_a_prices_file(seed: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o-realtime-preview-2024-10-01": {"output_audio": 0}}))
    result = run("report", seed, "--format", "json", "--prices", prices)
    assert result.exit_code == 0, result.output
    # 8 x $5 + 18 x $100 + 316 x $20 per 1M tokens, output audio now free
    assert json.loads(result.stdout)["sessions"][0]["cost"]["usd"] == 0.00816
    prices.write_text("{")
    assert_one_line_error(run("report", seed, "--prices", prices), "not valid JSON")
    assert_one_line_error(
        run("report", seed, "--prices", tmp_path / "missing.json"), "does not exist"
    )


def test_latency_formats(seed: Path) -> None:
    table = run("latency", seed)
    assert table.exit_code == 0 and "first_audio" in table.stdout and "900" in table.stdout
    data = json.loads(run("latency", seed, "--format", "json").stdout)
    rows = {(r["scope"], r["metric"]): r for r in data["latency"]}
    assert rows[("all", "first_audio")]["p50"] == 900.0  # the metric's one name
    assert data["streaming"][-1]["responses_with_audio"] == 1
    rows_csv = list(csv.DictReader(io.StringIO(run("latency", seed, "--format", "csv").stdout)))
    assert {r["metric"] for r in rows_csv} >= {"first_audio", "perceived_first_audio"}
    per_turn = list(
        csv.DictReader(io.StringIO(run("latency", seed, "--per-turn", "--format", "csv").stdout))
    )
    assert per_turn[0]["latency_first_transcript_ms"] == "700.0"
    assert run("latency", seed, "--per-turn").exit_code == 0


@pytest.mark.parametrize("by", ["event", "direction", "session"])
def test_sizes_by_each_grouping(seed: Path, by: str) -> None:
    data = json.loads(run("sizes", seed, "--by", by, "--format", "json").stdout)
    assert data["by"] == by and data["total"]["frames"] == 19
    assert data["total"]["audio_b64_bytes"] == 20  # 8 + 4, and 8 in the created item (issue 20)
    assert sum(r["frames"] for r in data["rows"]) == 19
    table = run("sizes", seed, "--by", by)
    assert table.exit_code == 0 and "total" in table.stdout
    rows = list(
        csv.DictReader(io.StringIO(run("sizes", seed, "--by", by, "--format", "csv").stdout))
    )
    assert sum(int(r["frames"]) for r in rows) == 19


def test_conversation_formats(seed: Path) -> None:
    items = json.loads(run("conversation", seed, "--format", "json").stdout)
    assert [i["role"] for i in items] == ["user", "assistant"]
    assert items[0]["transcript"] == "讲一个睡前故事\n"
    table = run("conversation", seed)
    assert table.exit_code == 0 and "讲一个睡前故事" in table.stdout
    rows = list(csv.DictReader(io.StringIO(run("conversation", seed, "--format", "csv").stdout)))
    assert rows[1]["role"] == "assistant"


def test_turns_csv_and_json(seed: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("turns", seed).stdout)))
    assert rows[0]["trigger"] == "vad" and rows[0]["latency_first_audio_ms"] == "900.0"
    assert json.loads(run("turns", seed, "--format", "json").stdout)[0]["total_tokens"] == 1606


def test_a_directory_of_runs_is_one_capture(tmp_path: Path) -> None:
    record_sessions(tmp_path, {"s-a": ga_barge_in_session()}, run_id="rt-a")
    record_sessions(tmp_path, {"s-b": seed_events()}, run_id="rt-b")
    result = run("report", tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(s["session_id"] for s in report["sessions"]) == ["s-a", "s-b"]
    assert report["summary"]["turns"] == 4


def test_a_torn_journal_is_read_with_a_warning_on_stderr(seed: Path) -> None:
    journal = seed.with_suffix(".jsonl")
    with open(journal, "ab") as f:
        f.write(b'{"record":"frame","sess')
    result = run("report", journal, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "torn last line" in result.stderr
    assert json.loads(result.stdout)["summary"]["turns"] == 1


def test_convert_rebuilds_parquet_from_a_torn_journal(seed: Path, tmp_path: Path) -> None:
    journal = seed.with_suffix(".jsonl")
    with open(journal, "ab") as f:
        f.write(b'{"record":"frame","sess')
    out = tmp_path / "rebuilt.parquet"
    result = run("convert", journal, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: 1 session(s), 19 frame(s)." in result.stdout
    assert "torn last line" in result.stderr
    again = json.loads(run("report", out, "--format", "json").stdout)
    assert again["summary"]["usage"]["total_tokens"] == 1606


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    assert_one_line_error(run("report", tmp_path / "nope.parquet"), "does not exist")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert_one_line_error(run("latency", text), "neither a .parquet capture nor a .jsonl")
    fake_journal = tmp_path / "notes.jsonl"
    fake_journal.write_text("hello\nworld\n")
    assert_one_line_error(run("sizes", fake_journal), "no capture records")
    foreign = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    assert_one_line_error(run("conversation", foreign), "not an rt-analyze capture")
    assert_one_line_error(run("convert", tmp_path / "nope.jsonl"), "does not exist")
    assert_one_line_error(run("convert", fake_journal), "no capture records")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("report", empty), "no .parquet or .jsonl")


def test_audio_without_the_audio_module_is_a_clear_error(
    seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "analyzer.audio", None)
    assert_one_line_error(run("audio", seed, "-o", tmp_path / "wav"), "audio export")


def audio_export_available() -> bool:
    try:
        module = importlib.import_module("analyzer.audio")
    except ImportError:
        return False
    return hasattr(module, "export_audio")


@pytest.mark.skipif(
    not audio_export_available(),
    reason="analyzer/audio.py (export_audio) is written by another engineer; not there yet",
)
def test_audio_exports_wav_files(seed: Path, tmp_path: Path) -> None:
    result = run("audio", seed, "-o", tmp_path / "wav")
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "wav").rglob("*.wav"))


def test_a_reader_that_stops_early_ends_the_output_quietly() -> None:
    """`rt-analyze report ... | head`: no "unexpected" error when the pipe closes."""
    import fcntl
    import os
    import subprocess

    samples = Path(__file__).resolve().parent.parent / "samples"
    rt_analyze = Path(sys.executable).parent / "rt-analyze"
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # smaller than the report: it must block
    process = subprocess.Popen(
        [str(rt_analyze), "report", str(samples), "--format", "json"],
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.read(10).startswith(b"{")
    # closed, as head does after its lines
    assert process.stderr is not None
    error = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert error == "", error
