"""The recorder's Parquet row groups: closed by bytes or rows (RowGroupPolicy), not per batch."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow.parquet as pq

from analyzer.recording.frames import FrameRecord, build_frame
from analyzer.recording.writers import ParquetSink, RowGroupPolicy
from analyzer.schema import file_metadata


def _text_frame(seq: int) -> FrameRecord:
    return build_frame("s", seq, float(seq), True, True, b'{"type":"x"}')


def _audio_frame(seq: int, audio: bytes) -> FrameRecord:
    data = base64.b64encode(audio).decode()
    text = json.dumps({"type": "input_audio_buffer.append", "audio": data})
    return build_frame("s", seq, float(seq), True, True, text.encode())


def _group_rows(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_batches_gather_into_a_row_group_until_it_holds_max_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    # Batches of 4 frames go to the thread; a row group closes at the batch that reaches 10.
    sink = ParquetSink(path, max_rows=4, row_groups=RowGroupPolicy(max_rows=10))
    for seq in range(25):
        sink.append(_text_frame(seq))
    sink.close(file_metadata("rt-groups", []))
    assert _group_rows(path) == [12, 12, 1]
    assert pq.read_table(path)["seq"].to_pylist() == list(range(25))
    assert sink.rows_written == 25 and sink.rows_failed == 0


def test_a_row_group_closes_at_max_bytes_of_arrow_data(tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    # 10 kB of audio a frame: the bytes bound the group long before its rows do.
    sink = ParquetSink(path, max_rows=2, row_groups=RowGroupPolicy(max_bytes=25_000))
    for seq in range(9):
        sink.append(_audio_frame(seq, bytes([seq]) * 10_000))
    sink.close(file_metadata("rt-groups", []))
    assert _group_rows(path) == [4, 4, 1]
    audio = pq.read_table(path)["audio"].to_pylist()
    assert audio == [bytes([seq]) * 10_000 for seq in range(9)]


def test_a_slow_run_holds_its_row_group_as_few_arrow_pieces(tmp_path: Path) -> None:
    """A live recorder hands a few frames at a time (every 10 s): they are merged, not kept
    as thousands of tiny tables, and still written as one row group."""
    path = tmp_path / "run.parquet"
    sink = ParquetSink(path, max_rows=1)
    for seq in range(150):
        sink.append(_text_frame(seq))
    sink._pool.submit(lambda: None).result()  # the thread has taken every batch
    assert len(sink._group.pieces) <= 65
    sink.close(file_metadata("rt-groups", []))
    assert _group_rows(path) == [150]
    assert pq.read_table(path)["seq"].to_pylist() == list(range(150))
