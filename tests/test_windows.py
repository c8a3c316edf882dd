"""Windows of whole sessions over a big run file: every frame once, sessions never split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.windows import stream_windows


def _run_file(tmp_path: Path, frames: list[tuple[str, float]], group_rows: int) -> Path:
    """Frames (session, time) in arrival order, written in row groups of ``group_rows``."""
    path = tmp_path / "run.parquet"
    table = pa.table(
        {
            "session_id": [s for s, _ in frames],
            "seq": list(range(len(frames))),
            "time_s": [t for _, t in frames],
        }
    )
    pq.write_table(table, path, row_group_size=group_rows)
    return path


def _facts(sid: str, start: float, end: float | None) -> dict[str, Any]:
    return {"session_id": sid, "start_s": start, "end_s": end}


def _windows(
    path: Path, facts: list[dict[str, Any]], rows: int
) -> list[tuple[list[Any], list[str]]]:
    found = stream_windows(pq.ParquetFile(path), facts, ["session_id", "seq"], rows)
    assert found is not None
    return [
        (table.column("seq").to_pylist(), [f["session_id"] for f in done]) for table, done in found
    ]


def test_a_session_is_handed_out_once_no_later_row_group_can_hold_it(tmp_path: Path) -> None:
    # "long" spans the whole file; a, b and c come and go beside it; "ghost" is not in the facts.
    frames = [("long", 0.0), ("a", 1.0), ("a", 2.0), ("long", 3.0)]  # row group 0
    frames += [("b", 10.0), ("b", 11.0), ("long", 12.0), ("ghost", 13.0)]  # row group 1
    frames += [("c", 20.0), ("long", 21.0), ("c", 22.0), ("long", 30.0)]  # row group 2
    path = _run_file(tmp_path, frames, group_rows=4)
    facts = [
        _facts("long", 0.0, 30.0),
        _facts("a", 1.0, 2.0),
        _facts("b", 10.0, 11.0),
        _facts("c", 20.0, 22.0),
    ]
    windows = _windows(path, facts, rows=2)  # row groups of no more than 2 ``rows``: read whole
    assert windows == [
        ([1, 2], ["a"]),  # a ended at 2 s, before row group 1 starts (10 s, margin 1 s)
        ([4, 5], ["b"]),
        # the end: everything left, the ghost session's frame included (by session, then seq)
        ([8, 10, 7, 0, 3, 6, 9, 11], ["long", "c"]),
    ]


def test_a_big_row_group_is_read_in_batches_by_the_times_left_in_it(tmp_path: Path) -> None:
    """A row group of more than twice ``rows`` frames is read ``rows`` at a time; a session is
    handed out once no frame left in the file, in this row group or later, can be of it: "a" is
    not complete after the first batch even though the next batch starts at 6 s."""
    frames = [("a", 1.0), ("b", 5.0), ("b", 6.0), ("a", 2.0), ("c", 20.0), ("c", 21.0)]
    path = _run_file(tmp_path, frames, group_rows=6)
    facts = [_facts("a", 1.0, 2.0), _facts("b", 5.0, 6.0), _facts("c", 20.0, 21.0)]
    # (a window's frames come sorted by session, then seq)
    assert _windows(path, facts, rows=2) == [([0, 3, 1, 2], ["a", "b"]), ([4, 5], ["c"])]
    assert _windows(path, facts, rows=1) == [([0, 3, 1, 2], ["a", "b"]), ([4, 5], ["c"])]
    assert _windows(path, facts, rows=3) == [([0, 3, 1, 2, 4, 5], ["a", "b", "c"])]  # whole


def test_sessions_without_an_end_wait_for_the_end_of_the_file(tmp_path: Path) -> None:
    frames = [("open", 0.0), ("a", 1.0), ("b", 10.0), ("b", 11.0)]
    path = _run_file(tmp_path, frames, group_rows=2)
    windows = _windows(path, [_facts("open", 0.0, None), _facts("a", 1.0, 1.0)], rows=1)
    assert windows == [([1], ["a"]), ([2, 3, 0], ["open"])]  # b (not in the facts), then open


def test_windows_gather_row_groups_until_they_hold_enough_frames(tmp_path: Path) -> None:
    frames = [(f"s{i}", float(10 * i)) for i in range(6)]
    path = _run_file(tmp_path, frames, group_rows=1)
    facts = [_facts(f"s{i}", 10.0 * i, 10.0 * i) for i in range(6)]
    windows = _windows(path, facts, rows=3)
    assert windows == [([0, 1, 2], ["s0", "s1", "s2"]), ([3, 4, 5], ["s3", "s4", "s5"])]


def test_without_time_statistics_there_is_no_streaming(tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    table = pa.table({"session_id": ["a"], "seq": [0], "time_s": [1.0]})
    pq.write_table(table, path, write_statistics=False)
    assert stream_windows(pq.ParquetFile(path), [_facts("a", 1.0, 1.0)], ["seq"], 1) is None


def test_frames_after_their_session_was_handed_out_are_left_out_and_said(
    tmp_path: Path,
) -> None:
    # "a" says it ended at 2 s, but a frame of it comes at 12 s (the clock stepped back).
    frames = [("a", 1.0), ("a", 2.0), ("b", 10.0), ("a", 12.0), ("b", 13.0), ("b", 14.0)]
    path = _run_file(tmp_path, frames, group_rows=2)
    warnings: list[str] = []
    found = stream_windows(
        pq.ParquetFile(path),
        [_facts("a", 1.0, 2.0), _facts("b", 10.0, 14.0)],
        ["session_id", "seq"],
        1,
        warnings.append,
    )
    assert found is not None
    windows = [(t.column("seq").to_pylist(), [f["session_id"] for f in d]) for t, d in found]
    assert windows == [([0, 1], ["a"]), ([2, 4, 5], ["b"])]  # "a" once, its late frame out
    assert warnings == [
        "1 frames of session a come after its recorded end (was the clock stepped back?): "
        "left out of its analysis"
    ]
