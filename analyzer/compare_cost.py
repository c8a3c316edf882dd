"""What ``compare`` puts beside the latencies: each side's reply audio and estimated cost.

Sides may be of different protocols (Realtime, GPT-Live, Gemini Live): reply audio is the
play time the turns' replies carried (every adapter measures it the same way), and the cost is
each session's own estimate at its own model's prices (tokens by modality, or GPT-Live's billed
seconds by the minute), summed, so providers billed differently still compare in USD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyzer.dataset import Dataset
from analyzer.dataset_analysis import DatasetTurns, iter_analyses
from analyzer.pricing import Prices
from analyzer.report import session_dict


@dataclass
class Side:
    """One side of a comparison: its turn table and each session's cost estimate."""

    turns: pd.DataFrame
    costs: list[dict[str, Any]] = field(default_factory=list)  # the report's ``cost`` dicts
    models: list[str] = field(default_factory=list)  # each session's model, in order


def read_side(dataset: Dataset, prices: Mapping[str, Prices] | None = None) -> Side:
    """The turns (as :func:`analyzer.dataset_analysis.dataset_turns` gives them) and costs of
    every session, in one pass over the dataset."""
    turns = DatasetTurns()
    costs: list[dict[str, Any]] = []
    models: list[str] = []
    for analysis in iter_analyses(dataset):
        turns.add(analysis)
        session = session_dict(analysis, prices)
        if session["kind"] != "transcription":
            costs.append(session["cost"])
            models.append(str(session["model"]))
    return Side(turns.table(), costs, models)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a in (None, 0) or b is None:
        return None
    return round(float(b) / float(a), 4)


def _pair(a: float | None, b: float | None, digits: int) -> dict[str, Any]:
    return {
        "a": None if a is None else round(a, digits),
        "b": None if b is None else round(b, digits),
        "ratio": _ratio(a, b),
    }


def _column(turns: pd.DataFrame, name: str) -> np.ndarray:
    if name not in turns or not len(turns):
        return np.empty(0)
    values = np.asarray(turns[name], dtype=float)
    return values[~np.isnan(values)]


def reply_audio_section(turns_a: pd.DataFrame, turns_b: pd.DataFrame) -> dict[str, Any]:
    """Reply audio of both sides: total play time and bytes, the median per reply that had
    audio, and how many replies had audio."""
    out: dict[str, Any] = {}
    sides = [_column(t, "reply_audio_ms") for t in (turns_a, turns_b)]
    played = [s[s > 0] for s in sides]
    bytes_ = [_column(t, "reply_audio_bytes") for t in (turns_a, turns_b)]
    out["replies_with_audio"] = _pair(float(played[0].size), float(played[1].size), 0)

    def total(values: np.ndarray) -> float | None:
        return float(values.sum()) if values.size else None

    def median(values: np.ndarray) -> float | None:
        return float(np.quantile(values, 0.5)) if values.size else None

    out["total_ms"] = _pair(total(sides[0]), total(sides[1]), 3)
    out["total_bytes"] = _pair(total(bytes_[0]), total(bytes_[1]), 0)
    out["p50_ms_per_reply"] = _pair(median(played[0]), median(played[1]), 3)
    for key in ("replies_with_audio", "total_bytes"):  # counts read as integers
        out[key] = {
            k: int(v) if k != "ratio" and isinstance(v, float) else v for k, v in out[key].items()
        }
    return out


def cost_section(side_a: Side, side_b: Side) -> dict[str, Any]:
    """Estimated USD of both sides (the sessions with a price), per session and per turn that
    reported usage, how many sessions could not be priced, and the price keys used."""

    def total(side: Side) -> float | None:
        known = [c["usd"] for c in side.costs if c.get("usd") is not None]
        return float(math.fsum(known)) if known else None

    def per(side: Side, count: int) -> float | None:
        usd = total(side)
        return usd / count if usd is not None and count else None

    priced = [sum(1 for c in s.costs if c.get("usd") is not None) for s in (side_a, side_b)]
    turns = [len(s.turns) for s in (side_a, side_b)]
    return {
        "usd": _pair(total(side_a), total(side_b), 6),
        "usd_per_priced_session": _pair(per(side_a, priced[0]), per(side_b, priced[1]), 6),
        "usd_per_turn": _pair(per(side_a, turns[0]), per(side_b, turns[1]), 6),
        "unpriced_sessions": {
            "a": len(side_a.costs) - priced[0],
            "b": len(side_b.costs) - priced[1],
            "ratio": None,
        },
        "priced_as": {
            "a": ", ".join(sorted({c["priced_as"] for c in side_a.costs if c.get("priced_as")}))
            or None,
            "b": ", ".join(sorted({c["priced_as"] for c in side_b.costs if c.get("priced_as")}))
            or None,
            "ratio": None,
        },
    }
