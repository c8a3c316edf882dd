"""A window of frames as numpy arrays, each worked out once.

The analysis of a window asks the same questions of its frames dozens of times (which are from
the server, which are of these event types, which have a response id); each pandas call costs
about a millisecond whatever the size, so a :class:`FrameView` answers them from arrays it
computes once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.arrowbuffers import NUMBER_TYPES, index_array, number_array, valid
from analyzer.groups import factorize
from analyzer.lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
pd = LazyModule("pandas")

Mask = npt.NDArray[np.bool_]


def frames_of(table: pa.Table) -> pd.DataFrame:
    """Frames in Arrow as the analysis takes them in pandas: dictionary columns (direction,
    event type) as categories, other text as Python strings (``object``)."""
    frames = table.to_pandas()
    text = {
        str(c): object
        for c, dtype in frames.dtypes.items()
        if isinstance(dtype, pd.StringDtype) or c == "session_id"
    }
    return frames.astype(text)


class FrameView:
    """``frames`` (sorted by session, then seq, default index) and ``codes`` (each frame's
    session number). :meth:`of_table` makes one straight from Arrow, without pandas."""

    def __init__(
        self, frames: pd.DataFrame | None, codes: np.ndarray, table: pa.Table | None = None
    ) -> None:
        """From pandas ``frames``, or (``frames`` None) from an Arrow ``table``."""
        self._frames = frames
        self._table = table
        if frames is not None:
            self._rows = len(frames)
        else:
            self._rows = table.num_rows if table is not None else 0
        self.codes = np.asarray(codes, dtype=np.intp)
        self._columns: dict[str, np.ndarray] = {}
        self._present: dict[str, Mask] = {}
        self._types: dict[frozenset[str], Mask] = {}
        self._numbered: dict[str, tuple[npt.NDArray[np.intp], np.ndarray]] = {}

    @classmethod
    def of_table(cls, table: pa.Table) -> tuple[FrameView, list[str]]:
        """A view of a window sorted by session, then seq (``session_id`` dictionary-encoded,
        as captures store it), and its session ids by code. Columns are read as pandas would
        give them (missing text as NaN, integers with gaps as floats)."""
        ids = _dictionary(table.column("session_id"))
        index = index_array(ids.indices)
        starts = np.ones(len(index), dtype=bool)
        starts[1:] = index[1:] != index[:-1]
        names = ids.dictionary.to_pylist()
        session_ids = [str(names[i]) for i in index[starts].tolist()]
        return cls(None, np.cumsum(starts) - 1, table), session_ids

    @property
    def frames(self) -> pd.DataFrame:
        """The frames as pandas (built on first use for a view of Arrow: rare paths only)."""
        if self._frames is None:
            assert self._table is not None
            self._frames = frames_of(self._table)
        return self._frames

    def has(self, column: str) -> bool:
        if self._table is not None:
            return column in self._table.column_names
        assert self._frames is not None
        return column in self._frames

    def __len__(self) -> int:
        return self._rows

    @cached_property
    def event_types(self) -> tuple[npt.NDArray[np.intp], list[Any]]:
        """Each frame's event type as a number (-1: none), and the types by number."""
        if self._table is not None:
            types = _dictionary(self._table.column("event_type"))
            return index_array(types.indices), types.dictionary.to_pylist()
        numbers, uniques = pd.factorize(self.frames["event_type"])  # -1: no type
        return np.asarray(numbers, dtype=np.intp), uniques.tolist()

    @cached_property
    def server(self) -> Mask:
        return np.asarray(self.column("direction") == "server", dtype=bool)

    def of_types(self, types: Collection[str]) -> Mask:
        """Frames whose event type is one of ``types``."""
        key = frozenset(types)
        if key not in self._types:
            numbers, names = self.event_types
            wanted = np.array([name in key for name in names] + [False], dtype=bool)
            self._types[key] = wanted[numbers]  # code -1 picks the trailing False
        return self._types[key]

    def present(self, column: str) -> Mask:
        """Frames with a value in ``column``."""
        if column not in self._present:
            if self._table is not None:
                self._present[column] = valid(self._table.column(column))
            else:
                self._present[column] = self.frames[column].notna().to_numpy()
        return self._present[column]

    def column(self, column: str) -> np.ndarray:
        if column not in self._columns:
            if self._table is not None:
                self._columns[column] = self._arrow_column(column)
                return self._columns[column]
            series = self.frames[column]
            if isinstance(series.dtype, pd.CategoricalDtype):
                # Taking from the categories as a plain object array is ~10x faster than
                # pandas' conversion (its categories are Arrow-backed strings).
                names = np.array([*series.cat.categories.tolist(), np.nan], dtype=object)
                self._columns[column] = names[series.cat.codes.to_numpy()]
            else:
                self._columns[column] = series.to_numpy()
        return self._columns[column]

    def _arrow_column(self, column: str) -> np.ndarray:
        assert self._table is not None
        data = self._table.column(column)
        kind = data.type
        if (
            pa.types.is_dictionary(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
        ):
            numbers, names = self._text(column)
            return names[numbers]
        if kind in NUMBER_TYPES:
            return number_array(data)
        return data.to_numpy(zero_copy_only=False)  # other kinds: pyarrow's (and pandas)

    def numbered(
        self, column: str, at: Mask | npt.NDArray[np.intp] | slice
    ) -> tuple[npt.NDArray[np.intp], np.ndarray]:
        """``pd.factorize`` of ``column`` at ``at`` (a mask or positions), except for the order
        of the numbers: the pair (each value's number, -1 when missing; the values by number)."""
        if self._table is None:
            return factorize(self.column(column)[at])
        numbers, names = self._text(column)
        return numbers[at], names[:-1]

    def _text(self, column: str) -> tuple[npt.NDArray[np.intp], np.ndarray]:
        """A text column through its dictionary: each frame's number (-1: missing) and the
        values by number, then NaN (so that number -1 takes pandas' missing text). Python
        strings are made once per distinct value (ids repeat), as fast as ``to_numpy``."""
        if column not in self._numbered:
            assert self._table is not None
            combined = _dictionary(self._table.column(column))
            names = np.empty(len(combined.dictionary) + 1, dtype=object)
            names[:-1] = combined.dictionary.to_pylist()
            names[-1] = np.nan
            self._numbered[column] = (index_array(combined.indices), names)
        return self._numbered[column]

    def values(self, column: str, mask: Mask) -> list[Any]:
        """``column``'s values at ``mask`` as Python objects."""
        return self.column(column)[mask].tolist()

    def rows(self, mask: Mask, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """The frames at ``mask`` as tuples of ``columns`` (Python objects)."""
        return list(zip(*(self.values(c, mask) for c in columns), strict=True))

    def rows_by_session(
        self, mask: Mask, columns: Sequence[str]
    ) -> dict[int, list[tuple[Any, ...]]]:
        """:meth:`rows` per session number."""
        out: dict[int, list[tuple[Any, ...]]] = {}
        for code, row in zip(self.codes[mask].tolist(), self.rows(mask, columns), strict=True):
            out.setdefault(code, []).append(row)
        return out


def _dictionary(data: pa.ChunkedArray) -> pa.DictionaryArray:
    """A column as one dictionary array (its chunks' dictionaries unified)."""
    if not pa.types.is_dictionary(data.type):
        data = pc.dictionary_encode(data)
    combined = data.combine_chunks()
    assert isinstance(combined, pa.DictionaryArray)
    return combined
