"""A turn whose reply calls a tool shows what the user waited: from the end of speech to the
first audio of the answer after the tool's result, and the tool's own time (issue 19, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def turns(name: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["turns", str(SAMPLES / name), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.mark.parametrize(
    ("name", "whole_wait", "tool_time", "answer"),
    [
        # ga-voice: speech end 544.123 -> call 544.430 -> result 544.521 -> answer audio 544.786
        ("ga-voice.parquet", 662.718, 91.115, "resp_RSFIobmG84jZi34s9Io2Z"),
        ("beta-voice.parquet", 660.912, 95.125, "resp_WSDlY37oZi2AHxKMV9zeE"),
        ("ga-g711-manual.parquet", 573.164, 4.954, "resp_1pLnfyW3ruZIkm30ivvmN"),
    ],
)
def test_the_calling_turn_has_the_whole_wait_and_the_tool_time(
    name: str, whole_wait: float, tool_time: float, answer: str
) -> None:
    rows = turns(name)
    called = [r for r in rows if r["tool_time_ms"] is not None]
    assert len(called) == 1
    turn = called[0]
    assert turn["index"] == 3 and turn["latency_first_audio_ms"] is None  # no audio of its own
    assert turn["latency_answer_first_audio_ms"] == whole_wait
    assert turn["tool_time_ms"] == tool_time
    assert turn["answer_response_id"] == answer
    follow_up = next(r for r in rows if r["response_id"] == answer)
    assert follow_up["trigger"] in ("response.create", "commit")
    # The follow-up's own latency starts at the client's request: shorter than the whole wait.
    assert isinstance(follow_up["latency_first_audio_ms"], float)
    assert follow_up["latency_first_audio_ms"] < whole_wait - tool_time


def test_a_tool_called_while_the_user_speaks_is_no_replys_wait() -> None:
    # GPT-Live calls the tool during the user's next turn, after the previous reply ended: that
    # turn's own reply is the answer, so no turn gets a whole wait.
    assert all(r["tool_time_ms"] is None for r in turns("live-voice.parquet"))


def test_report_and_latency_summary_show_it_under_one_name() -> None:
    runner = CliRunner()
    report = json.loads(
        runner.invoke(
            main, ["report", str(SAMPLES / "ga-voice.parquet"), "--format", "json"]
        ).stdout
    )
    turn = report["sessions"][0]["turns"][2]
    assert turn["latency_ms"]["answer_first_audio"] == 662.718 and turn["tool_time_ms"] == 91.115
    assert report["summary"]["latency_ms"]["answer_first_audio"]["count"] == 1
    table = runner.invoke(
        main, ["report", str(SAMPLES / "ga-voice.parquet")], env={"COLUMNS": "100"}
    ).stdout
    row = next(line for line in table.splitlines() if line.startswith("│ 3 "))
    assert "│     663 │" in row
    slowest = runner.invoke(
        main, ["slowest", str(SAMPLES), "--metric", "answer_first_audio", "--format", "json"]
    )
    assert [r["latency_ms"] for r in json.loads(slowest.stdout)] == [
        662.718,
        660.912,
        573.164,
        551.218,
    ]


def test_html_report_has_the_whole_wait_column(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["report", str(SAMPLES / "ga-voice.parquet"), "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    assert "<th>answer_first_audio (ms)</th>" in html
    # turn 3: no first audio of its own (–), 663 ms until the answer's
    assert (
        '<td class="num">3</td><td>vad</td><td>completed</td><td class="num">–</td>'
        '<td class="num">–</td><td class="num">310</td><td class="num">121</td>'
        '<td class="num">663</td>' in html
    )
