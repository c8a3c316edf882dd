"""The Spark engine (pyspark local mode) gives the same turn table and report as the local one."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analyzer.dataset import open_dataset
from analyzer.dataset_analysis import dataset_report, dataset_turns
from analyzer.filters import Filters
from tests.capture_factory import T0, record_sessions
from tests.test_dataset import _session_events, make_fleet, make_templates, run_cli

if importlib.util.find_spec("pyspark") is None:
    pytest.skip(
        "pyspark is not installed (pip install '.[spark]' to run the Spark engine tests)",
        allow_module_level=True,
    )
if shutil.which("java") is None:
    pytest.skip("no Java runtime on PATH (Spark needs Java 17+)", allow_module_level=True)

# PySpark 4.x warns at every pandas conversion that it does not fully support pandas 3.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from analyzer.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 sessions on 2 proxies (partitioned), plus a crashed run known only from its journal."""
    root = tmp_path_factory.mktemp("spark")
    templates = make_templates(root / "t", count=6)
    make_fleet(root / "fleet", templates, days=1, runs=2, sessions=4)
    journal_dir = root / "fleet" / "date=2025-01-01" / "host=proxy-c"
    record_sessions(journal_dir, {"crashed": _session_events(T0, 0.3, 2, 99)}, run_id="rt-c")
    (journal_dir / "rt-c.parquet").unlink()
    return root / "fleet"


def _normal(turns: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with one spelling of missing values and plain lists, for comparing engines."""
    rows = []
    ordered = turns.sort_values(["run_id", "session_id", "index"], kind="stable")
    for row in ordered.to_dict("records"):
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if key == "function_calls":
                value = [str(v) for v in value]
            elif value is None or (not isinstance(value, list) and pd.isna(value)):
                value = None
            clean[str(key)] = value
        rows.append(clean)
    return rows


def test_spark_turn_table_equals_the_local_one(spark: Any, fleet: Path) -> None:
    from analyzer.spark import spark_turns

    local = dataset_turns(open_dataset(fleet))
    on_spark = spark_turns(open_dataset(fleet), spark)
    assert list(on_spark.columns) == list(local.columns)
    assert len(local) == 34  # 16 sessions x 2 turns + the journal's 2
    assert _normal(on_spark) == _normal(local)


def test_spark_report_equals_the_local_one_with_filters(spark: Any, fleet: Path) -> None:
    from analyzer.spark import spark_report

    assert spark_report(open_dataset(fleet), spark) == dataset_report(open_dataset(fleet))
    filters = Filters(hosts=("proxy-b",), since_s=1_735_689_600.0 + 2 * 3600)
    on_spark = spark_report(open_dataset(fleet, filters), spark)
    assert on_spark == dataset_report(open_dataset(fleet, filters))
    assert on_spark["summary"]["sessions"] == 4


def test_cli_engine_spark(spark: Any, fleet: Path) -> None:
    result = run_cli("report", str(fleet), "--engine", "spark", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(
        run_cli("report", str(fleet), "--format", "json").stdout
    )
