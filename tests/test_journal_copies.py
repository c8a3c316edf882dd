"""A big journal is read through the Parquet copy ``convert`` makes of it
(analyzer/journal_copies.py): the same answers as the journal read whole, in bounded memory."""

from __future__ import annotations

import gc
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import analyzer.journal_copies
from analyzer.cli import main as cli
from analyzer.dataset import open_dataset
from analyzer.dataset_analysis import report_parts
from tests.golden.freeze import command_lines, corpus_capture, golden_path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
JOURNALS = sorted(p.name for p in SAMPLES.glob("*.jsonl"))
# The commands that read through the dataset (the others read captures whole).
COMMANDS = ("report", "turns", "latency-per-turn", "sizes-session")


converted: list[Path] = []


@pytest.fixture
def every_journal_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer.journal_copies, "READ_WHOLE_MAX_BYTES", 0)
    convert = analyzer.journal_copies.convert_journal

    def counted(journal: Path, out: Path | None = None) -> Any:
        converted.append(journal)
        return convert(journal, out)

    monkeypatch.setattr(analyzer.journal_copies, "convert_journal", counted)


def _answers(journal: Path, golden: str) -> None:
    expected = json.loads(golden_path(golden).read_text(encoding="utf-8"))
    converted.clear()
    for name, args in command_lines(journal):
        if name in COMMANDS:
            result = CliRunner().invoke(cli, args)
            got = json.loads(result.stdout.replace(str(journal), "CAPTURE"))
            assert (result.exit_code, got) == (0, expected[name]["stdout"]), f"{golden}: {name}"
    assert converted == [journal] * len(COMMANDS)  # each command read the journal's copy


@pytest.mark.parametrize("name", JOURNALS)
@pytest.mark.usefixtures("every_journal_copied")
def test_a_journal_read_through_its_copy_answers_as_read_whole(name: str) -> None:
    _answers(SAMPLES / name, name)


@pytest.mark.usefixtures("every_journal_copied")
def test_hostile_frames_read_through_the_copy_answer_as_read_whole(tmp_path: Path) -> None:
    """Binary frames, frames that are not JSON, bad audio (the corpus)."""
    _answers(corpus_capture(tmp_path / "run").with_suffix(".jsonl"), "corpus.jsonl")


@pytest.mark.usefixtures("every_journal_copied")
def test_the_copy_is_private_made_once_and_removed_with_the_dataset(tmp_path: Path) -> None:
    journal = tmp_path / "torn.jsonl"
    text = (SAMPLES / "ga-voice.jsonl").read_bytes()
    journal.write_bytes(text[: text.rindex(b"\n", 0, len(text) - 1) + 40])  # a torn last line
    dataset = open_dataset([journal])
    first = report_parts(dataset)
    (copy,) = dataset.journal_copies.made.values()
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    mtime = copy.stat().st_mtime_ns
    assert len(report_parts(dataset).sessions) == len(first.sessions) == 1
    assert copy.stat().st_mtime_ns == mtime  # the second pass read the same copy
    assert dataset.warnings == [
        "torn.jsonl: skipped a torn last line (the recorder stopped mid-write)."
    ]
    del dataset, first
    gc.collect()
    assert not copy.parent.exists()


def test_small_journals_are_read_whole(tmp_path: Path) -> None:
    dataset = open_dataset([SAMPLES / "ga-voice.jsonl"])
    report_parts(dataset)
    assert dataset.journal_copies.made == {}
