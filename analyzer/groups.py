"""Rows grouped by a key, with the few grouped operations the analysis needs, in numpy.

A report walks thousands of small sessions a window at a time; pandas' ``groupby`` costs
milliseconds a call whatever the size (index objects, dtype checks), so the window's grouped
work is done here: one stable sort by group, then ``ufunc.reduceat`` over the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.jsonio import is_na


def factorize(values: np.ndarray) -> tuple[npt.NDArray[np.intp], np.ndarray]:
    """``pd.factorize``: each value's number, values numbered in order of first appearance,
    missing ones (None, NaN) -1; and the values by number. Without pandas, which the report
    does not import: numbers are hashed by Arrow, objects by a dict."""
    if values.dtype == object:
        index: dict[Any, int] = {}
        numbers = np.fromiter(
            (-1 if is_na(v) else index.setdefault(v, len(index)) for v in values.tolist()),
            dtype=np.intp,
            count=len(values),
        )
        uniques = np.empty(len(index), dtype=object)
        uniques[:] = list(index)
        return numbers, uniques
    if values.dtype.kind in "iu":
        if not len(values) or np.all(values[1:] >= values[:-1]):  # in order (session codes)
            edge = np.ones(len(values), dtype=bool)
            edge[1:] = values[1:] != values[:-1]
            return np.cumsum(edge, dtype=np.intp) - 1, values[edge]
        encoded = pc.dictionary_encode(pa.array(values.astype(np.int64)))
        numbers = encoded.indices.to_numpy().astype(np.intp)
        return numbers, encoded.dictionary.to_numpy().astype(values.dtype)
    found, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(found), dtype=np.intp)
    rank[by_appearance] = np.arange(len(found))
    numbers = rank[inverse.reshape(-1)]
    uniques = found[by_appearance]
    if values.dtype.kind in "fc":
        missing = np.isnan(uniques)
        if missing.any():
            renumber = np.cumsum(~missing) - 1
            numbers = np.where(np.isnan(values), -1, renumber[numbers])
            uniques = uniques[~missing]
    return numbers, uniques


@dataclass(frozen=True)
class Groups:
    """Rows grouped by key, groups numbered in order of first appearance; within a group the
    rows keep their order."""

    keys: np.ndarray  # each group's key
    number: npt.NDArray[np.intp]  # each row's group
    order: npt.NDArray[np.intp]  # rows by group, stable
    starts: npt.NDArray[np.intp]  # where each group starts in ``order``

    @classmethod
    def of(cls, keys: np.ndarray) -> Groups:
        number, uniques = factorize(keys)
        order = np.argsort(number, kind="stable")
        ordered = number[order]
        edge = np.ones(len(ordered), dtype=bool)
        edge[1:] = ordered[1:] != ordered[:-1]
        return cls(np.asarray(uniques), number, order, np.flatnonzero(edge))

    def __len__(self) -> int:
        return len(self.starts)

    def sizes(self) -> npt.NDArray[np.intp]:
        return np.diff(np.append(self.starts, len(self.order)))

    def min(self, values: np.ndarray) -> np.ndarray:
        return np.minimum.reduceat(values[self.order], self.starts)

    def max(self, values: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(values[self.order], self.starts)

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values[self.order], self.starts)

    def any(self, values: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        return np.logical_or.reduceat(values[self.order], self.starts)

    def spread(self, per_group: np.ndarray) -> np.ndarray:
        """A value per group, back on each of its rows."""
        return per_group[self.number]

    def _runs(self) -> list[tuple[int, int]]:
        bounds = np.append(self.starts, len(self.order)).tolist()
        return list(pairwise(bounds))

    def cumsum(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per row: the sum of its value and those of the rows before it in its group."""
        return self.cumsum_before(values) + values

    def cumsum_before(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per row: the sum of the values of the rows before it in its group, added in order."""
        ordered = values[self.order]
        running = np.empty_like(ordered)
        for lo, hi in self._runs():  # per group: a running sum over all would lose precision
            running[lo] = 0.0
            np.cumsum(ordered[lo : hi - 1], out=running[lo + 1 : hi])
        out = np.empty_like(running)
        out[self.order] = running
        return out

    def previous_max(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per row: the largest value of the rows before it in its group (NaN for the first;
        NaN values are skipped)."""
        ordered = np.where(np.isnan(values), -np.inf, values)[self.order]
        before = np.empty_like(ordered)
        for lo, hi in self._runs():
            before[lo] = np.nan
            np.maximum.accumulate(ordered[lo : hi - 1], out=before[lo + 1 : hi])
        before[np.isneginf(before)] = np.nan
        out = np.empty_like(before)
        out[self.order] = before
        return out
