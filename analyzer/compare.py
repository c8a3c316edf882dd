"""Compare two sets of sessions: latency percentiles side by side and whether they differ beyond
noise, with sizes, tokens, reply audio and estimated cost (sides may be different protocols).

A difference is "beyond noise" when the bootstrap 95% confidence interval of the difference of
medians (B minus A, resampling turns, seeded) excludes zero. The Mann-Whitney U test's two-sided
p-value (normal approximation with tie correction and continuity correction) is given too; both
are computed with numpy alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from analyzer.compare_cost import Side, cost_section, read_side, reply_audio_section
from analyzer.dataset import Dataset
from analyzer.dataset_analysis import dataset_sizes
from analyzer.latency import LATENCY_METRICS, metric_stats
from analyzer.layout import Column, console_width, fit_table
from analyzer.pricing import Prices
from analyzer.render import short
from analyzer.sizes import size_totals, token_totals
from analyzer.turns import rows_of

BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20250101
# Resamples drawn at once: bounds the bootstrap's memory to this many rows of each sample.
_BOOTSTRAP_CHUNK = 250


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of sample A (how often an A value beats a B value, ties counting half)
    z: float
    p_value: float


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Start of each run of equal values, and its length.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, ordered.size])
    average = starts + (counts + 1) / 2.0
    ranks = np.empty(values.size, dtype=float)
    ranks[order] = np.repeat(average, counts)
    return ranks


def mann_whitney_u(a: np.ndarray, b: np.ndarray) -> MannWhitney | None:
    """Two-sided Mann-Whitney U test of ``a`` vs ``b`` (None when either is empty)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return None
    both = np.concatenate([a, b])
    ranks = rank_average(both)
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    n = n1 + n2
    _, counts = np.unique(both, return_counts=True)
    tie_term = float((counts**3 - counts).sum())
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    mean = n1 * n2 / 2.0
    if variance <= 0:
        return MannWhitney(u1, 0.0, 1.0)
    deviation = u1 - mean
    z = math.copysign(max(abs(deviation) - 0.5, 0.0), deviation) / math.sqrt(variance)
    p = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    return MannWhitney(u1, z, p)


def bootstrap_median_difference(
    a: np.ndarray,
    b: np.ndarray,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``median(b) - median(a)`` (None when either is empty)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return None
    rng = np.random.default_rng(seed)
    differences = np.empty(samples)
    for start in range(0, samples, _BOOTSTRAP_CHUNK):
        k = min(_BOOTSTRAP_CHUNK, samples - start)
        med_a = np.median(a[rng.integers(0, a.size, (k, a.size))], axis=1)
        med_b = np.median(b[rng.integers(0, b.size, (k, b.size))], axis=1)
        differences[start : start + k] = med_b - med_a
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return round(float(low), 3), round(float(high), 3)


def _values(turns: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in turns or not len(turns):
        return np.empty(0)
    array = np.asarray(turns[metric], dtype=float)
    return array[~np.isnan(array)]


def compare_metric(
    a: np.ndarray, b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """Both sides' stats, the p50 difference (B - A), its bootstrap CI, Mann-Whitney p, and
    ``beyond_noise`` (the CI excludes zero; None when a side has no values)."""
    stats_a, stats_b = metric_stats(a), metric_stats(b)
    ci = bootstrap_median_difference(a, b, samples, seed=seed)
    test = mann_whitney_u(a, b)
    p50_a, p50_b = stats_a["p50"], stats_b["p50"]
    diff = round(p50_b - p50_a, 3) if p50_a is not None and p50_b is not None else None
    return {
        "a": stats_a,
        "b": stats_b,
        "p50_diff": diff,
        "p50_diff_ci": list(ci) if ci is not None else None,
        "mann_whitney_p": float(f"{test.p_value:.3g}") if test is not None else None,
        "beyond_noise": (ci[0] > 0 or ci[1] < 0) if ci is not None else None,
    }


def _ratio(a: Any, b: Any) -> float | None:
    if a in (None, 0) or b is None:
        return None
    return round(float(b) / float(a), 4)


def compare_turns(
    turns_a: pd.DataFrame,
    turns_b: pd.DataFrame,
    sizes_a: pd.DataFrame | None = None,
    sizes_b: pd.DataFrame | None = None,
    metrics: Sequence[str] = LATENCY_METRICS,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """``{"counts", "latency_ms": {metric: compare_metric}, "sizes", "tokens"}`` of side A
    (``turns_a``, ``sizes_a``: turn tables and ``sizes_by_event`` tables) against side B."""

    def sessions(turns: pd.DataFrame, sizes: pd.DataFrame | None) -> int:
        ids: set[str] = set()
        if len(turns):
            keys = [c for c in ("run_id", "session_id") if c in turns]
            ids.update("/".join(map(str, k)) for k in turns[keys].drop_duplicates().to_numpy())
        if sizes is not None and len(sizes) and not len(turns):
            ids.update(map(str, sizes["session_id"].unique()))
        return len(ids)

    latency = {
        metric: compare_metric(_values(turns_a, metric), _values(turns_b, metric), samples, seed)
        for metric in metrics
    }
    result: dict[str, Any] = {
        "counts": {
            "a": {"sessions": sessions(turns_a, sizes_a), "turns": len(turns_a)},
            "b": {"sessions": sessions(turns_b, sizes_b), "turns": len(turns_b)},
        },
        "latency_ms": latency,
    }
    if sizes_a is not None and sizes_b is not None:
        size_a = size_totals(rows_of(sizes_a)) if len(sizes_a) else None
        size_b = size_totals(rows_of(sizes_b)) if len(sizes_b) else None
        keys = ("frames", "total_bytes", "audio_b64_bytes", "audio_bytes", "audio_share")
        result["sizes"] = {
            key: {
                "a": size_a[key] if size_a else None,
                "b": size_b[key] if size_b else None,
                "ratio": _ratio(size_a[key] if size_a else None, size_b[key] if size_b else None),
            }
            for key in keys
        }
    tok_a, tok_b = token_totals(turns_a), token_totals(turns_b)
    result["tokens"] = {
        key: {"a": tok_a[key], "b": tok_b[key], "ratio": _ratio(tok_a[key], tok_b[key])}
        for key in tok_a
    }
    per_response: dict[str, Any] = {}
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        mean_a = tok_a[key] / tok_a["responses"] if tok_a[key] and tok_a["responses"] else None
        mean_b = tok_b[key] / tok_b["responses"] if tok_b[key] and tok_b["responses"] else None
        per_response[key] = {
            "a": round(mean_a, 3) if mean_a is not None else None,
            "b": round(mean_b, 3) if mean_b is not None else None,
            "ratio": _ratio(mean_a, mean_b),
        }
    result["tokens_per_response"] = per_response
    return result


def comparison_table(result: dict[str, Any]) -> pd.DataFrame:
    """The latency part of :func:`compare_turns` as one row per metric, for tables and CSV."""
    rows = []
    for metric, c in result["latency_ms"].items():
        ci = c["p50_diff_ci"]
        rows.append(
            {
                "metric": metric,
                "count_a": c["a"]["count"],
                "count_b": c["b"]["count"],
                "p50_a": c["a"]["p50"],
                "p50_b": c["b"]["p50"],
                "p90_a": c["a"]["p90"],
                "p90_b": c["b"]["p90"],
                "p99_a": c["a"]["p99"],
                "p99_b": c["b"]["p99"],
                "p50_diff": c["p50_diff"],
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
                "mann_whitney_p": c["mann_whitney_p"],
                "beyond_noise": c["beyond_noise"],
            }
        )
    return pd.DataFrame(rows)


def compare_datasets(
    a: Dataset,
    b: Dataset,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
    prices: Mapping[str, Prices] | None = None,
) -> dict[str, Any]:
    """:func:`compare_turns` of two datasets (each read run file by run file), with each
    side's reply audio and estimated cost (:mod:`analyzer.compare_cost`): sides of different
    protocols compare on the same measures."""
    side_a, side_b = read_sides([a, b], prices)
    return compare_sides(side_a, side_b, samples, seed)


def read_sides(
    datasets: Sequence[Dataset], prices: Mapping[str, Prices] | None = None
) -> list[tuple[Side, pd.DataFrame]]:
    """Each dataset's turns and costs (:func:`read_side`) and its ``sizes_by_event`` table."""
    return [(read_side(d, prices), dataset_sizes(d)) for d in datasets]


def compare_sides(
    a: tuple[Side, pd.DataFrame],
    b: tuple[Side, pd.DataFrame],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """:func:`compare_turns` of two sides read by :func:`read_sides`, with reply audio and cost."""
    (side_a, sizes_a), (side_b, sizes_b) = a, b
    result = compare_turns(side_a.turns, side_b.turns, sizes_a, sizes_b, samples=samples, seed=seed)
    result["reply_audio"] = reply_audio_section(side_a.turns, side_b.turns)
    result["cost"] = cost_section(side_a, side_b)
    return result


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _fmt_usd(value: Any) -> str:
    """Dollars to the micro-dollar: a session's cost is often under a cent."""
    return f"{value:.6f}" if isinstance(value, float) else _fmt(value)


SIDE_LABEL_WIDTH = 60


# The latency table's columns, fitted to the terminal (analyzer.layout): numbers stay whole.
COMPARE_COLUMNS = (
    Column("metric", priority=10, justify="left"),
    Column("n A", priority=3),
    Column("n B", priority=3),
    Column("p50 A", "ms", priority=8),
    Column("p50 B", "ms", priority=8),
    Column("p90 A", "ms", priority=5),
    Column("p90 B", "ms", priority=5),
    Column("p50 diff", "ms", priority=9),
    Column("95% CI", "ms", text=True, priority=7, min_width=9, whole_words=True),
    Column("MW p", priority=6),
    Column("beyond noise", text=True, priority=9, min_width=6),
)


def render_comparison(result: dict[str, Any], console: Console) -> None:
    """The comparison as rich tables: latency, sizes, tokens, reply audio, cost."""
    counts = result["counts"]
    # Labels cut short: rich folds a long word in time quadratic in its length (a 100 kB
    # --a-where took 40 s to print), and a reader needs only the start of it.
    for key in ("a", "b"):
        console.print(
            f"{key.upper()}: {short(result.get(key, key.upper()), SIDE_LABEL_WIDTH)} "
            f"({counts[key]['sessions']} sessions, {counts[key]['turns']} turns)"
        )
    rows = []
    for row in comparison_table(result).to_dict("records"):
        if not row["count_a"] and not row["count_b"]:
            continue
        ci = (
            f"[{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}]"
            if row["ci_low"] is not None and not pd.isna(row["ci_low"])
            else "-"
        )
        rows.append(
            [
                str(row["metric"]).removeprefix("latency_").removesuffix("_ms"),
                *(
                    _fmt(_plain(row[k]))
                    for k in ("count_a", "count_b", "p50_a", "p50_b", "p90_a", "p90_b", "p50_diff")
                ),
                ci,
                _p_value(_plain(row["mann_whitney_p"])),
                _fmt(_plain(row["beyond_noise"])),
            ]
        )
    fit_table(COMPARE_COLUMNS, rows, console_width(console), "latency: B - A").print(console)
    for title, section in (
        ("sizes", result.get("sizes")),
        ("tokens", result.get("tokens")),
        ("tokens per response", result.get("tokens_per_response")),
        ("reply audio", result.get("reply_audio")),
        ("cost (USD, estimate)", result.get("cost")),
    ):
        if not section:
            continue
        side = Table(title=title)
        for name in ("", "A", "B", "B / A"):
            side.add_column(name, justify="left" if not name else "right")
        cell = _fmt_usd if title.startswith("cost") else _fmt
        for key, values in section.items():
            side.add_row(key, cell(values["a"]), cell(values["b"]), _fmt(values["ratio"]))
        console.print(side)


def _p_value(value: Any) -> str:
    return "-" if value is None else f"{value:.2g}"


def _plain(value: Any) -> Any:
    """A table cell as a Python value (NaN -> None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
