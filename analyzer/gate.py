"""Rules a capture must meet, for CI: ``p90(first_audio)=800ms`` or ``errors=0``, each read
as "at most", measured on the turn table and the size table, and judged PASS or FAIL.

Latency metrics are the report's keys (``first_audio``...), with ``p50``, ``p90``, ``p99``,
``max`` or ``mean`` over the turns that have the metric (percentiles as the report computes
them: numpy's linear interpolation). Counters: ``errors`` (the server's error events),
``turns``, ``interrupted`` (turns), ``stalls`` (times a reply's playback would have run dry).
A rule whose metric no turn has fails: a gate that cannot measure must not pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer.latency import floats, metric_stats
from analyzer.metric_names import PERCENTILE_MIN_COUNT
from analyzer.report import TURN_LATENCIES

if TYPE_CHECKING:
    import pandas as pd

STATS: tuple[str, ...] = ("p50", "p90", "p99", "max", "mean")
COUNTERS: tuple[str, ...] = ("errors", "turns", "interrupted", "stalls")
_UNITS_MS = {"ms": 1.0, "s": 1000.0, "": 1.0}
_LATENCY_RULE = re.compile(
    r"^\s*(?P<stat>\w+)\s*\(\s*(?P<metric>\w+)\s*\)\s*=\s*(?P<value>[0-9.]+)\s*(?P<unit>ms|s)?\s*$"
)
_COUNTER_RULE = re.compile(r"^\s*(?P<counter>\w+)\s*=\s*(?P<value>[0-9]+)\s*$")


class RuleError(ValueError):
    """A rule that cannot be read; the message says how to write it."""


@dataclass(frozen=True)
class Rule:
    """``stat(metric) <= limit`` (``limit_ms``) or ``counter <= limit``."""

    text: str
    name: str  # "p90(first_audio)" or "errors"
    stat: str | None  # None for a counter
    metric: str  # a latency key (first_audio) or a counter (errors)
    limit: float  # ms for latencies

    @property
    def is_latency(self) -> bool:
        return self.stat is not None


def parse_rule(text: str) -> Rule:
    """A rule from ``p90(first_audio)=800ms`` (ms, s or a bare number of ms) or ``errors=0``."""
    latency = _LATENCY_RULE.match(text)
    if latency:
        stat, metric = latency["stat"], latency["metric"]
        if stat not in STATS:
            raise RuleError(f"{text!r}: {stat} is not a statistic; use one of {', '.join(STATS)}.")
        if metric not in TURN_LATENCIES:
            raise RuleError(
                f"{text!r}: {metric} is not a latency; use one of {', '.join(TURN_LATENCIES)}."
            )
        try:
            value = float(latency["value"]) * _UNITS_MS[latency["unit"] or ""]
        except ValueError as exc:
            raise RuleError(f"{text!r}: {latency['value']} is not a number.") from exc
        return Rule(text, f"{stat}({metric})", stat, metric, value)
    counter = _COUNTER_RULE.match(text)
    if counter:
        name = counter["counter"]
        if name not in COUNTERS:
            raise RuleError(f"{text!r}: {name} is not a counter; use one of {', '.join(COUNTERS)}.")
        return Rule(text, name, None, name, float(counter["value"]))
    raise RuleError(
        f"cannot read the rule {text!r}; write STAT(LATENCY)=LIMIT (p90(first_audio)=800ms) or "
        "COUNTER=LIMIT (errors=0)."
    )


@dataclass(frozen=True)
class Verdict:
    """A rule, what was measured (None: nothing to measure) and over how many turns."""

    rule: Rule
    measured: float | None
    turns: int

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.measured <= self.rule.limit

    def line(self) -> str:
        """``PASS p90(first_audio) 260 ms <= 800 ms (4 turns)``, one line."""
        word = "PASS" if self.passed else "FAIL"
        unit = " ms" if self.rule.is_latency else ""
        limit = f"{_number(self.rule.limit)}{unit}"
        if self.measured is None:
            return f"{word} {self.rule.name}: no turn has {self.rule.metric}, limit {limit}"
        sign = "<=" if self.passed else ">"
        text = f"{word} {self.rule.name} {_number(self.measured)}{unit} {sign} {limit}"
        if self.rule.is_latency:
            few = self.turns < PERCENTILE_MIN_COUNT.get(self.rule.stat or "", 0)
            text += f" ({self.turns} turn{'s' if self.turns != 1 else ''}"
            text += ": few for a percentile)" if few else ")"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.text,
            "name": self.rule.name,
            "passed": self.passed,
            "measured": self.measured,
            "limit": self.rule.limit,
            "unit": "ms" if self.rule.is_latency else "count",
            "turns": self.turns,
        }


def _number(value: float) -> str:
    """Whole numbers without a fraction, others to 0.1 (ms: finer is noise)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def counters(turns: pd.DataFrame, sizes_by_event: pd.DataFrame) -> dict[str, int]:
    """The counters of :data:`COUNTERS` from a turn table and a ``sizes_by_event`` table."""
    server_errors = sizes_by_event[
        (sizes_by_event["direction"] == "server") & (sizes_by_event["event_type"] == "error")
    ]
    stalls = np.nan_to_num(floats(turns["stall_count"]), nan=0.0) if len(turns) else []
    return {
        "errors": int(server_errors["frames"].sum()),
        "turns": len(turns),
        "interrupted": int(turns["interrupted"].astype(bool).sum()) if len(turns) else 0,
        "stalls": int(sum(stalls)),
    }


def latency_value(turns: pd.DataFrame, stat: str, metric: str) -> tuple[float | None, int]:
    """``stat`` of a latency over the turns that have it (as the report rounds it) and their
    count."""
    column = TURN_LATENCIES[metric]
    values = floats(turns[column]) if column in turns else np.zeros(0)
    finite = values[~np.isnan(values)]
    if stat == "mean":
        return (round(float(finite.mean()), 3) if len(finite) else None), len(finite)
    stats = metric_stats(finite)
    value = stats[stat]
    return (None if value is None or math.isnan(value) else float(value)), len(finite)


def judge(
    rules: Sequence[Rule], turns: pd.DataFrame, sizes_by_event: pd.DataFrame
) -> list[Verdict]:
    """A verdict per rule, in order."""
    counts = counters(turns, sizes_by_event)
    verdicts = []
    for rule in rules:
        if rule.stat is not None:
            measured, n = latency_value(turns, rule.stat, rule.metric)
            verdicts.append(Verdict(rule, measured, n))
        else:
            verdicts.append(Verdict(rule, float(counts[rule.metric]), counts["turns"]))
    return verdicts
