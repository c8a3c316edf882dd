"""``rt-analyze convert OLD.parquet``: a capture an earlier recorder wrote (format 1, or events
older than today's) becomes the file its journal converts to, so later commands read recorded
events instead of decoding the frames again."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.recording.capture_frames import iter_capture, open_capture
from analyzer.recording.convert import JournalError, convert_journal
from analyzer.schema import events_are_current
from tests.golden.freeze import corpus_capture, golden_path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Every committed sample: format 1 (recorded before events were), each with its journal.
NAMES = sorted(p.stem for p in SAMPLES.glob("*.parquet"))


def _file(path: Path) -> tuple[str, bytes]:
    """Every row (as JSON text: NaNs compare equal there) and the footer."""
    table = pq.read_table(path)
    footer = pq.ParquetFile(path).metadata.metadata
    assert footer is not None
    return json.dumps(table.to_pylist(), default=repr), footer[b"rt_analyze"]


def _without_events(capture: Path, old: Path) -> Path:
    """``capture`` as a recorder that did not write events would have: the same frames and
    footer, no ``events`` column."""
    footer = pq.ParquetFile(capture).metadata.metadata
    assert footer is not None
    table = pq.read_table(capture).drop_columns(["events"])
    pq.write_table(table.replace_schema_metadata({b"rt_analyze": footer[b"rt_analyze"]}), old)
    return old


def _report(capture: Path) -> Any:
    result = CliRunner().invoke(cli, ["report", str(capture), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.replace(str(capture), "CAPTURE"))


@pytest.mark.parametrize("name", NAMES)
def test_an_old_capture_converts_to_what_its_journal_converts_to(name: str, tmp_path: Path) -> None:
    assert not events_are_current(pq.read_schema(SAMPLES / f"{name}.parquet"))
    from_parquet, facts = convert_journal(SAMPLES / f"{name}.parquet", tmp_path / "p.parquet")
    from_journal, _ = convert_journal(SAMPLES / f"{name}.jsonl", tmp_path / "j.parquet")
    assert events_are_current(pq.read_schema(from_parquet))
    assert _file(from_parquet) == _file(from_journal)
    assert facts.frame_count == pq.ParquetFile(SAMPLES / f"{name}.parquet").metadata.num_rows
    # The journal's answers (the goldens): the old file's own, but for what today's recorder
    # derives anew (the seed's item audio, counted since issue 20).
    golden = json.loads(golden_path(f"{name}.jsonl").read_text(encoding="utf-8"))
    assert _report(from_parquet) == golden["report"]["stdout"]


def test_binary_and_hostile_frames_convert_as_their_journal_does(tmp_path: Path) -> None:
    """Nine sessions of hostile frames (binary, not JSON, bad audio...) recorded live, then
    made a file of an earlier recorder by leaving out the events it did not write."""
    recorded = corpus_capture(tmp_path / "run")
    old = _without_events(recorded, tmp_path / "old.parquet")
    binary = pq.read_table(old, columns=["binary_content"]).column("binary_content")
    assert binary.null_count < len(binary)  # binary frames in it
    from_parquet, facts = convert_journal(old, tmp_path / "p.parquet")
    from_journal, _ = convert_journal(recorded.with_suffix(".jsonl"), tmp_path / "j.parquet")
    assert _file(from_parquet) == _file(from_journal)
    assert len(facts.sessions) == 9


def test_each_session_ends_right_after_its_last_frame(tmp_path: Path) -> None:
    """As a journal's session_end line follows a session's last frame: the writer drops the
    session's decoders there, so memory is bounded by the sessions open at once."""
    recorded = corpus_capture(tmp_path / "run")
    old = _without_events(recorded, tmp_path / "old.parquet")
    pf, facts = open_capture(old)
    ids = pq.read_table(old, columns=["session_id"]).column("session_id").to_pylist()
    last = {sid: row for row, sid in enumerate(ids)}
    ended_after: dict[str, int] = {}
    for row, rec in enumerate(iter_capture(pf, facts)):
        assert rec.session_id == ids[row]
        # What the writer reads before this frame: the sessions whose last frame came before.
        ended_after.update({sid: row - 1 for sid in facts.ended})
        facts.ended.clear()
    ended_after.update({sid: len(ids) - 1 for sid in facts.ended})
    assert ended_after == last and len(last) == 9


def test_the_command(tmp_path: Path) -> None:
    old = tmp_path / "old.parquet"
    old.write_bytes((SAMPLES / "ga-voice.parquet").read_bytes())
    run = CliRunner().invoke
    # In place only with --force: the output is the file it reads.
    refused = run(cli, ["convert", str(old)])
    assert refused.exit_code == 1
    assert "is a file this command reads" in refused.output
    new = tmp_path / "new.parquet"
    done = run(cli, ["convert", str(old), "-o", str(new)])
    assert done.exit_code == 0, done.output
    assert done.output == f"Wrote {new}: 1 session(s), 621 frame(s).\n"
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    again = run(cli, ["convert", str(new), "-o", str(tmp_path / "x.parquet")])
    assert again.exit_code == 1
    assert again.output == (
        f"Error: {new} is in the current format already: analyze it as it is (rt-analyze "
        f"report {new}); convert rebuilds a capture from a .jsonl journal or an older "
        ".parquet.\n"
    )
    in_place = run(cli, ["convert", str(old), "--force"])
    assert in_place.exit_code == 0, in_place.output
    assert _file(old) == _file(new)


def test_files_that_are_not_old_captures(tmp_path: Path) -> None:
    torn = tmp_path / "torn.parquet"
    torn.write_bytes((SAMPLES / "ga-voice.parquet").read_bytes()[:5000])
    with pytest.raises(JournalError, match="is not a readable Parquet file"):
        open_capture(torn)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pq.read_table(SAMPLES / "ga-voice.parquet").replace_schema_metadata(), foreign)
    with pytest.raises(JournalError, match="is not an rt-analyze capture"):
        open_capture(foreign)
    result = CliRunner().invoke(cli, ["convert", str(foreign), "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "o.parquet").exists()
