"""Sessions billed by duration (GPT-Live): the seconds the service reported, and their cost.

GPT-Live reports its billed voice time as a cumulative ``session.usage.updated {usage:
{seconds}}`` (the adapter's ``usage`` events, ``audio_seconds``; never summed: the last one is the
session's total so far). Its model is priced by the minute (:attr:`Prices.audio_minute`), so the
token estimate of :func:`analyzer.sizes.session_cost` knows nothing of it; this adds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.kinds import Kind
from analyzer.pricing import Prices, prices_for


def session_audio_seconds(events: pa.Table) -> dict[str, float]:
    """Per session: the largest ``audio_seconds`` of its ``usage`` events (the cumulative
    total the service last reported); sessions without one are left out."""
    wanted = events.select(["session_id", "kind", "audio_seconds"])
    usage = wanted.filter(pc.equal(wanted.column("kind"), Kind.USAGE.value))
    out: dict[str, float] = {}
    for sid, seconds in zip(
        usage.column("session_id").to_pylist(),
        usage.column("audio_seconds").to_pylist(),
        strict=True,
    ):
        if seconds is None or math.isnan(seconds) or seconds < 0:
            continue
        out[sid] = max(out.get(sid, 0.0), float(seconds))
    return out


def with_duration_cost(
    cost: dict[str, Any],
    audio_seconds: float | None,
    model: str | None,
    prices: Mapping[str, Prices] | None = None,
) -> dict[str, Any]:
    """``cost`` (a session's token estimate) plus its billed seconds at the model's per-minute
    rate, when the model is priced by the minute (unknown when it reported no seconds);
    ``cost`` unchanged for a model priced by tokens."""
    found = prices_for(model, prices)
    if found is None or not found[1].audio_minute:
        return cost
    key, table = found
    if audio_seconds is None:  # its tokens alone would read as a (wrong) price
        return {
            "usd": None,
            "priced_as": key,
            "note": "billed by the minute, and the session reported no billed seconds",
        }
    usd = audio_seconds / 60.0 * table.audio_minute + (cost.get("usd") or 0.0)
    return {
        "usd": round(usd, 6),
        "priced_as": key,
        "note": f"estimate: {audio_seconds:g} s of session at the per-minute rate; "
        "a delegated backend's tokens are billed apart, at its own model's prices",
    }
