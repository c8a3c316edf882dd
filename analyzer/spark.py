"""The per-session analysis on Spark: frames grouped by (file, session), each group analyzed by
the same :func:`analyzer.analysis.analyze_session` the local engine runs, in ``applyInPandas``.

Optional: ``pip install 'rt-analyze[spark]'`` (pyspark; a Java 17+ runtime). The driver reads
the session facts from the Parquet footers (small) and ships them to the workers as a broadcast;
frames are read by Spark itself, analysis columns only. Workers must see the capture files at
the same paths (local mode, or a shared filesystem).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa

from analyzer.analysis import analyze_session
from analyzer.dataset import Dataset
from analyzer.dataset_analysis import ReportParts, session_report, with_dataset_keys
from analyzer.exports import turn_arrow_schema
from analyzer.filters import Filters
from analyzer.pricing import Prices
from analyzer.report import jsonable
from analyzer.schema import ANALYSIS_COLUMNS, FRAME_SCHEMA, SESSION_FIELDS
from analyzer.turns import TURN_COLUMNS, rows_of

# Workers decode each session's events from its frames (the adapter, as for a format 1 capture):
# Spark reads files of every format version alike, and has no type for the events' structs.
SPARK_COLUMNS: tuple[str, ...] = tuple(c for c in ANALYSIS_COLUMNS if c != "events")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession

INSTALL_HINT = "install the Spark extra: pip install 'rt-analyze[spark]' (needs Java 17+)"
DEFAULT_MASTER = "local[2]"
_FILE = "_rt_file"
# PySpark 4.x warns that it "does not yet fully support pandas >= 3.0.0" at every conversion;
# the analysis is tested equal to the local engine's, so the warning is noise for our users.
_PANDAS_WARNING = r"PySpark does not yet fully support pandas"


class SparkUnavailable(Exception):
    """pyspark (or Java) is not available; the message says how to get it."""


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
        yield


def spark_session(master: str = DEFAULT_MASTER, app_name: str = "rt-analyze") -> SparkSession:
    """A Spark session for the analysis (UI off, Arrow on, UTC, the driver's Python on workers
    unless ``PYSPARK_PYTHON`` says otherwise)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable(f"pyspark is not installed; {INSTALL_HINT}.") from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        with _quiet():
            session = (
                SparkSession.builder.master(master)
                .appName(app_name)
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.shuffle.partitions", "8")
                .getOrCreate()
            )
    except Exception as exc:  # Java missing or failing to start: say so in one line
        raise SparkUnavailable(
            f"cannot start Spark ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            f"{INSTALL_HINT}."
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_ddl(schema: pa.Schema) -> str:
    """A Spark DDL schema string for an Arrow schema of strings, numbers, booleans, lists."""

    def kind(t: pa.DataType) -> str:
        if pa.types.is_dictionary(t):
            return kind(t.value_type)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "string"
        if pa.types.is_int64(t):
            return "bigint"
        if pa.types.is_float64(t):
            return "double"
        if pa.types.is_boolean(t):
            return "boolean"
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            return "binary"
        if pa.types.is_list(t):
            return f"array<{kind(t.value_type)}>"
        raise TypeError(f"no Spark type for {t}")

    return ", ".join(f"`{f.name}` {kind(f.type)}" for f in schema)


def file_key(path_or_uri: str) -> str:
    """The same key for a path on the driver and Spark's ``input_file_name()`` URI of it."""
    text = path_or_uri
    if "://" in text or text.startswith("file:"):
        text = unquote(urlparse(text).path)
    return os.path.realpath(text)


def _session_facts(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Facts as the local engine's ``sessions_frame`` row holds them."""
    return {f: raw.get(f) for f in (*SESSION_FIELDS, "date", "proxy_host")}


def _empty_frames() -> pd.DataFrame:
    schema = pa.schema([FRAME_SCHEMA.field(c) for c in SPARK_COLUMNS])
    return schema.empty_table().to_pandas()


def _group_facts(
    frames: pd.DataFrame, facts_by_key: Mapping[tuple[str, str], dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    key = (file_key(str(frames[_FILE].iloc[0])), str(frames["session_id"].iloc[0]))
    facts = dict(facts_by_key.get(key) or {"session_id": key[1]})
    frames = frames.drop(columns=[_FILE])
    if facts.get("start_s") is None and len(frames):
        facts["start_s"] = float(frames["time_s"].min())
    return frames, facts


class _Job:
    """Frames on Spark and the facts the workers need, for one dataset."""

    def __init__(self, spark: SparkSession, dataset: Dataset) -> None:
        from pyspark.sql import functions as F

        self.spark = spark
        self.dataset = dataset
        self.facts: dict[tuple[str, str], dict[str, Any]] = {}
        parquet: list[str] = []
        others: list[Path] = []
        for run in dataset.candidate_files():
            footer = dataset.footer(run)
            if footer is None:
                others.append(run.path)
                continue
            _, facts = footer
            kept = [f for f in facts if dataset.filters.keeps(f)]
            if facts and not kept:
                continue
            dataset.files_read.append(run.path)
            parquet.append(str(run.path))
            for f in kept:
                self.facts[(file_key(str(run.path)), str(f["session_id"]))] = _session_facts(f)
        columns = list(SPARK_COLUMNS)
        frames: SparkFrame | None = None
        if parquet:
            frames = (
                spark.read.parquet(*parquet).select(*columns).withColumn(_FILE, F.input_file_name())
            )
            if dataset.filters.active:
                ids = sorted({sid for _, sid in self.facts})
                frames = frames.where(F.col("session_id").isin(ids))
        if others:
            # Journals and Parquet files needing the journal fallback: read on the driver.
            local = Dataset([r for r in dataset.files if r.path in others], dataset.filters)
            ddl = spark_ddl(pa.schema([FRAME_SCHEMA.field(c) for c in columns]))
            for run, table, sessions in local.iter_tables(columns):
                dataset.files_read.append(run.path)
                for row in sessions.to_dict("records"):
                    known = _session_facts({str(k): v for k, v in row.items()})
                    self.facts[(file_key(str(run.path)), str(row["session_id"]))] = known
                plain = pa.schema(
                    [
                        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
                        for f in table.schema
                    ]
                )
                pdf = table.cast(plain).to_pandas()
                part = spark.createDataFrame(pdf, ddl).withColumn(
                    _FILE, F.lit(file_key(str(run.path)))
                )
                frames = part if frames is None else frames.unionByName(part)
            dataset.warnings.extend(local.warnings)
        self.frames = frames

    def broadcast(self) -> Any:
        return self.spark.sparkContext.broadcast(self.facts)

    def missing(self, seen: set[tuple[str, str]]) -> list[dict[str, Any]]:
        """Facts of sessions with no frames (Spark never sees them; analyzed on the driver)."""
        return [facts for key, facts in self.facts.items() if key not in seen]


def spark_turns(dataset: Dataset, spark: SparkSession) -> pd.DataFrame:
    """The dataset's turn table computed on Spark (``run_id``, ``date``, ``proxy_host``, then
    :data:`analyzer.turns.TURN_COLUMNS`), sorted by run, session start and turn index."""
    job = _Job(spark, dataset)
    schema = turn_arrow_schema().append(pa.field("provider_session_id", pa.string()))
    names = list(schema.names)
    columns: list[pd.DataFrame] = []
    if job.frames is not None:
        facts = job.broadcast()
        filters: Filters = dataset.filters

        def analyze(frames: pd.DataFrame) -> pd.DataFrame:
            frames, session_facts = _group_facts(frames, facts.value)
            if filters.active and not filters.keeps(session_facts):
                return pd.DataFrame(columns=names)
            turns = analyze_session(frames, session_facts).turns
            return with_dataset_keys(turns, session_facts)[names]

        with _quiet():
            result = (
                job.frames.groupBy(_FILE, "session_id")
                .applyInPandas(analyze, schema=spark_ddl(schema))
                .toPandas()
            )
        columns.append(result)
    # Sessions without frames have no turns: nothing to add.
    table = pd.concat(columns, ignore_index=True) if columns else pd.DataFrame(columns=names)
    return table.sort_values(["run_id", "session_id", "index"], kind="stable", ignore_index=True)


_REPORT_SCHEMA = pa.schema(
    [
        pa.field(_FILE, pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("session_json", pa.string()),
        pa.field("turns_ipc", pa.binary()),
        pa.field("sizes_ipc", pa.binary()),
    ]
)


def _to_ipc(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(data: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pandas()


def spark_report(
    dataset: Dataset, spark: SparkSession, prices: Mapping[str, Prices] | None = None
) -> dict[str, Any]:
    """:func:`analyzer.dataset.dataset_report` computed on Spark: each session analyzed on a
    worker, its report dict, turn rows and sizes sent back; the summary built on the driver."""
    parts = spark_report_parts(dataset, spark, prices)
    return parts.report(dataset.files_read, dataset.warnings)


def spark_report_parts(
    dataset: Dataset, spark: SparkSession, prices: Mapping[str, Prices] | None = None
) -> ReportParts:
    """The :class:`~analyzer.dataset.ReportParts` of the dataset, sessions analyzed on Spark."""
    job = _Job(spark, dataset)
    parts = ReportParts()
    seen: set[tuple[str, str]] = set()
    if job.frames is not None:
        facts = job.broadcast()
        filters: Filters = dataset.filters
        price_table = dict(prices) if prices is not None else None

        def analyze(frames: pd.DataFrame) -> pd.DataFrame:
            key = file_key(str(frames[_FILE].iloc[0]))
            frames, session_facts = _group_facts(frames, facts.value)
            if filters.active and not filters.keeps(session_facts):
                return pd.DataFrame(columns=_REPORT_SCHEMA.names)
            analysis = analyze_session(frames, session_facts)
            session = session_report(analysis, price_table)
            return pd.DataFrame(
                {
                    _FILE: [key],
                    "session_id": [str(session_facts["session_id"])],
                    "session_json": [json.dumps(jsonable(session), allow_nan=False)],
                    "turns_ipc": [_to_ipc(analysis.turns[list(TURN_COLUMNS)])],
                    "sizes_ipc": [_to_ipc(analysis.sizes)],
                }
            )

        with _quiet():
            rows = (
                job.frames.groupBy(_FILE, "session_id")
                .applyInPandas(analyze, schema=spark_ddl(_REPORT_SCHEMA))
                .toLocalIterator()
            )
            for row in rows:
                seen.add((row[_FILE], row["session_id"]))
                parts.add(
                    row["session_json"],
                    rows_of(_from_ipc(row["turns_ipc"])),
                    rows_of(_from_ipc(row["sizes_ipc"])),
                )
    for session_facts in job.missing(seen):
        analysis = analyze_session(_empty_frames(), session_facts)
        parts.add(
            session_report(analysis, prices), rows_of(analysis.turns), rows_of(analysis.sizes)
        )
    return parts
