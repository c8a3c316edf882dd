"""One name per metric in every output: a latency is called by its report key (``first_audio``,
``response_created``...), the name ``--metric`` and ``check`` rules take; the turn table stores it
as the column ``latency_<name>_ms`` (``perceived_first_audio_ms`` for the perceived one), which
spells the same name with its unit. Tables, the latency summary's ``metric`` column, compare and
the HTML report show the name and put the unit (ms) in the header."""

from __future__ import annotations

from analyzer.report import TURN_LATENCIES

_BY_COLUMN = {column: name for name, column in TURN_LATENCIES.items()}


def metric_name(column: str) -> str:
    """The metric's one name for a turn-table column (other names are returned unchanged)."""
    return _BY_COLUMN.get(column, column)


# A percentile needs this many values before it is more than the largest one or two: tables
# mark one over fewer values, and ``check`` says "few for a percentile".
PERCENTILE_MIN_COUNT = {"p90": 10, "p99": 100}
