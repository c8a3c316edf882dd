"""Every error is one true sentence naming the file and the fix (issue 19): bad option values,
broken and unfinished captures, filters that match nothing, duplicate sessions."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from analyzer.cli import main
from analyzer.compare import render_comparison

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
GA_SESSION = "c720777e-fae1-4d88-a1f7-b565a10ba3f8"
BETA_SESSION = "95638d7d-0151-4c6c-8992-9786a9d59a28"
GA_HELD = (
    f"the captures hold 1 session(s): {GA_SESSION}; models gpt-realtime (1); dialects ga (1); "
    "started 2026-11-23T21:15:34Z"
)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="rt-analyze")


def fails(result: Result, exit_code: int, message: str) -> None:
    """The command failed with ``exit_code`` and its last line of stderr is ``message``; no
    traceback, nothing "unexpected", nothing on stdout."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == message


def usage_error(result: Result, message: str) -> None:
    """A bad option value: click's usage error (exit 2), ``Error: ...`` last."""
    fails(result, 2, message)
    assert result.stderr.startswith("Usage: rt-analyze ")


@pytest.fixture
def captures(tmp_path: Path) -> Path:
    for name in ("ga-voice", "beta-voice"):
        for suffix in (".parquet", ".jsonl"):
            shutil.copy(SAMPLES / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


# --- option values -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "99"])
def test_compare_bootstrap_below_100_is_refused(captures: Path, value: str) -> None:
    result = run("compare", captures / "ga-voice.parquet", captures / "beta-voice.parquet",
                 "--bootstrap", value)  # fmt: skip
    usage_error(
        result, f"Error: Invalid value for '--bootstrap': {value} is not in the range x>=100."
    )


def test_compare_needs_two_sides(captures: Path) -> None:
    usage_error(
        run("compare", captures / "ga-voice.parquet"),
        "Error: compare needs two sides: pass B, or tell two parts of A apart with --a-where / "
        "--b-where (e.g. --a-where host=proxy-eu --b-where host=proxy-us).",
    )


@pytest.mark.parametrize(
    "command", [["report"], ["latency"], ["sizes"], ["turns"], ["export", "--turns", "t.csv"]]
)
def test_an_empty_session_id_is_refused(captures: Path, command: list[str]) -> None:
    usage_error(
        run(command[0], captures / "ga-voice.parquet", *command[1:], "--session", ""),
        "Error: Invalid value for --session: an empty session id would match every session; "
        "pass an id or an id prefix.",
    )


@pytest.mark.parametrize("command", ["report", "turns"])
def test_master_without_spark_is_refused(captures: Path, command: str) -> None:
    usage_error(
        run(command, captures / "ga-voice.parquet", "--master", "spark://x:7077"),
        "Error: Invalid value for --master: it is the Spark master URL, used only with "
        "--engine spark; add --engine spark or drop --master.",
    )


def test_since_after_until_is_refused(captures: Path) -> None:
    usage_error(
        run("latency", captures, "--since", "2027-01-01", "--until", "2026-01-01"),
        "Error: Invalid value for --since: 2027-01-01 is not before --until 2026-01-01, so no "
        "session can match; swap them.",
    )


def test_a_where_dialect_is_one_of_the_dialects(captures: Path) -> None:
    usage_error(
        run("compare", captures, "--a-where", "dialect=ga", "--b-where", "dialect=klingon"),
        "Error: Invalid value for dialect=klingon: 'klingon' is not a dialect; use one of beta, "
        "ga, live, gemini, other.",
    )


# --- outputs ---------------------------------------------------------------------------------


def test_audio_into_a_directory_that_cannot_be_made(captures: Path) -> None:
    under_a_file = captures / "ga-voice.parquet" / "wav"
    fails(
        run("audio", captures / "ga-voice.parquet", "-o", under_a_file),
        1,
        f"Error: cannot create the directory {under_a_file} (Not a directory); pass -o a "
        "directory you can write to.",
    )


# --- broken and unfinished captures ----------------------------------------------------------


def test_an_empty_parquet_does_not_point_at_a_journal_that_is_not_there(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    empty.touch()
    fails(
        run("report", empty),
        1,
        f"Error: {empty} is empty (0 bytes) and there is no empty.jsonl beside it to read "
        "instead; pass another capture.",
    )


def test_a_text_file_named_parquet(tmp_path: Path) -> None:
    text = tmp_path / "notes.parquet"
    text.write_text("hello\n")
    fails(
        run("latency", text),
        1,
        f"Error: {text} is not a Parquet file (renamed?); pass a capture written by rt-analyze "
        "(.parquet or .jsonl).",
    )


def test_convert_of_a_capture_in_the_current_format(captures: Path) -> None:
    current = captures / "current.parquet"
    assert run("convert", captures / "ga-voice.parquet", "-o", current).exit_code == 0
    fails(
        run("convert", current, "-o", captures / "again.parquet"),
        1,
        f"Error: {current} is in the current format already: analyze it as it is (rt-analyze "
        f"report {current}); convert rebuilds a capture from a .jsonl journal or an older "
        ".parquet.",
    )
    assert not (captures / "again.parquet").exists()


def _recording(captures: Path) -> tuple[Path, Path]:
    """ga-voice as a run cut short: a Parquet file without its footer, a journal without its
    run_end record."""
    parquet, journal = captures / "ga-voice.parquet", captures / "ga-voice.jsonl"
    parquet.write_bytes(parquet.read_bytes()[:100_000])
    lines = journal.read_bytes().splitlines(keepends=True)
    assert b'"record":"run_end"' in lines[-1]
    journal.write_bytes(b"".join(lines[:-1]))
    return parquet, journal


def test_a_capture_still_being_recorded_is_called_so(captures: Path) -> None:
    parquet, journal = _recording(captures)
    result = run("latency", parquet, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("Warning: ga-voice.parquet is still being recorded (its ")
    assert result.stderr.endswith(
        " s ago and the run has not ended); read ga-voice.jsonl as far as it goes.\n"
    )
    converted = run("convert", journal)
    assert converted.exit_code == 1 and converted.stderr.startswith(
        f"Error: {journal} is still being recorded (written "
    )
    assert converted.stderr.endswith(
        "s ago, and the run has not ended): the recorder finishes ga-voice.parquet when the "
        "proxy stops; convert then, or pass -o OTHER.parquet for a copy so far.\n"
    )


def test_a_capture_whose_recorder_was_killed_is_called_so(captures: Path) -> None:
    parquet, journal = _recording(captures)
    os.utime(journal, (1_000_000_000, 1_000_000_000))  # last written long ago
    result = run("latency", parquet, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "Warning: ga-voice.parquet was never finished: the recorder stopped without closing it "
        f"(killed?); read ga-voice.jsonl instead. `rt-analyze convert {journal}` rebuilds it.\n"
    )
    assert json.loads(result.stdout)["latency"][0]["count"] == 5


@pytest.mark.parametrize("command", ["report", "latency", "sizes", "turns", "conversation"])
def test_broken_files_in_a_directory_are_skipped_with_one_warning_each(
    captures: Path, command: str
) -> None:
    (captures / "beta-voice.parquet").unlink()
    (captures / "beta-voice.jsonl").unlink()
    (captures / "ga-voice.jsonl").unlink()
    (captures / "empty.parquet").touch()
    (captures / "text.parquet").write_text("hello\n")
    result = run(command, captures, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: skipped a file: {captures / 'empty.parquet'} is empty (0 bytes) and there is "
        "no empty.jsonl beside it to read instead; pass another capture.",
        f"Warning: skipped a file: {captures / 'text.parquet'} is not a Parquet file "
        "(renamed?); pass a capture written by rt-analyze (.parquet or .jsonl).",
    ]
    assert ('"frames": 621' if command == "sizes" else GA_SESSION) in result.stdout


def test_a_directory_of_only_broken_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").touch()
    (tmp_path / "b.parquet").touch()
    result = run("report", tmp_path)
    assert result.exit_code == 1 and "unexpected" not in result.output
    assert result.stderr.splitlines()[-1] == (
        f"Error: none of the 2 capture files could be read; the first: {tmp_path / 'a.parquet'} "
        "is empty (0 bytes) and there is no a.jsonl beside it to read instead; pass another "
        "capture."
    )


# --- filters that match nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["report"], ["latency"], ["sizes"], ["turns"], ["export", "--turns", "t.csv"]],
)
@pytest.mark.parametrize(
    ("option", "value"),
    [("--session", "nosuch"), ("--model", "nosuch"), ("--since", "2030-01-01T00:00:00Z")],
)
def test_a_filter_that_matches_nothing_says_what_there_is(
    captures: Path, command: list[str], option: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(captures)
    capture = captures / "ga-voice.parquet"
    result = run(command[0], capture, *command[1:], option, value)
    fails(result, 1, f"Error: {option} {value} matches no session; {GA_HELD}.")
    assert not (captures / "t.csv").exists()  # nothing written


def test_compare_side_that_matches_nothing(captures: Path) -> None:
    result = run(
        "compare", captures / "ga-voice.parquet", captures / "beta-voice.parquet",
        "--b-where", "dialect=ga",
    )  # fmt: skip
    fails(
        result,
        1,
        f"Error: side B: --dialect ga matches no session; the captures hold 1 session(s): "
        f"{BETA_SESSION}; models gpt-4o-realtime-preview-2024-12-17 (1); dialects beta (1); "
        "started 2026-11-23T21:15:52Z.",
    )


def test_a_100_kb_where_is_answered_at_once_in_a_line(captures: Path) -> None:
    long = GA_SESSION + "x" * 100_000
    result = run("compare", captures, "--a-where", f"session={long}", "--b-where", "dialect=ga")
    fails(
        result,
        1,
        f"Error: side A: --session {long[:39]}… matches no session; the captures hold 2 "
        f"session(s): {GA_SESSION}, {BETA_SESSION}; models gpt-realtime (1), "
        "gpt-4o-realtime-preview-2024-12-17 (1); dialects ga (1), beta (1); started "
        "2026-11-23T21:15:34Z to 2026-11-23T21:15:52Z.",
    )


def test_compare_labels_are_cut_before_rich_folds_them() -> None:
    """rich folds one long word in quadratic time (100 kB: 40 s); the label is cut first."""
    out = io.StringIO()
    empty_side = {"sessions": 0, "turns": 0}
    result = {
        "a": "fleet/ --a-where session=" + "x" * 100_000,
        "b": "fleet/ --b-where host=proxy-us",
        "counts": {"a": empty_side, "b": empty_side},
        "latency_ms": {},
    }
    render_comparison(result, Console(file=out, width=100))
    assert out.getvalue().splitlines()[:2] == [
        "A: fleet/ --a-where session=" + "x" * 34 + "… (0 sessions, 0 turns)",
        "B: fleet/ --b-where host=proxy-us (0 sessions, 0 turns)",
    ]


# --- the same session in two files ------------------------------------------------------------


@pytest.mark.parametrize("command", ["turns", "conversation"])
def test_a_session_in_two_files_is_read_once_with_a_warning(captures: Path, command: str) -> None:
    copy = captures / "z-copy" / "ga-voice.parquet"  # after the first, in any order
    copy.parent.mkdir()
    shutil.copy(captures / "ga-voice.parquet", copy)
    result = run(command, captures / "ga-voice.parquet", copy, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == {"turns": 5, "conversation": 10}[command]
    assert result.stderr == (
        f"Warning: 1 session(s) of {copy} ({GA_SESSION}) are also in "
        f"{captures / 'ga-voice.parquet'}, from the same run: read once, from "
        f"{captures / 'ga-voice.parquet'}; remove one of the copies.\n"
    )


def test_a_parquet_capture_cut_inside_its_magic_is_unfinished_not_foreign(tmp_path: Path) -> None:
    """Cut to its first bytes ("PA"), a capture is still an unfinished Parquet file (found by a
    hypothesis run that cut it at a tiny offset)."""
    parquet = tmp_path / "cut.parquet"
    parquet.write_bytes((SAMPLES / "ga-voice.parquet").read_bytes()[:2])
    fails(
        run("report", parquet),
        1,
        f"Error: {parquet} is an unfinished Parquet file (it has no footer: still being "
        "recorded, or the recorder was killed), and there is no cut.jsonl beside it to read "
        "instead; pass its journal.",
    )
