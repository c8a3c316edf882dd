"""Payload sizes (frames, bytes, audio share) and token usage, by event, direction and session."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analyzer.pricing import Prices, cost_usd, prices_for
from analyzer.turns import TOKEN_COLUMNS

NO_TYPE = "(no type)"  # frames without a JSON "type": binary, not JSON, ...
SIZE_COLUMNS: tuple[str, ...] = ("frames", "bytes", "audio_b64_bytes", "audio_bytes")
BY_EVENT_COLUMNS: tuple[str, ...] = ("session_id", "direction", "event_type", *SIZE_COLUMNS)
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


def sizes_by_session(frames: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """:func:`sizes_by_event` of each session of ``frames`` (by ``str`` session id), computed
    in one grouping."""
    table = sizes_by_event(frames)
    sids = table["session_id"].astype(object).to_numpy()
    if not len(sids):
        return {}
    bounds = (np.flatnonzero(sids[1:] != sids[:-1]) + 1).tolist()
    out: dict[str, pd.DataFrame] = {}
    for lo, hi in zip([0, *bounds], [*bounds, len(sids)], strict=True):
        out[str(sids[lo])] = table.iloc[lo:hi].reset_index(drop=True)
    return out


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


def size_totals(by_event: pd.DataFrame) -> dict[str, Any]:
    """``{frames, total_bytes, audio_b64_bytes, audio_bytes, audio_share, by_direction}``.
    (What :func:`sizes_rollup` over ``()`` and ``("direction",)`` gives, without pandas.)"""
    columns = [by_event[c].tolist() for c in SIZE_COLUMNS]
    totals = [int(sum(values)) for values in columns]
    by_direction: dict[Any, list[int]] = {}
    for direction, *sizes in zip(by_event["direction"].tolist(), *columns, strict=True):
        if direction is None or (isinstance(direction, float) and math.isnan(direction)):
            continue  # groupby leaves missing keys out
        sums = by_direction.setdefault(direction, [0, 0, 0, 0])
        for i, value in enumerate(sizes):
            sums[i] += value
    ordered = sorted(by_direction.items(), key=lambda kv: (-int(kv[1][1]), kv[0]))
    return {
        **_totals_dict(totals),
        "by_direction": {str(d): _totals_dict([int(v) for v in sums]) for d, sums in ordered},
    }


def _totals_dict(totals: Sequence[int]) -> dict[str, Any]:
    frames, wire, b64, audio = totals
    share = np.round(np.float64(b64) / np.float64(wire), 4) if wire > 0 else None
    return {
        "frames": frames,
        "total_bytes": wire,
        "audio_b64_bytes": b64,
        "audio_bytes": audio,
        "audio_share": None if share is None or np.isnan(share) else float(share),
    }


def _size_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    share = row["audio_share"]
    return {
        "frames": int(row["frames"]),
        "total_bytes": int(row["bytes"]),
        "audio_b64_bytes": int(row["audio_b64_bytes"]),
        "audio_bytes": int(row["audio_bytes"]),
        "audio_share": None if pd.isna(share) else float(share),
    }


def token_totals(turns: pd.DataFrame) -> dict[str, Any]:
    """Token counts of all responses summed (``responses`` = how many reported usage).
    Input tokens re-count the whole conversation at every response: that is what is billed."""
    if not len(turns):
        return {"responses": 0, **dict.fromkeys(TOKEN_COLUMNS)}
    reported = _reported(turns)
    totals: dict[str, Any] = {"responses": int(reported.sum())}
    for column in TOKEN_COLUMNS:
        values = _floats(turns[column])[reported]
        known = ~np.isnan(values)
        totals[column] = int(values[known].sum()) if known.any() else None
    return totals


def _floats(column: pd.Series) -> np.ndarray:
    values: np.ndarray = column.to_numpy(dtype=float, na_value=np.nan)
    return values


def _reported(turns: pd.DataFrame) -> np.ndarray:
    """Which turns reported token usage."""
    reported: np.ndarray = ~np.isnan(_floats(turns["total_tokens"]))
    return reported


def token_usage(turns: pd.DataFrame) -> pd.DataFrame:
    """:func:`token_totals` per session (columns session_id, responses, token columns)."""
    rows = [
        {"session_id": str(sid), **token_totals(group)}
        for sid, group in turns.groupby("session_id", sort=False)
    ]
    return pd.DataFrame(rows, columns=["session_id", "responses", *TOKEN_COLUMNS])


def turns_cost_usd(turns: pd.DataFrame, prices: Prices) -> float:
    """Estimated USD of the responses in ``turns``, all at one model's prices."""
    total = 0.0
    columns = [turns[c].tolist() for c in TOKEN_COLUMNS]
    for values in zip(*columns, strict=True):
        total += cost_usd(dict(zip(TOKEN_COLUMNS, values, strict=True)), prices)
    return total


def session_cost(
    turns: pd.DataFrame, model: str | None, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """``{usd, priced_as, note}``: the estimate for one session's responses at its model's
    prices; ``usd`` is None when the model has no price."""
    found = prices_for(model, prices)
    if found is None:
        note = f"no price for model {model!r}" if model else "model unknown"
        return {"usd": None, "priced_as": None, "note": note + "; pass --prices FILE."}
    key, table = found
    reported = turns[_reported(turns)] if len(turns) else turns
    if not len(reported):
        return {"usd": None, "priced_as": key, "note": "no response reported token usage"}
    usd = turns_cost_usd(reported, table)
    return {"usd": round(usd, 6), "priced_as": key, "note": "estimate from list prices"}
