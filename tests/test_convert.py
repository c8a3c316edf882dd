"""``rt-analyze convert`` streams a journal into the Parquet file the recorder writes: the same
rows, the same footer, the same report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.events import event_table
from analyzer.reader import with_columns
from analyzer.recording import writers
from analyzer.recording.convert import JournalError, convert_journal, read_journal
from analyzer.recording.frames import FrameRecord, restore_frame_text
from analyzer.recording.normalize import SessionDecoders
from analyzer.recording.writers import write_parquet
from analyzer.schema import FRAME_COLUMNS, FRAME_SCHEMA, parse_file_metadata
from bench.captures import generate_journal
from tests.golden.freeze import corpus_capture, golden_path
from tests.test_hostile_input import record

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_FRAMES = {"ga-voice": 621, "beta-voice": 611, "ga-g711-manual": 522, "seed-beta": 19}


def _rows(path: Path) -> dict[str, list[Any]]:
    """The frame columns (the events are compared as the analysis reads them: see below)."""
    table = with_columns(pq.read_table(path), FRAME_COLUMNS)  # a format-1 file: nulls where new
    return {name: table.column(name).to_pylist() for name in table.column_names if name != "events"}


def _events(path: Path) -> str:
    """The capture's event table as text (their NaNs compare equal there), recorded (format 2)
    or decoded (the committed samples are format 1)."""
    pf = pq.ParquetFile(path)
    meta = parse_file_metadata(pf.metadata.metadata)
    assert meta is not None
    table = with_columns(pf.read(), FRAME_COLUMNS)
    keys = pa.table({"s": table["session_id"].cast(pa.string()), "q": table["seq"]})
    table = table.take(pc.sort_indices(keys, [("s", "ascending"), ("q", "ascending")]))
    facts = {s["session_id"]: s for s in meta["sessions"]}
    return json.dumps(event_table(table, facts).to_pylist())


def _footer(path: Path) -> dict[bytes, bytes]:
    metadata = pq.ParquetFile(path).metadata.metadata
    assert metadata is not None
    return metadata


# What the recorder cuts out of a frame since issue 20 and cut nothing of before: the audio of
# item content parts (the seed's client sends `conversation.item.create` with `input_audio`).
_AUDIO_COLUMNS = (
    "content",
    "audio",
    "audio_offset",
    "audio_cuts",
    "audio_b64_bytes",
    "audio_bytes",
)


def _recut_rows(got: dict[str, list[Any]], expected: dict[str, list[Any]]) -> list[int]:
    """Rows of a sample recorded before issue 20 whose item audio the conversion now cuts out;
    their audio columns are made equal to the recording's once checked: the whole frame the
    same, the audio now counted."""
    rows = [
        i
        for i, (before, now) in enumerate(
            zip(expected["audio_bytes"], got["audio_bytes"], strict=True)
        )
        if before is None and now is not None
    ]
    for i in rows:
        assert got["event_type"][i] == "conversation.item.create"
        text = restore_frame_text(
            got["content"][i], got["audio_offset"][i], got["audio"][i], got["audio_cuts"][i]
        )
        assert text == expected["content"][i] and got["audio_bytes"][i] > 0
        for column in _AUDIO_COLUMNS:
            got[column][i] = expected[column][i]
    return rows


def _assert_same_capture(got: Path, expected: Path, recut: int = 0) -> None:
    assert pq.read_schema(got).equals(FRAME_SCHEMA, check_metadata=False)
    got_rows, expected_rows = _rows(got), _rows(expected)
    assert len(_recut_rows(got_rows, expected_rows)) == recut
    assert got_rows == expected_rows  # row by row, whatever the row groups
    assert _events(got) == _events(expected)
    got_run, got_sessions = _footer_sessions(got)
    expected_run, expected_sessions = _footer_sessions(expected)
    # Facts today's recorder keeps that the one that wrote ``expected`` did not (the
    # provider's session id, since session 8) are the only difference.
    newer = {k for s in got_sessions for k in s} - {k for s in expected_sessions for k in s}
    assert newer <= {"provider_session_id"}
    older = [{k: v for k, v in s.items() if k not in newer} for s in got_sessions]
    assert (got_run, older) == (expected_run, expected_sessions)


def _footer_sessions(path: Path) -> Any:
    meta = parse_file_metadata(_footer(path))
    assert meta is not None
    return meta["run_id"], meta["sessions"]


def _report(capture: Path) -> Any:
    result = CliRunner().invoke(cli, ["report", str(capture), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.replace(str(capture), "CAPTURE"))


def _golden_report(name: str) -> Any:
    return json.loads(golden_path(name).read_text(encoding="utf-8"))["report"]["stdout"]


@pytest.mark.parametrize("name", sorted(SAMPLE_FRAMES))
def test_a_converted_sample_is_the_capture_the_recorder_wrote(name: str, tmp_path: Path) -> None:
    out, facts = convert_journal(SAMPLES / f"{name}.jsonl", tmp_path / f"{name}.parquet")
    _assert_same_capture(out, SAMPLES / f"{name}.parquet", recut=int(name == "seed-beta"))
    assert facts.frame_count == SAMPLE_FRAMES[name] and len(facts.sessions) == 1
    assert facts.run_end is not None and not facts.torn_last_line and facts.bad_lines == []
    assert _report(out) == _golden_report(f"{name}.jsonl")  # the journal's answer


def test_the_converted_corpus_is_the_capture_the_recorder_wrote(tmp_path: Path) -> None:
    """Nine sessions of hostile frames (binary, not JSON, bad audio...) recorded live."""
    recorded = corpus_capture(tmp_path / "run")
    out, facts = convert_journal(recorded.with_suffix(".jsonl"), tmp_path / "converted.parquet")
    _assert_same_capture(out, recorded)
    assert len(facts.sessions) == 9
    assert _report(out) == _golden_report("corpus.parquet")


def test_an_interleaved_journal_streams_to_what_the_whole_journal_in_memory_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent sessions whose ends (and so their footer facts) come late in the journal, over
    several row groups (small ones here): streamed, the same file as written from the journal
    read whole (how ``convert`` wrote it before it streamed)."""
    monkeypatch.setattr(writers, "ROW_GROUPS", writers.RowGroupPolicy(max_rows=1024))
    journal = generate_journal(tmp_path / "run.jsonl", 6_000_000)
    with open(journal, "ab") as f:
        f.write(b'{"record":"frame","session_id":"x","se')  # torn by a crash
    out, facts = convert_journal(journal)
    assert out == tmp_path / "run.parquet"
    whole = read_journal(journal)
    write_parquet(
        tmp_path / "whole.parquet", whole.frames, whole.run_id, list(whole.sessions.values())
    )
    _assert_same_capture(out, tmp_path / "whole.parquet")
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert facts.frame_count == len(whole.frames) == 3508
    assert len(facts.sessions) == 6 and facts.torn_last_line and facts.bad_lines == []
    assert all(s["end_s"] is not None for s in facts.sessions.values())


def test_a_session_s_decoding_state_is_dropped_at_its_end_as_the_recorder_drops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer forgets a session (its decoder, its voice detectors and echo rings: ~0.5 MB)
    where its session_end line is, before the next frame, not when the journal ends: a 1 GB
    journal's ~1,000 sessions held 668 MB of peak RSS that way, 0.67 of the journal."""
    journal = generate_journal(tmp_path / "run.jsonl", 6_000_000)
    seen: list[tuple[str, str]] = []
    events, end = SessionDecoders.events, SessionDecoders.end

    def spy_events(self: SessionDecoders, rec: FrameRecord) -> list[Any]:
        seen.append(("frame", rec.session_id))
        return events(self, rec)

    def spy_end(self: SessionDecoders, session_id: str) -> None:
        seen.append(("end", session_id))
        end(self, session_id)

    monkeypatch.setattr(SessionDecoders, "events", spy_events)
    monkeypatch.setattr(SessionDecoders, "end", spy_end)
    convert_journal(journal, tmp_path / "run.parquet")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    expected = [
        ("frame" if line["record"] == "frame" else "end", line["session_id"])
        for line in lines
        if line["record"] in ("frame", "session_end")
    ]
    # The last sessions' ends come after the last frame: nothing is left to decode for them.
    while expected[-1][0] == "end":
        expected.pop()
    assert seen == expected
    assert sum(kind == "end" for kind, _ in seen) == 5


@pytest.mark.parametrize("keep_audio", [True, False])
def test_audio_empty_on_the_wire_converts_as_recorded(keep_audio: bool, tmp_path: Path) -> None:
    """A journaled size of 0 is not audio dropped at recording: it was empty (convert used to
    write no audio where the recorder wrote b"")."""
    frames = [(True, True, b'{"type":"input_audio_buffer.append","audio":""}')]
    run = record(tmp_path / "run", {"s": frames}, keep_audio=keep_audio)
    out, _ = convert_journal(run.journal_path, tmp_path / "converted.parquet")
    _assert_same_capture(out, run.parquet_path)
    assert _rows(out)["audio"] == [b"" if keep_audio else None]
    assert _rows(out)["audio_bytes"] == [0]


def test_a_journal_found_unreadable_at_its_end_leaves_the_earlier_file(tmp_path: Path) -> None:
    journal = tmp_path / "notes.jsonl"
    journal.write_text("hello\nworld\n")
    earlier = tmp_path / "notes.parquet"
    earlier.write_bytes(b"earlier")
    with pytest.raises(JournalError, match="holds no capture records"):
        convert_journal(journal)
    assert earlier.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.jsonl", "notes.parquet"]
