"""Payload sizes (frames, bytes, audio share) and token usage, by event, direction and session."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.latency import TurnColumns
from analyzer.pricing import Prices, prices_for
from analyzer.summaries import TurnBlock, reply_costs_usd, token_summaries
from analyzer.turns import TOKEN_COLUMNS

NO_TYPE = "(no type)"  # frames without a JSON "type": binary, not JSON, ...
SIZE_COLUMNS: tuple[str, ...] = ("frames", "bytes", "audio_b64_bytes", "audio_bytes")
BY_EVENT_COLUMNS: tuple[str, ...] = ("session_id", "direction", "event_type", *SIZE_COLUMNS)
_size_values = itemgetter(*SIZE_COLUMNS)
GROUPINGS: dict[str, tuple[str, ...]] = {
    "event": ("direction", "event_type"),
    "direction": ("direction",),
    "session": ("session_id",),
}
# Columns sizes need from a capture: read only these for size-only work.
SIZE_INPUT_COLUMNS: tuple[str, ...] = (
    "session_id",
    "seq",
    "time_s",
    "direction",
    "event_type",
    "frame_bytes",
    "audio_b64_bytes",
    "audio_bytes",
)


def sizes_by_event(frames: pd.DataFrame) -> pd.DataFrame:
    """Frames, wire bytes, audio base64 bytes and decoded audio bytes per (session, direction,
    event type). Columns :data:`BY_EVENT_COLUMNS`; frames without a type are ``(no type)``."""
    if frames.empty:
        return pd.DataFrame(columns=list(BY_EVENT_COLUMNS)).astype(
            {c: "int64" for c in SIZE_COLUMNS}
        )
    data = pd.DataFrame(
        {
            "session_id": frames["session_id"].astype(str),
            "direction": frames["direction"].astype(str),
            "event_type": frames["event_type"]
            .astype(object)
            .where(frames["event_type"].notna(), NO_TYPE),
            "bytes": frames["frame_bytes"],
            "audio_b64_bytes": frames["audio_b64_bytes"].fillna(0),
            "audio_bytes": frames["audio_bytes"].fillna(0),
        }
    )
    grouped = data.groupby(["session_id", "direction", "event_type"], sort=True).agg(
        frames=("bytes", "size"),
        bytes=("bytes", "sum"),
        audio_b64_bytes=("audio_b64_bytes", "sum"),
        audio_bytes=("audio_bytes", "sum"),
    )
    table = grouped.reset_index()
    for column in SIZE_COLUMNS:
        table[column] = table[column].astype("int64")
    return table[list(BY_EVENT_COLUMNS)]


def sizes_of_frames(table: pa.Table) -> pa.Table:
    """``sizes_by_event`` of frames in Arrow, computed in Arrow (unsorted)."""
    event = pc.cast(table.column("event_type"), pa.string())
    slim = pa.table(
        {
            "session_id": pc.cast(table.column("session_id"), pa.string()),
            "direction": pc.cast(table.column("direction"), pa.string()),
            "event_type": pc.fill_null(event, NO_TYPE),
            "bytes": table.column("frame_bytes"),
            "audio_b64_bytes": pc.fill_null(table.column("audio_b64_bytes"), 0),
            "audio_bytes": pc.fill_null(table.column("audio_bytes"), 0),
        }
    )
    grouped = slim.group_by(["session_id", "direction", "event_type"]).aggregate(
        [
            ("bytes", "count"),
            ("bytes", "sum"),
            ("audio_b64_bytes", "sum"),
            ("audio_bytes", "sum"),
        ]
    )
    return grouped.rename_columns(
        {
            "bytes_count": "frames",
            "bytes_sum": "bytes",
            "audio_b64_bytes_sum": "audio_b64_bytes",
            "audio_bytes_sum": "audio_bytes",
        }
    )


def size_rows_by_session(by_event: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """The rows (dicts of :data:`BY_EVENT_COLUMNS`) of a :func:`sizes_by_event` table, by
    ``str`` session id."""
    columns = {c: by_event[c].tolist() for c in BY_EVENT_COLUMNS}
    out: dict[str, list[dict[str, Any]]] = {}
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(BY_EVENT_COLUMNS, values, strict=True))
        out.setdefault(str(row["session_id"]), []).append(row)
    return out


def session_size_rows(frames: pa.Table) -> dict[str, list[dict[str, Any]]]:
    """``size_rows_by_session(sizes_by_event(frames))`` of frames in Arrow, summed in Arrow
    (a report does this once a window)."""
    sizes = WindowSizes.of(frames)
    return {session_id: sizes.rows(session_id) for session_id in sizes.ranges}


@dataclass(frozen=True)
class WindowSizes:
    """The rows of :func:`sizes_by_event` of a window's sessions, as columns (sorted by session,
    direction and event type). A report asks each session for its totals (:func:`size_totals`,
    summed here a window at a time) and its (direction, event type) sums; the rows as dicts
    are made only when asked for."""

    directions: list[str]  # per row
    event_types: list[str]  # per row
    sums: list[list[int]]  # per row: SIZE_COLUMNS
    ranges: dict[str, tuple[int, int]]  # each session's rows
    totals_of: dict[str, list[int]]  # each session's SIZE_COLUMNS
    directions_of: dict[str, list[tuple[str, list[int]]]]  # each session's, per direction

    @classmethod
    def empty(cls) -> WindowSizes:
        return cls([], [], [], {}, {}, {})

    @classmethod
    def of(cls, frames: pa.Table) -> WindowSizes:
        """The sizes of a window of frames (any order), summed in Arrow."""
        if not frames.num_rows:
            return cls.empty()
        grouped = sizes_of_frames(frames).sort_by(
            [("session_id", "ascending"), ("direction", "ascending"), ("event_type", "ascending")]
        )
        ids = grouped.column("session_id").to_pylist()
        direction_list = grouped.column("direction").to_pylist()
        type_list = grouped.column("event_type").to_pylist()
        sums = np.stack(
            [grouped.column(c).to_numpy().astype(np.int64) for c in SIZE_COLUMNS], axis=1
        )
        sid = np.array(ids, dtype=object)
        new_session = np.ones(len(ids), dtype=bool)
        new_session[1:] = sid[1:] != sid[:-1]
        new_direction = new_session.copy()
        new_direction[1:] |= np.array(direction_list[1:], dtype=object) != np.array(
            direction_list[:-1], dtype=object
        )
        session_starts = np.flatnonzero(new_session)
        direction_starts = np.flatnonzero(new_direction)
        ends = [*session_starts[1:].tolist(), len(ids)]
        ranges = {ids[lo]: (lo, hi) for lo, hi in zip(session_starts.tolist(), ends, strict=True)}
        totals = np.add.reduceat(sums, session_starts).tolist()
        directions_of: dict[str, list[tuple[str, list[int]]]] = {}
        for lo, direction_sums in zip(
            direction_starts.tolist(), np.add.reduceat(sums, direction_starts).tolist(), strict=True
        ):
            directions_of.setdefault(ids[lo], []).append((direction_list[lo], direction_sums))
        return cls(
            direction_list,
            type_list,
            sums.tolist(),
            ranges,
            dict(zip(ranges, totals, strict=True)),
            directions_of,
        )

    def rows(self, session_id: str) -> list[dict[str, Any]]:
        """The session's rows (dicts of :data:`BY_EVENT_COLUMNS`)."""
        lo, hi = self.ranges.get(session_id, (0, 0))
        return [
            {
                "session_id": session_id,
                "direction": self.directions[i],
                "event_type": self.event_types[i],
                **dict(zip(SIZE_COLUMNS, self.sums[i], strict=True)),
            }
            for i in range(lo, hi)
        ]

    def by_event(self, session_id: str) -> list[tuple[str, str, list[int]]]:
        """The session's (direction, event type, SIZE_COLUMNS) sums."""
        lo, hi = self.ranges.get(session_id, (0, 0))
        return [(self.directions[i], self.event_types[i], self.sums[i]) for i in range(lo, hi)]

    def totals(self, session_id: str) -> dict[str, Any]:
        """:func:`size_totals` of the session's rows."""
        if session_id not in self.ranges:
            return size_totals([])
        return _totals_by_direction(self.totals_of[session_id], self.directions_of[session_id])


def size_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of :func:`size_rows_by_session` as a :func:`sizes_by_event` table."""
    table = pd.DataFrame(list(rows), columns=list(BY_EVENT_COLUMNS))
    return table.astype({c: "int64" for c in SIZE_COLUMNS})


def sizes_rollup(by_event: pd.DataFrame, by: Sequence[str] = ("direction",)) -> pd.DataFrame:
    """:func:`sizes_by_event` summed over ``by`` columns (largest first), with ``audio_share``
    = audio base64 bytes / wire bytes. ``by=()`` gives one total row."""
    keys = list(by)
    if keys:
        table = by_event.groupby(keys, sort=False)[list(SIZE_COLUMNS)].sum().reset_index()
        table = table.sort_values(
            ["bytes", *keys], ascending=[False] + [True] * len(keys), kind="stable"
        )
    else:
        table = pd.DataFrame([by_event[list(SIZE_COLUMNS)].sum()], columns=list(SIZE_COLUMNS))
    for column in SIZE_COLUMNS:
        table[column] = table[column].astype("int64")
    table["audio_share"] = (
        table["audio_b64_bytes"] / table["bytes"].where(table["bytes"] > 0)
    ).round(4)
    return table.reset_index(drop=True)


def size_totals(by_event: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``{frames, total_bytes, audio_b64_bytes, audio_bytes, audio_share, by_direction}`` of the
    rows of a :func:`sizes_by_event` table. (What :func:`sizes_rollup` over ``()`` and
    ``("direction",)`` gives.)"""
    directions = [row["direction"] for row in by_event]
    columns = [list(values) for values in zip(*map(_size_values, by_event), strict=True)]
    columns = columns or [[] for _ in SIZE_COLUMNS]
    totals = [int(sum(values)) for values in columns]
    rows_by_direction: dict[Any, list[tuple[int, ...]]] = {}
    for direction, *sizes in zip(directions, *columns, strict=True):
        if direction is None or (isinstance(direction, float) and math.isnan(direction)):
            continue  # groupby leaves missing keys out
        rows_by_direction.setdefault(direction, []).append(tuple(sizes))
    return _totals_by_direction(totals, column_sums(rows_by_direction).items())


def _totals_by_direction(
    totals: Sequence[int], by_direction: Iterable[tuple[Any, Sequence[int]]]
) -> dict[str, Any]:
    """:func:`size_totals`'s dict: the totals, then each direction's, most bytes first."""
    ordered = sorted(by_direction, key=lambda kv: (-int(kv[1][1]), kv[0]))
    return {
        **_totals_dict(totals),
        "by_direction": {str(d): _totals_dict(sums) for d, sums in ordered},
    }


def column_sums(rows_by_key: Mapping[Any, Sequence[Sequence[Any]]]) -> dict[Any, list[int]]:
    """Per key, the column sums (as ints) of its rows of numbers."""
    return {
        key: [int(sum(column)) for column in zip(*rows, strict=True)]
        for key, rows in rows_by_key.items()
    }


def _totals_dict(totals: Sequence[int]) -> dict[str, Any]:
    frames, wire, b64, audio = totals
    return {
        "frames": frames,
        "total_bytes": wire,
        "audio_b64_bytes": b64,
        "audio_bytes": audio,
        "audio_share": _round4(b64 / wire) if wire > 0 else None,
    }


def _round4(value: float) -> float | None:
    """``np.round(value, 4)`` to the bit (scale by 10**4, round half to even, scale back), in
    plain Python: numpy's scalar overhead is most of a session's size summary."""
    if not math.isfinite(value):
        return None if math.isnan(value) else value
    return round(value * 10000.0) / 10000.0


def token_totals(turns: TurnColumns) -> dict[str, Any]:
    """Token counts of all responses summed (``responses`` = how many reported usage).
    Input tokens re-count the whole conversation at every response: that is what is billed.
    ``turns`` is a turn table or its columns (lists or arrays by name)."""
    return token_summaries(TurnBlock.whole(turns, TOKEN_COLUMNS))[0]


def session_cost(
    turns: TurnColumns, model: str | None, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """``{usd, priced_as, note}``: the estimate for one session's responses at its model's
    prices; ``usd`` is None when the model has no price."""
    block = TurnBlock.whole(turns, TOKEN_COLUMNS)
    return cost_dict(model, prices, lambda table: reply_costs_usd(block, [table])[0])


def cost_dict(
    model: str | None,
    prices: Mapping[str, Prices] | None,
    usd_at: Callable[[Prices], float | None],
) -> dict[str, Any]:
    """The report's ``cost`` of a session of ``model``, ``usd_at`` giving its replies' cost at
    some prices (None when no reply reported usage)."""
    found = prices_for(model, prices)
    if found is None:
        note = f"no price for model {model!r}" if model else "model unknown"
        return {"usd": None, "priced_as": None, "note": note + "; pass --prices FILE."}
    key, table = found
    usd = usd_at(table)
    if usd is None:
        return {"usd": None, "priced_as": key, "note": "no response reported token usage"}
    return {"usd": round(usd, 6), "priced_as": key, "note": "estimate from list prices"}
