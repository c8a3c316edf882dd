"""The slowest turns of a dataset by one latency: where to look first."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from analyzer.identity import iso_ms
from analyzer.latency import floats
from analyzer.report import TURN_LATENCIES

if TYPE_CHECKING:
    import pandas as pd

SLOWEST_COLUMNS: tuple[str, ...] = (
    "session_id",
    "turn",
    "started",
    "latency_ms",
    "trigger",
    "status",
    "user_said",
)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def slowest_turns(turns: pd.DataFrame, metric: str, count: int) -> list[dict[str, Any]]:
    """The ``count`` turns with the largest ``metric`` (a report latency key), largest first
    (ties: earlier turn first); turns without it are left out. Rows of
    :data:`SLOWEST_COLUMNS`."""
    column = TURN_LATENCIES[metric]
    if column not in turns or not len(turns):
        return []
    values = floats(turns[column])
    starts = floats(turns["turn_start_s"])
    order = sorted(
        (i for i in range(len(turns)) if not math.isnan(values[i])),
        key=lambda i: (-values[i], starts[i] if not math.isnan(starts[i]) else math.inf),
    )
    rows = []
    for i in order[:count]:
        turn = turns.iloc[i]
        rows.append(
            {
                "session_id": str(turn["session_id"]),
                "turn": int(turn["index"]),
                "started": iso_ms(turn["turn_start_s"]),
                "latency_ms": round(float(values[i]), 3),
                "trigger": _text(turn["trigger"]),
                "status": _text(turn["status"]),
                "user_said": _text(turn["user_transcript"]),
            }
        )
    return rows
