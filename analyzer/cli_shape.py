"""Tables as the CLI writes them to CSV and JSON: counts as integers (``96``, not ``96.0``; a
column of counts with a missing value is float in pandas), latency metrics under their one name.
"""

from __future__ import annotations

import pandas as pd

from analyzer.metric_names import metric_name

# Turn-table columns that count things or hold whole milliseconds the protocol gives as integers.
COUNT_SUFFIXES = ("_tokens", "_deltas", "_bytes", "_count", "_calls_count")
WHOLE_COLUMNS = frozenset({"index", "played_ms", "silence_duration_ms"})


def whole_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its count columns as nullable integers when every value is whole."""
    changed: dict[str, pd.Series] = {}
    for column in table.columns:
        name = str(column)
        if not (name.endswith(COUNT_SUFFIXES) or name in WHOLE_COLUMNS):
            continue
        values = table[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        present = values.dropna()
        # Whole and exact in a float (hostile input can hold 1e300 tokens): else left as it is.
        if ((present % 1 == 0) & (present.abs() <= 2**53)).all():
            changed[name] = values.astype("Int64")
    return table.assign(**changed) if changed else table


def with_iso_times(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``table`` with ISO 8601 (UTC, ms) columns of its epoch-seconds ones, named by
    ``columns`` (epoch column -> new column), each right after its epoch column."""
    from analyzer.identity import iso_ms

    out = table.copy()
    for source, name in columns.items():
        if source in out and name not in out:
            after = list(out.columns).index(source) + 1
            out.insert(after, name, [iso_ms(v) for v in out[source]])
    return out


def named_metrics(summary: pd.DataFrame) -> pd.DataFrame:
    """A latency summary with its ``metric`` column under the metrics' one names."""
    return summary.assign(metric=summary["metric"].map(metric_name))
