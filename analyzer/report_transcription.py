"""The report's view of input transcription: per turn its deltas, usage, log probabilities and
cost; per session and overall the usage and cost, at the transcriber's prices."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from analyzer.pricing import Prices, prices_for, transcription_cost_usd
from analyzer.transcription import USAGE_COLUMNS

# The report's ``transcription_usage`` keys, from the turn columns.
USAGE_KEYS: dict[str, str] = {
    column.removeprefix("transcription_"): column for column in USAGE_COLUMNS
}
TOKEN_KEYS: tuple[str, ...] = tuple(k for k in USAGE_KEYS if k != "audio_seconds")


def _value(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _values(values: Iterable[Any]) -> list[float | None]:
    """A turn column as floats, None where missing."""
    return [(None if v != v else v) if type(v) is float else _value(v) for v in values]


def transcription_turns(column: Callable[[str], Sequence[Any]]) -> dict[str, list[Any]]:
    """The report's transcription keys of turns, a list each, from ``column(name)`` of their
    rows (each turn's cost is set by :func:`session_transcription`)."""
    usage = [_values(column(c)) for c in USAGE_KEYS.values()]
    counts = _values(column("transcription_logprobs"))
    means = _values(column("transcription_logprob_mean"))
    return {
        "transcription_model": [m if isinstance(m, str) else None for m in column(_MODEL)],
        "transcription_deltas": [int(v) for v in column("transcription_deltas")],
        "transcription_usage": [
            None
            if all(v is None for v in values)
            else {
                key: int(v) if v is not None and key in TOKEN_KEYS else v
                for key, v in zip(USAGE_KEYS, values, strict=True)
            }
            for values in zip(*usage, strict=True)
        ],
        "transcription_logprobs": [
            None if n is None else {"count": int(n), "mean": m}
            for n, m in zip(counts, means, strict=True)
        ],
        "transcription_cost_usd": [None] * len(counts),
    }


_MODEL = "transcription_model"


def session_transcription(
    turns: Sequence[dict[str, Any]], model: str | None, prices: Mapping[str, Prices] | None
) -> dict[str, Any]:
    """A session's ``transcription_model``, ``transcription_usage`` (summed over the turns
    that reported one) and ``transcription_cost``; sets each turn's ``transcription_cost_usd``
    at the prices of the model in force for it."""
    reported = [t for t in turns if t["transcription_usage"] is not None]
    totals: dict[str, Any] = {"transcriptions": len(reported)}
    for key in USAGE_KEYS:
        values = [t["transcription_usage"][key] for t in reported]
        known = [v for v in values if v is not None]
        totals[key] = (
            (round(sum(known), 3) if key == "audio_seconds" else sum(known)) if known else None
        )
    keys: list[str] = []
    usd = 0.0
    unpriced = 0
    priced: dict[str | None, Any] = {}  # model -> prices_for (the same for most turns)
    for turn in reported:
        name = turn["transcription_model"] or model
        if name not in priced:
            priced[name] = prices_for(name, prices)
        found = priced[name]
        cost = transcription_cost_usd(turn["transcription_usage"], found[1]) if found else None
        if cost is None:
            unpriced += 1
            continue
        turn["transcription_cost_usd"] = round(cost, 6)
        usd += cost
        if found is not None and found[0] not in keys:
            keys.append(found[0])
    cost_dict: dict[str, Any]
    if not reported:
        cost_dict = {"usd": None, "priced_as": None, "note": "no transcription reported usage"}
    elif unpriced == len(reported):
        name = model or next((t["transcription_model"] for t in reported), None)
        cost_dict = {
            "usd": None,
            "priced_as": None,
            "note": (f"no price for model {name!r}" if name else "transcription model unknown")
            + "; pass --prices FILE.",
        }
    else:
        note = "estimate from list prices"
        if unpriced:
            note += f"; {unpriced} transcription(s) not priced"
        cost_dict = {"usd": round(usd, 6), "priced_as": ", ".join(keys), "note": note}
    return {
        "transcription_model": model,
        "transcription_usage": totals,
        "transcription_cost": cost_dict,
    }


def summary_transcription(sessions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary's ``transcription_sessions`` (sessions that only transcribe) and
    ``transcription_cost_usd`` (every session's transcription cost, None if none is priced)."""
    costs = [(s.get("transcription_cost") or {}).get("usd") for s in sessions]
    known = [c for c in costs if c is not None]
    return {
        "transcription_sessions": sum(1 for s in sessions if s.get("kind") == "transcription"),
        "transcription_cost_usd": round(sum(known), 6) if known else None,
    }
