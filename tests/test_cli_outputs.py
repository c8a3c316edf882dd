"""Inputs are sacred: no command writes over a file it reads, a capture or a journal without
``--force``, and no two outputs of one command share a file (issue 19)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from analyzer.cli import main
from analyzer.outputs import OutputError, check_outputs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def captures(tmp_path: Path) -> Path:
    """ga-voice (read by the commands) and beta-voice (not read), each Parquet + journal."""
    for name in ("ga-voice", "beta-voice"):
        for suffix in (".parquet", ".jsonl"):
            shutil.copy(SAMPLES / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path


# Every command that writes a file, as (its arguments with OUT where its output goes).
# ``convert`` reads the journal; the others read the Parquet capture.
WRITERS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "report --html": lambda d, out: ["report", d / "ga-voice.parquet", "--html", out],
    "export --turns": lambda d, out: ["export", d / "ga-voice.parquet", "--turns", out],
    "export --sizes": lambda d, out: ["export", d / "ga-voice.parquet", "--sizes", out],
    "export --otlp": lambda d, out: ["export", d / "ga-voice.parquet", "--otlp", out],
    "convert -o": lambda d, out: ["convert", d / "ga-voice.jsonl", "-o", out],
}
OPTION = {name: name.split()[1] for name in WRITERS}


def _read_by(name: str, d: Path) -> Path:
    return d / ("ga-voice.jsonl" if name.startswith("convert") else "ga-voice.parquet")


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_no_command_writes_over_the_file_it_reads(captures: Path, name: str) -> None:
    target = _read_by(name, captures)
    before = digest(target)
    result = run(*WRITERS[name](captures, target))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {OPTION[name]} {target} is a file this command reads; write to another file "
        "(or pass --force to overwrite it).\n"
    )
    assert digest(target) == before


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize(
    ("victim", "kind"),
    [("beta-voice.parquet", "an rt-analyze capture"), ("beta-voice.jsonl", "a journal")],
)
def test_no_command_writes_over_a_capture_or_journal_without_force(
    captures: Path, name: str, victim: str, kind: str
) -> None:
    target = captures / victim
    before = digest(target)
    result = run(*WRITERS[name](captures, target))
    assert result.exit_code == 1
    if name in ("export --turns", "export --sizes") and target.suffix == ".jsonl":
        # refused before that: tables are .csv or .parquet
        assert result.stderr == f"Error: {target}: name tables .parquet or .csv.\n"
    else:
        assert result.stderr == (
            f"Error: {OPTION[name]} {target} is {kind}, which cannot be recorded again; write "
            "to another file (or pass --force to overwrite it).\n"
        )
    assert digest(target) == before


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_force_overwrites_a_capture_the_command_does_not_read(captures: Path, name: str) -> None:
    target = captures / "beta-voice.parquet"
    before = digest(target)
    result = run(*WRITERS[name](captures, target), "--force")
    assert result.exit_code == 0, result.output
    assert digest(target) != before


def test_convert_defaults_to_the_journals_parquet_and_keeps_a_readable_one(
    captures: Path,
) -> None:
    journal, parquet = captures / "ga-voice.jsonl", captures / "ga-voice.parquet"
    os.utime(journal, (0, 0))  # an old journal: not a run still being recorded
    before = digest(parquet)
    result = run("convert", journal)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the output (-o) {parquet} is an rt-analyze capture, which cannot be recorded "
        "again; write to another file (or pass --force to overwrite it).\n"
    )
    assert digest(parquet) == before
    # After a crash the Parquet file has no footer: rebuilding it needs no --force.
    parquet.write_bytes(parquet.read_bytes()[:100_000])
    result = run("convert", journal)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Wrote {parquet}: 1 session(s), 621 frame(s).\n"


@pytest.mark.parametrize(
    ("first", "second"),
    [("--turns", "--sizes"), ("--turns", "--otlp"), ("--sizes", "--otlp")],
)
def test_two_outputs_of_one_export_never_share_a_file(
    captures: Path, first: str, second: str
) -> None:
    out = captures / "out.csv"
    same = captures / "." / "out.csv"  # another spelling of the same path
    args: list[str | Path] = ["export", captures / "ga-voice.parquet", first, out, second, same]
    args.append("--force")
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {first} and {second} both write {same}, so the second would replace the "
        "first; give each its own file.\n"
    )
    assert not out.exists()


def test_a_hard_link_to_a_capture_is_the_capture(captures: Path) -> None:
    link = captures / "link.csv"
    os.link(captures / "ga-voice.parquet", link)
    result = run("export", captures / "ga-voice.parquet", "--turns", link)
    assert result.exit_code == 1 and "is a file this command reads" in result.stderr


def test_report_html_is_not_the_prices_file(captures: Path) -> None:
    prices = captures / "prices.json"
    prices.write_text(json.dumps({"gpt-realtime": {"output_audio": 0}}))
    result = run("report", captures / "ga-voice.parquet", "--prices", prices, "--html", prices)
    assert result.exit_code == 1
    assert f"--html {prices} is a file this command reads" in result.stderr
    assert json.loads(prices.read_text()) == {"gpt-realtime": {"output_audio": 0}}


def test_audio_refuses_a_file_as_its_directory(captures: Path) -> None:
    target = captures / "beta-voice.parquet"
    before = digest(target)
    result = run("audio", captures / "ga-voice.parquet", "-o", target)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: -o {target} is an existing file, not a directory; pass a directory (it is "
        "created if missing).\n"
    )
    assert digest(target) == before


def test_the_check_itself() -> None:
    check_outputs({"--a": None, "--b": None}, [], force=False)  # nothing asked: nothing to check
    with pytest.raises(OutputError, match="--a and --b both write"):
        check_outputs({"--a": Path("x"), "--b": Path("./x")}, [], force=True)
