"""Compare three or more sides at once (``rt-analyze compare A B C ...``), e.g. one capture per
provider: every side against the first (the baseline), each pair exactly as ``compare A X``
gives it, shown side by side.

Each side is read once. The JSON is ``{"baseline", "sides": [{"label", "sessions", "turns"}],
"versus_baseline": [the two-side result of A against each other side, in order]}``; the table
puts each side's p50 in a column, with its difference from A where it is beyond noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from analyzer.compare import (
    BOOTSTRAP_SAMPLES,
    SEED,
    SIDE_LABEL_WIDTH,
    _fmt,
    _fmt_usd,
    compare_sides,
    read_sides,
)
from analyzer.dataset import Dataset
from analyzer.layout import Column, console_width, fit_table
from analyzer.pricing import Prices
from analyzer.render import short

# Sides are named by letter in tables, as A and B are in a two-side compare.
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def compare_many(
    datasets: Sequence[Dataset],
    labels: Sequence[str],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = SEED,
    prices: Mapping[str, Prices] | None = None,
) -> dict[str, Any]:
    """Every side against the first; ``labels`` name the sides (their paths and filters)."""
    if not 2 <= len(datasets) <= len(LETTERS) or len(labels) != len(datasets):
        raise ValueError(f"compare takes 2 to {len(LETTERS)} sides, each with a label")
    sides = read_sides(datasets, prices)
    pairs = []
    for label, side in zip(labels[1:], sides[1:], strict=True):
        pair = compare_sides(sides[0], side, samples=samples, seed=seed)
        pair["a"], pair["b"] = labels[0], label
        pairs.append(pair)
    counts = [pairs[0]["counts"]["a"], *(pair["counts"]["b"] for pair in pairs)]
    return {
        "baseline": labels[0],
        "sides": [{"label": label, **count} for label, count in zip(labels, counts, strict=True)],
        "versus_baseline": pairs,
    }


def _difference(stats: Mapping[str, Any]) -> str:
    """A side's p50 difference from A: ``-107`` when beyond noise, else ``~`` (within it)."""
    if stats["p50_diff"] is None:
        return "-"
    return f"{_fmt(stats['p50_diff'])}" if stats["beyond_noise"] else "~"


def render_many(result: Mapping[str, Any], console: Console) -> None:
    """Latency p50 per side with each difference from A, then sizes, tokens, reply audio and
    cost per side."""
    sides, pairs = result["sides"], result["versus_baseline"]
    letters = LETTERS[: len(sides)]
    for letter, side in zip(letters, sides, strict=True):
        console.print(
            f"{letter}: {short(side['label'], SIDE_LABEL_WIDTH)} "
            f"({side['sessions']} sessions, {side['turns']} turns)"
        )
    columns = [Column("metric", priority=10, justify="left"), Column("p50 A", "ms", priority=9)]
    for letter in letters[1:]:
        columns += [
            Column(f"p50 {letter}", "ms", priority=9),
            Column(f"{letter} - A", "ms", priority=6),
        ]
    rows = []
    for metric, first in pairs[0]["latency_ms"].items():
        of_pairs = [pair["latency_ms"][metric] for pair in pairs]
        if not first["a"]["count"] and not any(stats["b"]["count"] for stats in of_pairs):
            continue
        row = [metric, _fmt(first["a"]["p50"])]
        for stats in of_pairs:
            row += [_fmt(stats["b"]["p50"]), _difference(stats)]
        rows.append(row)
    title = "latency p50; X - A where beyond noise (~: within it)"
    fit_table(columns, rows, console_width(console), title).print(console)
    for title, key in (
        ("sizes", "sizes"),
        ("tokens", "tokens"),
        ("tokens per response", "tokens_per_response"),
        ("reply audio", "reply_audio"),
        ("cost (USD, estimate)", "cost"),
    ):
        if not pairs[0].get(key):
            continue
        table = Table(title=title)
        table.add_column("")
        for letter in letters:
            table.add_column(letter, justify="right")
        cell = _fmt_usd if key == "cost" else _fmt
        for name, first in pairs[0][key].items():
            values = [first["a"], *(pair[key][name]["b"] for pair in pairs)]
            table.add_row(name, *(cell(value) for value in values))
        console.print(table)
