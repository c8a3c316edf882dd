"""Reading captures: files, directories, journals, broken and foreign input."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.reader import CaptureError, read_capture
from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts


def record_run(
    directory: Path, run_id: str, session_id: str, events: list[dict[str, object]]
) -> RunRecorder:
    run = RunRecorder(directory, run_id=run_id)
    run.start_session(
        handshake_facts(session_id, run_id, "ws://h/v1/realtime?model=m", [], [], 10.0, True)
    )
    for seq, event in enumerate(events):
        rec = build_frame(session_id, seq, 10.0 + seq, False, True, json.dumps(event).encode())
        run.record_frame(rec)
    return run


def test_a_directory_of_runs_reads_as_one_capture(tmp_path: Path) -> None:
    record_run(tmp_path, "rt-a", "s-a", [{"type": "x"}, {"type": "y"}]).close()
    record_run(tmp_path, "rt-b", "s-b", [{"type": "z"}]).close()
    cap = read_capture(tmp_path)
    assert sorted(cap.sessions["session_id"]) == ["s-a", "s-b"]
    assert cap.frames.groupby("session_id")["seq"].apply(list).to_dict() == {
        "s-a": [0, 1],
        "s-b": [0],
    }
    assert cap.warnings == []


def test_an_unfinished_parquet_falls_back_to_its_journal(tmp_path: Path) -> None:
    run = record_run(tmp_path, "rt-a", "s-a", [{"type": "x"}, {"type": "y"}])
    run._parquet.flush()  # type: ignore[union-attr]  # a row group on disk, no footer: a crash
    cap = read_capture(run.parquet_path)
    assert cap.frames["event_type"].tolist() == ["x", "y"]
    # Its journal was written a moment ago and has no run_end: a run still being recorded.
    assert len(cap.warnings) == 1 and re.fullmatch(
        r"rt-a\.parquet is still being recorded \(its journal was written \d+ s ago and the run "
        r"has not ended\); read rt-a\.jsonl as far as it goes\.",
        cap.warnings[0],
    )
    old = time.time() - 3600
    os.utime(run.journal_path, (old, old))
    cap = read_capture(run.parquet_path)
    assert cap.warnings == [
        "rt-a.parquet was never finished: the recorder stopped without closing it (killed?); "
        f"read rt-a.jsonl instead. `rt-analyze convert {run.journal_path}` rebuilds it."
    ]


def test_a_torn_journal_is_read_with_a_warning(tmp_path: Path) -> None:
    run = record_run(tmp_path, "rt-a", "s-a", [{"type": "x"}])
    with open(run.journal_path, "ab") as f:
        f.write(b'{"record":"frame","sess')
    cap = read_capture(run.journal_path)
    assert cap.frames["event_type"].tolist() == ["x"]
    assert any("torn last line" in w for w in cap.warnings)


def test_missing_foreign_and_empty_inputs_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="does not exist"):
        read_capture(tmp_path / "nope.parquet")
    text = tmp_path / "notes.jsonl"
    text.write_text("hello\nworld\n")
    with pytest.raises(CaptureError, match="no capture records"):
        read_capture(text)
    foreign = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    with pytest.raises(CaptureError, match="not an rt-analyze capture"):
        read_capture(foreign)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really")
    with pytest.raises(CaptureError, match="is an unfinished Parquet file"):
        read_capture(garbage)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CaptureError, match=r"no \.parquet or \.jsonl"):
        read_capture(empty)
