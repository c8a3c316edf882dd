"""``conversation`` and ``audio`` take the dataset filters and output formats of the other
commands (issue 19, item 6)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from analyzer.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GA_SESSION = "c720777e-fae1-4d88-a1f7-b565a10ba3f8"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_conversation_of_one_session_of_a_directory_in_each_format() -> None:
    rows = json.loads(run("conversation", SAMPLES, "--session", "c720", "--format", "json").stdout)
    assert {r["session_id"] for r in rows} == {GA_SESSION}
    assert [(r["position"], r["role"], r["kind"]) for r in rows[4:7]] == [
        (5, "user", "message"),
        (6, None, "function_call"),
        (7, None, "function_call_output"),
    ]
    table = list(csv.DictReader(io.StringIO(run("conversation", SAMPLES, "--session", "c720",
                                               "--format", "csv").stdout)))  # fmt: skip
    assert len(table) == len(rows) == 10 and table[0]["transcript"] == "Tell me a bedtime story."
    text = run("conversation", SAMPLES, "--model", "gpt-live-1", "--wide").stdout
    assert text.count("session ") == 2 and GA_SESSION not in text


def test_conversation_filters_that_match_nothing_are_an_error() -> None:
    result = run("conversation", SAMPLES, "--session", "nosuch")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --session nosuch matches no session; the captures hold")
    result = run("conversation", SAMPLES, "--since", "2030-01-01")
    assert result.exit_code == 1 and "matches no session" in result.stderr


def test_conversation_of_gpt_live_is_the_reports() -> None:
    # The frame-by-frame path found no items in GPT-Live sessions; the event table does.
    rows = json.loads(
        run("conversation", SAMPLES / "live-voice.parquet", "--format", "json").stdout
    )
    assert len(rows) == 11 and rows[5]["name"] == "get_weather"


def test_audio_of_the_filtered_sessions_only(tmp_path: Path) -> None:
    out = tmp_path / "wav"
    result = run("audio", SAMPLES, "-o", out, "--session", "c720", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["warnings"] == [] and len(listed["files"]) == 9
    assert sorted(p.name for p in out.iterdir()) == ["c720777e"]
    assert listed["files"][-1] == str(out / "c720777e" / "session-stereo.wav")
    assert result.stderr == f"Wrote 9 file(s) to {out}.\n"


def test_audio_filters_that_match_nothing_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "wav"
    result = run("audio", SAMPLES, "-o", out, "--model", "nosuch")
    assert result.exit_code == 1 and "--model nosuch matches no session" in result.stderr
    assert list(out.iterdir()) == []  # checked (and made) before reading, left empty
