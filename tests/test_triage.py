"""``rt-analyze check`` (a CI gate) and ``rt-analyze slowest`` on the samples: exact verdicts and
rows (issue 19)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from analyzer.cli import main
from analyzer.gate import RuleError, parse_rule
from tests.golden.freeze import corpus_capture

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GA = SAMPLES / "ga-voice.parquet"
GA_SESSION = "c720777e-fae1-4d88-a1f7-b565a10ba3f8"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="rt-analyze")


# ga-voice's turns (from `rt-analyze turns`): first_audio 260.157, 257.925, -, 260.541, 258.843;
# perceived 460.157, 457.925, -, -, 458.843; response_done max 1718.578; transcription 121.104,
# 121.9, 121.15, -, 122.666; turn 1 interrupted (a barge-in); no stalls, no server errors.
def test_check_gives_one_verdict_per_rule_and_fails_when_one_fails() -> None:
    result = run(
        "check", GA,
        "--max", "p50(first_audio)=260ms",
        "--max", "p90(first_audio)=0.26s",
        "--max", "p99(perceived_first_audio)=500",
        "--max", "max(response_done)=2s",
        "--max", "mean(transcription)=120ms",
        "--max", "errors=0",
        "--max", "turns=4",
        "--max", "interrupted=1",
        "--max", "stalls=0",
        "--max", "p50(first_text)=1s",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "PASS p50(first_audio) 259.5 ms <= 260 ms (4 turns)",
        "FAIL p90(first_audio) 260.4 ms > 260 ms (4 turns: few for a percentile)",
        "PASS p99(perceived_first_audio) 460.1 ms <= 500 ms (3 turns: few for a percentile)",
        "PASS max(response_done) 1,718.6 ms <= 2,000 ms (5 turns)",
        "FAIL mean(transcription) 121.7 ms > 120 ms (4 turns)",
        "PASS errors 0 <= 0",
        "FAIL turns 5 > 4",
        "PASS interrupted 1 <= 1",
        "PASS stalls 0 <= 0",
        "FAIL p50(first_text): no turn has first_text, limit 1,000 ms",
    ]
    assert result.stderr == ""


def test_check_passes_with_exit_0() -> None:
    result = run("check", GA, "--max", "p90(first_audio)=800ms", "--max", "errors=0")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "PASS p90(first_audio) 260.4 ms <= 800 ms (4 turns: few for a percentile)\n"
        "PASS errors 0 <= 0\n"
    )


def test_check_as_json() -> None:
    result = run("check", GA, "--max", "p90(first_audio)=800ms", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "passed": True,
        "verdicts": [
            {
                "rule": "p90(first_audio)=800ms",
                "name": "p90(first_audio)",
                "passed": True,
                "measured": 260.426,
                "limit": 800.0,
                "unit": "ms",
                "turns": 4,
            }
        ],
    }


def test_check_counts_the_servers_error_events(tmp_path: Path) -> None:
    corpus = corpus_capture(tmp_path)  # the hostile corpus: four server error events
    result = run("check", corpus, "--max", "errors=3")
    assert result.exit_code == 1
    assert result.stdout == "FAIL errors 4 > 3\n"


def test_check_across_every_sample() -> None:
    result = run("check", SAMPLES, "--max", "p90(first_audio)=800ms", "--max", "stalls=0")
    # The Gemini sample's peer streams its replies at about real time (stream_ratio < 1): a
    # player starting at the first chunk would run dry 59 times.
    assert result.exit_code == 1
    assert result.stdout == (
        "PASS p90(first_audio) 563.7 ms <= 800 ms (25 turns)\nFAIL stalls 59 > 0\n"
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("p95(first_audio)=800ms", "'p95(first_audio)=800ms': p95 is not a statistic; use one "
         "of p50, p90, p99, max, mean."),
        ("p90(first_audo)=800ms", "'p90(first_audo)=800ms': first_audo is not a latency; use "
         "one of response_created, first_transcript, first_audio, first_text, response_done, "
         "transcription, transcription_first_delta, perceived_first_audio, heard_first_audio, "
         "heard_first_voice, barge_in_stop, barge_in_cancel, answer_first_audio."),
        ("warnings=0", "'warnings=0': warnings is not a counter; use one of errors, turns, "
         "interrupted, stalls."),
        ("p90(first_audio)<800", "cannot read the rule 'p90(first_audio)<800'; write "
         "STAT(LATENCY)=LIMIT (p90(first_audio)=800ms) or COUNTER=LIMIT (errors=0)."),
        ("errors=0.5", "cannot read the rule 'errors=0.5'; write STAT(LATENCY)=LIMIT "
         "(p90(first_audio)=800ms) or COUNTER=LIMIT (errors=0)."),
        ("p90(first_audio)=1.2.3s", "'p90(first_audio)=1.2.3s': 1.2.3 is not a number."),
    ],
)  # fmt: skip
def test_a_rule_that_cannot_be_read_is_a_usage_error(rule: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert str(caught.value) == message
    result = run("check", GA, "--max", rule)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for '--max': {message}"


def test_check_needs_a_rule() -> None:
    result = run("check", GA)
    assert result.exit_code == 2 and "Missing option '--max'" in result.stderr


def test_slowest_lists_the_worst_turns_first_with_what_the_user_said() -> None:
    result = run("slowest", GA, "--metric", "first_audio", "-n", "3", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["session_id", "turn", "started", "latency_ms", "trigger", "status", "user_said"],
        [GA_SESSION, "4", "2026-11-23T21:15:44.525Z", "260.541", "response.create",
         "completed", ""],
        [GA_SESSION, "1", "2026-11-23T21:15:36.411Z", "260.157", "vad", "cancelled",
         "Tell me a bedtime story."],
        [GA_SESSION, "5", "2026-11-23T21:15:48.657Z", "258.843", "vad", "completed",
         "Thanks, that's all."],
    ]  # fmt: skip


def test_slowest_as_json_leaves_out_turns_without_the_metric() -> None:
    result = run("slowest", GA, "--metric", "first_audio", "--format", "json")
    rows = json.loads(result.stdout)
    assert [(r["turn"], r["latency_ms"]) for r in rows] == [
        (4, 260.541),
        (1, 260.157),
        (5, 258.843),
        (2, 257.925),
    ]  # turn 3 (the function call) has no audio
    assert rows[3]["user_said"] == "Wait, make it shorter please."


def test_slowest_table_at_100_columns() -> None:
    result = CliRunner().invoke(
        main, ["slowest", str(GA), "-n", "2", "--metric", "response_done"], env={"COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    # The numbers keep their width (the header wraps at "_", never inside a word); what the
    # user said wraps.
    assert [line.rstrip() for line in result.stdout.splitlines()] == [
        "slowest turns by response_done",
        "┏━━━━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃          ┃      ┃                          ┃ response_ ┃                 ┃                       ┃",  # noqa: E501
        "┃ session  ┃ turn ┃ started (UTC)            ┃ done (ms) ┃ trigger         ┃ user said             ┃",  # noqa: E501
        "┡━━━━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ c720777e │    2 │ 2026-11-23T21:15:38.693Z │     1,719 │ vad             │ Wait, make it shorter │",  # noqa: E501
        "│          │      │                          │           │                 │ please.               │",  # noqa: E501
        "│ c720777e │    4 │ 2026-11-23T21:15:44.525Z │     1,469 │ response.create │ -                     │",  # noqa: E501
        "└──────────┴──────┴──────────────────────────┴───────────┴─────────────────┴───────────────────────┘",
    ]  # fmt: skip


def test_slowest_with_a_filter_that_matches_nothing() -> None:
    result = run("slowest", GA, "--session", "nosuch")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --session nosuch matches no session; the captures ")
