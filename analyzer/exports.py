"""Write turn and size tables to Parquet or CSV, and turns to OTLP/JSON trace files.

Parquet keeps the types (``function_calls`` a list of strings, ``would_stall`` a nullable
boolean); CSV writes lists as JSON arrays so they read back unambiguously.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.dataset import Dataset
from analyzer.dataset_analysis import (
    DATASET_TURN_KEYS,
    DatasetTurns,
    iter_analyses,
)
from analyzer.otel import otlp_traces
from analyzer.private_files import make_private_dir, open_private
from analyzer.sizes import BY_EVENT_COLUMNS, SIZE_COLUMNS
from analyzer.turns import TURN_COLUMNS, TURN_TEXT_COLUMNS

TABLE_SUFFIXES = (".parquet", ".csv")


def turn_arrow_schema(keys: tuple[str, ...] = DATASET_TURN_KEYS) -> pa.Schema:
    """The Arrow schema of a turn table (``keys`` first, then :data:`TURN_COLUMNS`)."""
    fields = [pa.field(k, pa.string()) for k in keys]
    for column in TURN_COLUMNS:
        if column in TURN_TEXT_COLUMNS:
            kind: pa.DataType = pa.string()
        elif column == "index":
            kind = pa.int64()
        elif column in ("interrupted", "would_stall"):
            kind = pa.bool_()
        elif column == "function_calls":
            kind = pa.list_(pa.string())
        else:
            kind = pa.float64()
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def turns_to_arrow(turns: pd.DataFrame) -> pa.Table:
    """A turn table (with or without the dataset keys) as Arrow with a fixed schema."""
    keys = tuple(k for k in DATASET_TURN_KEYS if k in turns)
    schema = turn_arrow_schema(keys)
    if "provider_session_id" in turns:  # from the sessions' frames (analyzer.identity)
        schema = schema.append(pa.field("provider_session_id", pa.string()))
    columns = {}
    for f in schema:
        values = turns[f.name].tolist() if f.name in turns else [None] * len(turns)
        if f.name == "function_calls":
            values = [[str(x) for x in v] if v is not None else [] for v in values]
        else:
            values = [_cell(v) for v in values]
        columns[f.name] = pa.array(values, f.type)
    return pa.table(columns, schema=schema)


def sizes_to_arrow(sizes: pd.DataFrame) -> pa.Table:
    """A ``sizes_by_event`` table as Arrow (strings and int64 counts)."""
    extra = [c for c in sizes.columns if c not in BY_EVENT_COLUMNS]
    fields = [pa.field(c, pa.string()) for c in extra]
    fields += [
        pa.field(c, pa.int64() if c in SIZE_COLUMNS else pa.string()) for c in BY_EVENT_COLUMNS
    ]
    schema = pa.schema(fields)
    return pa.table(
        {f.name: pa.array([_cell(v) for v in sizes[f.name].tolist()], f.type) for f in schema},
        schema=schema,
    )


def write_table(table: pa.Table, path: Path) -> Path:
    """Write ``table`` as Parquet or CSV, chosen by ``path``'s suffix."""
    if path.suffix not in TABLE_SUFFIXES:
        raise ValueError(f"{path}: write tables as .parquet or .csv.")
    # Turn tables hold transcripts: private files, like the captures they come from.
    if not path.parent.exists():
        make_private_dir(path.parent)
    with os.fdopen(open_private(path), "wb") as out:
        if path.suffix == ".parquet":
            pq.write_table(table, out, compression="zstd")
            return path
        frame = table.to_pandas()
        for f in table.schema:
            if pa.types.is_list(f.type):
                frame[f.name] = [json.dumps(list(v), ensure_ascii=False) for v in frame[f.name]]
        out.write(frame.to_csv(index=False).encode())
    return path


def read_turns(path: Path) -> pd.DataFrame:
    """A turn table written by :func:`write_table` (Parquet or CSV) back as a DataFrame."""
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas()
    frame = pd.read_csv(path)
    if "function_calls" in frame:
        frame["function_calls"] = [json.loads(v) for v in frame["function_calls"]]
    return frame


def export_dataset(
    dataset: Dataset,
    turns_path: Path | None = None,
    sizes_path: Path | None = None,
    otlp_path: Path | None = None,
    version: str = "",
) -> dict[str, Any]:
    """Analyze the dataset run file by run file and write what was asked: the turn table, the
    sizes by event, OTLP/JSON spans. Returns counts and the paths written."""
    # Rows gathered, each table made once: a table per session took ~20 ms (1 GB: 37 s).
    turns = DatasetTurns()
    size_rows: list[dict[str, Any]] = []
    sessions: list[tuple[Mapping[str, Any], list[dict[str, Any]]]] = []
    written: dict[str, Any] = {"sessions": 0, "turns": 0, "files": []}
    for analysis in iter_analyses(dataset):
        facts = analysis.facts
        written["sessions"] += 1
        written["turns"] += len(analysis.turn_rows)
        if turns_path is not None:
            turns.add(analysis)
        if sizes_path is not None:
            run_id = facts.get("run_id")
            size_rows.extend({"run_id": run_id, **row} for row in analysis.size_rows)
        if otlp_path is not None:
            run_id = facts.get("run_id")
            sessions.append((facts, [{**row, "run_id": run_id} for row in analysis.turn_rows]))
    if turns_path is not None:
        table = turns_to_arrow(turns.table())
        written["files"].append(str(write_table(table, turns_path)))
    if sizes_path is not None:
        sizes = pd.DataFrame(size_rows, columns=["run_id", *BY_EVENT_COLUMNS])
        written["files"].append(str(write_table(sizes_to_arrow(sizes), sizes_path)))
    if otlp_path is not None:
        request = otlp_traces(sessions, version)
        if not otlp_path.parent.exists():
            make_private_dir(otlp_path.parent)
        with os.fdopen(open_private(otlp_path), "wb") as out:
            out.write(json.dumps(request, ensure_ascii=False, allow_nan=False).encode())
        written["spans"] = sum(
            len(s["spans"]) for r in request["resourceSpans"] for s in r["scopeSpans"]
        )
        written["files"].append(str(otlp_path))
    return written
