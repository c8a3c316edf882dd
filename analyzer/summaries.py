"""Per-session summaries of turn columns (latency percentiles, streaming health, token totals,
cost) for many sessions at once: grouped numpy over one block of columns, instead of a numpy
call per session and metric (a fleet has thousands of sessions of a few turns each, and
numpy's fixed cost per call was most of the report's summary time).

A :class:`TurnBlock` holds the turn columns of consecutive groups (sessions, or one group for
a whole capture); each function returns one result per group, equal to what the same summary
of that group's turns alone gives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.kinds import TOKEN_FIELDS
from analyzer.pricing import Prices

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

# Percentiles use linear interpolation between the closest ranks (numpy's default method,
# reproduced to the bit by :func:`_grouped_quantile`).
QUANTILES: dict[str, float] = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class TurnBlock:
    """Turn columns of consecutive groups: group ``g`` is rows ``bounds[g]:bounds[g + 1]``.
    Numeric columns are floats (NaN when missing); ``interrupted`` is bool; ``would_stall``
    holds True, False or None."""

    columns: Mapping[str, np.ndarray]
    bounds: Ints

    @classmethod
    def of_groups(
        cls, groups: Sequence[Sequence[Mapping[str, Any]]], names: Sequence[str]
    ) -> TurnBlock:
        """The ``names`` columns of each group's turn rows (dicts)."""
        rows = [row for group in groups for row in group]
        sizes = [len(group) for group in groups]
        bounds = np.concatenate(([0], np.cumsum(sizes, dtype=np.intp))).astype(np.intp)
        return cls({name: _column(name, [row[name] for row in rows]) for name in names}, bounds)

    @classmethod
    def whole(cls, columns: Any, names: Sequence[str]) -> TurnBlock:
        """Columns (a turn table, or lists/arrays by name) as one group; a column not given is
        all missing."""
        length = len(next((columns[c] for c in columns), []))
        block = {
            name: _column(name, list(columns[name]) if name in columns else [None] * length)
            for name in names
        }
        return cls(block, np.array([0, length], dtype=np.intp))

    @classmethod
    def by_session(cls, turns: Any, names: Sequence[str]) -> tuple[list[str], TurnBlock]:
        """A turn table's sessions, in order of first appearance (pandas' ``groupby(sort=
        False)``, without a missing id), and their turns as one block, a group each."""
        ids = list(turns["session_id"])
        first: dict[Any, int] = {}
        codes = np.array(
            [-1 if missing(i) else first.setdefault(i, len(first)) for i in ids], dtype=np.intp
        )
        order = np.argsort(codes, kind="stable")[int(np.sum(codes < 0)) :]
        counts = np.bincount(codes[codes >= 0], minlength=len(first))
        bounds = np.concatenate(([0], np.cumsum(counts, dtype=np.intp))).astype(np.intp)
        columns = {
            name: _column(
                name,
                list(np.asarray(turns[name], dtype=object)[order])
                if name in turns
                else [None] * len(order),
            )
            for name in names
        }
        return [str(i) for i in first], cls(columns, bounds)

    @property
    def groups(self) -> int:
        return len(self.bounds) - 1

    def group_of_rows(self) -> Ints:
        """Each row's group index."""
        return np.repeat(np.arange(self.groups, dtype=np.intp), np.diff(self.bounds))

    def floats(self, name: str) -> Floats:
        if name not in self.columns:
            return np.full(int(self.bounds[-1]), np.nan)
        return np.asarray(self.columns[name], dtype=float)


def _column(name: str, values: list[Any]) -> np.ndarray:
    if name == "interrupted":
        return np.array([bool(v) for v in values], dtype=bool)
    if name == "would_stall":
        column = np.empty(len(values), dtype=object)
        column[:] = values
        return column
    try:
        return np.array(values, dtype=float)  # None -> NaN
    except TypeError:  # pandas' NA
        return np.array([math.nan if missing(v) else float(v) for v in values], dtype=float)


def missing(value: Any) -> bool:
    """None, NaN (a float or numpy's) or pandas' NA, without importing pandas."""
    try:
        return value is None or bool(value != value)
    except TypeError:  # pandas' NA cannot be a bool
        return True


@dataclass(frozen=True)
class _Sorted:
    """The finite values of a column sorted within each group."""

    values: Floats
    starts: Ints  # first position of each group in ``values``
    counts: Ints


def _sorted(values: Floats, group: Ints, groups: int) -> _Sorted:
    keep = ~np.isnan(values)
    values, group = values[keep], group[keep]
    order = np.lexsort((values, group))
    counts = np.bincount(group, minlength=groups).astype(np.intp)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    return _Sorted(values[order], starts, counts)


def _grouped_quantile(s: _Sorted, q: float) -> Floats:
    """``np.quantile(group_values, q)`` of every group with values (NaN for the others), by
    numpy's own arithmetic: virtual index ``(n - 1) * q``, and its two-sided lerp."""
    n = np.maximum(s.counts, 1)
    virtual = (n - 1) * q
    below = np.floor(virtual)
    last = virtual >= n - 1
    lo = np.where(last, n - 1, below).astype(np.intp)
    hi = np.where(last, n - 1, below + 1).astype(np.intp)
    gamma = np.where(last, 0.0, virtual - below)
    a = s.values[np.minimum(s.starts + lo, len(s.values) - 1)] if len(s.values) else n * np.nan
    b = s.values[np.minimum(s.starts + hi, len(s.values) - 1)] if len(s.values) else n * np.nan
    diff = b - a
    result = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return np.where(s.counts > 0, result, np.nan)


def _last(s: _Sorted) -> Floats:
    if not len(s.values):
        return np.full(len(s.counts), np.nan)
    at = np.minimum(s.starts + np.maximum(s.counts, 1) - 1, len(s.values) - 1)
    return np.where(s.counts > 0, s.values[at], np.nan)


def _first(s: _Sorted) -> Floats:
    if not len(s.values):
        return np.full(len(s.counts), np.nan)
    return np.where(s.counts > 0, s.values[np.minimum(s.starts, len(s.values) - 1)], np.nan)


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def metric_summaries(values: Floats, block: TurnBlock) -> list[dict[str, float | int | None]]:
    """Per group: count, p50, p90, p99, max of its non-NaN ``values`` (None when none)."""
    s = _sorted(values, block.group_of_rows(), block.groups)
    found = {name: _grouped_quantile(s, q).tolist() for name, q in QUANTILES.items()}
    top = _last(s).tolist()
    out: list[dict[str, float | int | None]] = []
    for g, count in enumerate(s.counts.tolist()):
        stats: dict[str, float | int | None] = {"count": count}
        for name in QUANTILES:
            stats[name] = _rounded(found[name][g])
        stats["max"] = _rounded(top[g])
        out.append(stats)
    return out


def latency_summaries(block: TurnBlock, metrics: Sequence[str]) -> list[dict[str, dict[str, Any]]]:
    """Per group: ``{metric: metric summary}``."""
    by_metric = {m: metric_summaries(block.floats(m), block) for m in metrics}
    return [{m: by_metric[m][g] for m in metrics} for g in range(block.groups)]


def streaming_summaries(block: TurnBlock) -> list[dict[str, Any]]:
    """Per group, the streaming health of its replies that had audio: how fast audio came
    compared with real time (``stream_ratio``, > 1 is faster) and whether playback would have
    run dry."""
    group = block.group_of_rows()
    audio = np.nan_to_num(block.floats("reply_audio_deltas"), nan=0.0) > 0
    in_audio = np.where(audio, group, block.groups)  # rows without audio in a spare group
    groups = block.groups + 1
    ratio = _sorted(block.floats("stream_ratio"), in_audio, groups)
    stall_ms = _sorted(block.floats("stall_ms"), in_audio, groups)
    replies = np.bincount(in_audio, minlength=groups)
    stalls = block.columns.get("would_stall", np.full(len(group), None, dtype=object))
    stalled = np.array([v is True or (isinstance(v, np.bool_) and bool(v)) for v in stalls])
    would_stall = np.bincount(in_audio[stalled], minlength=groups) if len(stalled) else replies * 0
    stall_count = np.bincount(
        in_audio, weights=np.nan_to_num(block.floats("stall_count"), nan=0.0), minlength=groups
    )
    ratio_min, ratio_p50 = _first(ratio).tolist(), _grouped_quantile(ratio, 0.5).tolist()
    stall_max = _last(stall_ms).tolist()
    out = []
    for g in range(block.groups):
        if not replies[g]:
            out.append(dict(NO_STREAMING))
            continue
        out.append(
            {
                "responses_with_audio": int(replies[g]),
                "stream_ratio_min": _rounded(ratio_min[g]),
                "stream_ratio_p50": _rounded(ratio_p50[g]),
                "would_stall": int(would_stall[g]),
                "stall_count": int(stall_count[g]),
                "stall_ms_max": _rounded(stall_max[g]),
            }
        )
    return out


NO_STREAMING: dict[str, Any] = {
    "responses_with_audio": 0,
    "stream_ratio_min": None,
    "stream_ratio_p50": None,
    "would_stall": 0,
    "stall_count": 0,
    "stall_ms_max": None,
}


def token_summaries(block: TurnBlock) -> list[dict[str, Any]]:
    """Per group, the token counts of its responses summed (``responses`` = how many reported
    usage). Input tokens re-count the whole conversation at every response: that is billed."""
    group = block.group_of_rows()
    reported = ~np.isnan(block.floats("total_tokens"))
    responses = np.bincount(group[reported], minlength=block.groups).tolist()
    sums: dict[str, list[int | None]] = {}
    for name in TOKEN_FIELDS:
        values = block.floats(name)
        present = reported & ~np.isnan(values)
        total = np.bincount(group[present], weights=values[present], minlength=block.groups)
        seen = np.bincount(group[present], minlength=block.groups)
        sums[name] = [
            int(t) if n else None for t, n in zip(total.tolist(), seen.tolist(), strict=True)
        ]
    return [
        {"responses": responses[g], **{name: sums[name][g] for name in TOKEN_FIELDS}}
        for g in range(block.groups)
    ]


def reply_costs_usd(block: TurnBlock, prices: Sequence[Prices | None]) -> list[float | None]:
    """Per group, the estimated USD of its responses that reported usage, at that group's
    prices (None: no price, or no response reported usage). Cached tokens are part of the
    text/audio input counts; when their split between text and audio is not reported (beta),
    it is taken proportional to the input text/audio counts. Summed in turn order."""
    group = block.group_of_rows()
    reported = ~np.isnan(block.floats("total_tokens"))

    def n(name: str) -> Floats:
        return np.nan_to_num(block.floats(name), nan=0.0)

    input_text, input_audio, cached = (
        n("input_text_tokens"),
        n("input_audio_tokens"),
        n("input_cached_tokens"),
    )
    split_text, split_audio = (
        block.floats("input_cached_text_tokens"),
        block.floats("input_cached_audio_tokens"),
    )
    unsplit = np.isnan(split_text) | np.isnan(split_audio)
    total_in = input_text + input_audio
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total_in != 0, input_text / np.where(total_in != 0, total_in, 1.0), 0.0)
    cached_text = np.where(unsplit, cached * share, split_text)
    cached_audio = np.where(unsplit, cached * (1 - share), split_audio)
    output_text, output_audio = n("output_text_tokens"), n("output_audio_tokens")
    table = [p if p is not None else _NO_PRICE for p in prices]

    def price(field: str) -> Floats:
        return np.array([getattr(p, field) for p in table], dtype=float)[group]

    usd = (
        (input_text - cached_text) * price("input_text")
        + cached_text * price("cached_input_text")
        + (input_audio - cached_audio) * price("input_audio")
        + cached_audio * price("cached_input_audio")
        + output_text * price("output_text")
        + output_audio * price("output_audio")
    ) / 1_000_000
    totals = np.bincount(group[reported], weights=usd[reported], minlength=block.groups)
    counts = np.bincount(group[reported], minlength=block.groups)
    return [
        float(totals[g]) if counts[g] and prices[g] is not None else None
        for g in range(block.groups)
    ]


_NO_PRICE = Prices(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
