"""A Parquet capture's ``audio`` column by row, read a row group at a time: memory follows the
row groups the sessions being built need, not the file."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.schema import FRAME_SCHEMA


class RowAudio(Mapping[int, memoryview | None]):
    """The ``audio`` column's values by row, as views where they lie (nothing copied)."""

    def __init__(self, array: pa.Array, first_row: int = 0) -> None:
        self.first_row = first_row
        self.count = len(array)
        buffers = array.buffers()  # large_binary: validity, int64 offsets, data
        offsets = np.frombuffer(buffers[1], dtype=np.int64)
        self.offsets: list[int] = offsets[array.offset : array.offset + self.count + 1].tolist()
        self.data = memoryview(buffers[2] if buffers[2] is not None else b"").cast("B")
        self.valid: list[bool] = array.is_valid().to_pylist()

    def __getitem__(self, row: int) -> memoryview | None:
        i = row - self.first_row
        if not self.valid[i]:
            return None
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first_row, self.first_row + self.count))

    def __len__(self) -> int:
        return self.count


class RowGroups:
    """A Parquet file's ``audio`` read a row group at a time, kept while a session to come
    needs it."""

    def __init__(self, pf: pq.ParquetFile) -> None:
        self.pf = pf
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
        self.starts = np.cumsum([0, *sizes])

    def _read(self, group: int) -> RowAudio:
        column = self.pf.read_row_group(group, columns=["audio"], use_threads=False)["audio"]
        column = column.cast(FRAME_SCHEMA.field("audio").type)
        return RowAudio(column.combine_chunks(), int(self.starts[group]))

    def in_order(
        self, rows: npt.NDArray[np.int64], bounds: list[tuple[int, int]]
    ) -> Iterator[tuple[int, Mapping[int, memoryview | None]]]:
        """(index, the audio of its rows) of each part: ``rows[lo:hi]`` are part ``index``'s
        audio rows (``bounds[index] = (lo, hi)``). Parts come in the order their audio ends in
        the file, each once the row groups it needs are read; a row group is dropped when no
        part to come needs it."""
        group = np.searchsorted(self.starts, rows, side="right") - 1
        spans: list[tuple[int, int]] = []  # per part: first and last row group of its audio
        for lo, hi in bounds:
            mine = group[lo:hi]
            spans.append((int(mine.min()), int(mine.max())) if len(mine) else (-1, -1))
        order = sorted(range(len(bounds)), key=lambda i: spans[i][1])
        # keep_from[n]: the first row group a session after the n-th in ``order`` needs
        keep_from = [len(self.starts)] * (len(order) + 1)
        for n in range(len(order) - 1, -1, -1):
            first = spans[order[n]][0]
            keep_from[n] = min(keep_from[n + 1], first if first >= 0 else len(self.starts))
        held: dict[int, RowAudio] = {}
        starts = self.starts.tolist()
        for n, index in enumerate(order):
            first, last = spans[index]
            for g in range(first, last + 1) if first >= 0 else ():
                if g not in held:
                    held[g] = self._read(g)
            yield index, _Groups(held, starts)
            for g in [g for g in held if g < keep_from[n + 1]]:
                del held[g]


class _Groups(Mapping[int, memoryview | None]):
    def __init__(self, held: dict[int, RowAudio], starts: list[int]) -> None:
        self.held = held
        self.starts = starts

    def __getitem__(self, row: int) -> memoryview | None:
        return self.held[bisect_right(self.starts, row) - 1][row]

    def __iter__(self) -> Iterator[int]:
        return (row for part in self.held.values() for row in part)

    def __len__(self) -> int:
        return sum(len(part) for part in self.held.values())
