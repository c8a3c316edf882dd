"""A window of frames as numpy arrays, each worked out once.

The analysis of a window asks the same questions of its frames dozens of times (which are from
the server, which are of these event types, which have a response id); each pandas call costs
about a millisecond whatever the size, so a :class:`FrameView` answers them from arrays it
computes once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

Mask = npt.NDArray[np.bool_]


class FrameView:
    """``frames`` (sorted by session, then seq, default index) and ``codes`` (each frame's
    session number)."""

    def __init__(self, frames: pd.DataFrame, codes: np.ndarray) -> None:
        self.frames = frames
        self.codes = np.asarray(codes, dtype=np.intp)
        self._columns: dict[str, np.ndarray] = {}
        self._present: dict[str, Mask] = {}
        self._types: dict[frozenset[str], Mask] = {}

    def __len__(self) -> int:
        return len(self.frames)

    @cached_property
    def _type_codes(self) -> tuple[npt.NDArray[np.intp], list[Any]]:
        codes, uniques = pd.factorize(self.frames["event_type"])  # -1: no type
        return np.asarray(codes, dtype=np.intp), uniques.tolist()

    @cached_property
    def server(self) -> Mask:
        return np.asarray(self.column("direction") == "server", dtype=bool)

    def of_types(self, types: Collection[str]) -> Mask:
        """Frames whose event type is one of ``types``."""
        key = frozenset(types)
        if key not in self._types:
            codes, names = self._type_codes
            wanted = np.array([name in key for name in names] + [False], dtype=bool)
            self._types[key] = wanted[codes]  # code -1 picks the trailing False
        return self._types[key]

    def present(self, column: str) -> Mask:
        """Frames with a value in ``column``."""
        if column not in self._present:
            self._present[column] = self.frames[column].notna().to_numpy()
        return self._present[column]

    def column(self, column: str) -> np.ndarray:
        if column not in self._columns:
            series = self.frames[column]
            if isinstance(series.dtype, pd.CategoricalDtype):
                # Taking from the categories as a plain object array is ~10x faster than
                # pandas' conversion (its categories are Arrow-backed strings).
                names = np.array([*series.cat.categories.tolist(), np.nan], dtype=object)
                self._columns[column] = names[series.cat.codes.to_numpy()]
            else:
                self._columns[column] = series.to_numpy()
        return self._columns[column]

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
