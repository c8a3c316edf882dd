"""Reading a big run file in windows of whole sessions, in bounded memory.

A run file holds whole sessions, written in arrival order. When every session of it is wanted,
its row groups are read once each, in order: a session is handed out as soon as no later row
group can hold a frame of it (its ``end_s`` is before every later row group's first ``time_s``,
from the Parquet statistics), so a window holds the sessions that ended, plus the frames of
those still going. When only some sessions are wanted (filters), each window is instead a
filtered read that the ``time_s`` statistics prune to the row groups it needs.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Frames of a session lie between its start_s and end_s; this margin only widens the windows,
# so clock rounding can never drop a frame.
WINDOW_MARGIN_S = 1.0


def number(value: Any) -> float | None:
    """A known time: a number that is not NaN, else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def _first_times(pf: pq.ParquetFile) -> list[float] | None:
    """Each row group's smallest ``time_s``, or None when a row group has no statistics."""
    index = pf.schema_arrow.get_field_index("time_s")
    firsts: list[float] = []
    for group in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        firsts.append(float(stats.min))
    return firsts


def _ids(table: pa.Table) -> pa.Array:
    return pc.cast(table.column("session_id"), pa.string())


def session_order(table: pa.Table, rows: pa.Array | None = None) -> pa.Array:
    """The indices of ``rows`` of ``table`` (every row when None) sorted by session id, then seq
    (or the order read, without one), found from those two columns alone: the caller takes
    every column once."""
    seq = table.column("seq") if "seq" in table.column_names else np.arange(table.num_rows)
    keys = pa.table({"s": _ids(table), "q": seq})
    if rows is None:
        return pc.sort_indices(keys, [("s", "ascending"), ("q", "ascending")])
    order = pc.sort_indices(keys.take(rows), [("s", "ascending"), ("q", "ascending")])
    return pc.take(rows, order)


def stream_windows(
    pf: pq.ParquetFile,
    facts: Sequence[dict[str, Any]],
    columns: Sequence[str],
    rows: int,
    warn: Callable[[str], None] = lambda _: None,
) -> Iterator[tuple[pa.Table, list[dict[str, Any]]]] | None:
    """Windows of about ``rows`` frames (and the facts of their sessions), each row group read
    once; None when the file's statistics cannot tell when sessions end (then use
    :func:`filtered_windows`). The last window also holds frames of sessions the facts do not
    list. Frames found after their session was handed out (their time is past the session's
    recorded end: a clock stepped back) are left out, and ``warn`` says how many."""
    firsts = _first_times(pf)
    if firsts is None:
        return None
    return _stream(pf, firsts, list(facts), list(columns), rows, warn)


class _HandedOut:
    """Sessions already handed out, to catch frames of theirs that come later."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.ids: list[str] = []
        self.warn = warn

    def add(self, facts: Sequence[dict[str, Any]]) -> None:
        self.ids.extend(str(f["session_id"]) for f in facts)

    def without_late_frames(self, table: pa.Table) -> pa.Table:
        if not self.ids or not table.num_rows:
            return table
        late = pc.is_in(_ids(table), value_set=pa.array(self.ids, pa.string()))
        if not pc.any(late).as_py():
            return table
        counts = pc.value_counts(_ids(table.filter(late))).to_pylist()
        for count in counts:
            self.warn(
                f"{count['counts']} frames of session {count['values']} come after its "
                "recorded end (was the clock stepped back?): left out of its analysis"
            )
        return table.filter(pc.invert(late))


def _pieces(
    pf: pq.ParquetFile, firsts: list[float], columns: list[str], rows: int
) -> Iterator[tuple[pa.Table, float, bool]]:
    """The file's frames in order, each with the first time any later frame can have and whether
    it is the last: a row group at a time, or in even batches of at most ``rows`` frames when a
    row group holds more than twice that (a capture rewritten by other tools can be one row group
    of a million frames: the window, not the writer, sets how much is held). A row group is read
    whole otherwise: batches cost ~15 MB more at the peak of a 1 GB report than whole row groups
    of the same size (the recorder's hold ~23,000 frames of audio), and more CPU."""
    # The first time any later row group can hold.
    later = [math.inf] * (len(firsts) + 1)
    for group in range(len(firsts) - 1, -1, -1):
        later[group] = min(firsts[group], later[group + 1])
    for group in range(len(firsts)):
        size = pf.metadata.row_group(group).num_rows
        last = group == len(firsts) - 1
        if size <= 2 * rows:
            yield pf.read_row_group(group, columns=columns), later[group + 1], last
            continue
        # Each frame's smallest time from it to the end of the row group (8 bytes a frame).
        times = pf.read_row_group(group, columns=["time_s"]).column("time_s").to_numpy()
        from_here = np.fmin.accumulate(times[::-1])[::-1].tolist()
        done = 0
        batch_rows = -(-size // -(-size // rows))  # even batches of at most ``rows``
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns):
            done += batch.num_rows
            piece = [pa.Table.from_batches([batch])]
            del batch  # the frames are not held here once the reader lets go of them
            if done >= size:
                yield piece.pop(), later[group + 1], last
            else:
                yield piece.pop(), min(from_here[done], later[group + 1]), False


def _stream(
    pf: pq.ParquetFile,
    firsts: list[float],
    facts: list[dict[str, Any]],
    columns: list[str],
    rows: int,
    warn: Callable[[str], None],
) -> Iterator[tuple[pa.Table, list[dict[str, Any]]]]:
    handed = _HandedOut(warn)
    # Sessions by end (unknown: the end of the file), then by start.
    pending = [(_end(f), number(f.get("start_s")) or 0.0, n, f) for n, f in enumerate(facts)]
    heapq.heapify(pending)
    buffer: list[pa.Table] = []
    buffered = 0
    # A session ending before ``after`` (and the margin) is complete. (Not known by reading
    # ahead: that would hold one more piece of frames while a window is analyzed.)
    for piece, after, last in _pieces(pf, firsts, columns, rows):
        buffer.append(piece)
        buffered += piece.num_rows
        del piece
        if buffered < rows and not last:
            continue
        ended: list[tuple[float, float, int, dict[str, Any]]] = []
        while pending and (last or pending[0][0] + WINDOW_MARGIN_S < after):
            ended.append(heapq.heappop(pending))
        if not ended and not last:
            continue
        done = [f for *_, f in sorted(ended, key=lambda e: (e[1], e[2]))]
        table = handed.without_late_frames(pa.concat_tables(buffer))
        if last:  # all that is left, frames of sessions the facts do not list too
            yield table.take(session_order(table)), done
            return
        in_window = pc.is_in(_ids(table), value_set=_id_array(done))
        # Split, then hand the window out of a list: no variable of this frame keeps the
        # frames read (or the window, or a copy of it) alive while the window is analyzed.
        # The window comes sorted by session in one take: a filter and then a sort copied
        # every frame's events twice (~15 ms a window of 23,000 frames each).
        window = [table.take(session_order(table, pc.indices_nonzero(in_window)))]
        buffer = [table.filter(pc.invert(in_window))]
        buffered = buffer[0].num_rows
        del table, in_window
        handed.add(done)
        yield window.pop(), done


def _end(facts: dict[str, Any]) -> float:
    end = number(facts.get("end_s"))
    return math.inf if end is None else end


def _id_array(facts: Sequence[dict[str, Any]]) -> pa.Array:
    return pa.array([str(f["session_id"]) for f in facts], pa.string())


def filtered_windows(
    facts: Sequence[dict[str, Any]], per_window: int
) -> list[list[dict[str, Any]]]:
    """``facts`` in start order, ``per_window`` sessions a window."""
    ordered = sorted(facts, key=lambda f: f.get("start_s") or 0.0)
    return [ordered[i : i + per_window] for i in range(0, len(ordered), per_window)]


def window_filter(window: Sequence[dict[str, Any]]) -> pc.Expression:
    """The pushed-down filter of one read: its sessions, and, when every session's start and
    end are known, their time range, which prunes row groups by their ``time_s`` statistics."""
    expr = pc.field("session_id").isin(_id_array(window))
    starts = [number(f.get("start_s")) for f in window]
    ends = [number(f.get("end_s")) for f in window]
    known_starts = [v for v in starts if v is not None]
    known_ends = [v for v in ends if v is not None]
    if len(known_starts) == len(starts) and len(known_ends) == len(ends):
        low = min(known_starts) - WINDOW_MARGIN_S
        high = max(known_ends) + WINDOW_MARGIN_S
        expr = expr & (pc.field("time_s") >= low) & (pc.field("time_s") <= high)
    return expr
