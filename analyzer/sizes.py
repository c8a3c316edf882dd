"""Payload sizes (frames, bytes, audio share) and token usage, by event, direction and session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    """``{frames, total_bytes, audio_b64_bytes, audio_bytes, audio_share, by_direction}``."""
    total = sizes_rollup(by_event, ()).to_dict("records")[0]
    by_direction = {
        str(row["direction"]): _size_dict(row)
        for row in sizes_rollup(by_event, ("direction",)).to_dict("records")
    }
    return {**_size_dict(total), "by_direction": by_direction}


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
    reported = turns[turns["total_tokens"].notna()] if len(turns) else turns
    totals: dict[str, Any] = {"responses": len(reported)}
    for column in TOKEN_COLUMNS:
        values = reported[column] if len(reported) else pd.Series(dtype=float)
        totals[column] = int(values.sum()) if values.notna().any() else None
    return totals


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
    for row in turns[list(TOKEN_COLUMNS)].to_dict("records"):
        total += cost_usd(row, prices)
    return total


def session_cost(
    turns: pd.DataFrame, model: str | None, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """``{usd, priced_as, note}``: the estimate for one session's responses at its model's
    prices; ``usd`` is None when the model has no price."""
    found = prices_for(model, prices)
    reported = turns[turns["total_tokens"].notna()] if len(turns) else turns
    if found is None:
        note = f"no price for model {model!r}" if model else "model unknown"
        return {"usd": None, "priced_as": None, "note": note + "; pass --prices FILE."}
    key, table = found
    if not len(reported):
        return {"usd": None, "priced_as": key, "note": "no response reported token usage"}
    usd = turns_cost_usd(reported, table)
    return {"usd": round(usd, 6), "priced_as": key, "note": "estimate from list prices"}
