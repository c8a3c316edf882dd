"""Exports: turn and size tables to Parquet / CSV, turns to OTLP/JSON spans."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analyzer.dataset import open_dataset
from analyzer.dataset_analysis import dataset_sizes, dataset_turns
from analyzer.exports import export_dataset, read_turns
from analyzer.otel import otlp_traces, unix_nano
from analyzer.turns import rows_of
from tests.test_dataset import make_fleet, make_templates, run_cli

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("otel")
    templates = make_templates(root / "t", count=4)
    make_fleet(root / "fleet", templates, days=1, runs=1, sessions=3)
    return root / "fleet"


def _spans(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for r in request["resourceSpans"] for ss in r["scopeSpans"] for s in ss["spans"]]


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


def test_otlp_json_follows_the_spec_shapes(small_fleet: Path) -> None:
    dataset = open_dataset(small_fleet)
    turns = dataset_turns(dataset)
    sessions: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
        (
            {str(k): v for k, v in facts.items()},
            rows_of(turns[turns["session_id"] == facts["session_id"]]),
        )
        for facts in open_dataset(small_fleet).sessions().to_dict("records")
    ]
    request = otlp_traces(sessions, version="0.1.0")
    json.dumps(request, allow_nan=False)
    hosts = {
        next(
            a["value"]["stringValue"]
            for a in r["resource"]["attributes"]
            if a["key"] == "host.name"
        )
        for r in request["resourceSpans"]
    }
    assert hosts == {"proxy-a", "proxy-b"}
    spans = _spans(request)
    by_id = {s["spanId"]: s for s in spans}
    assert len(by_id) == len(spans)  # span ids unique
    for span in spans:
        assert HEX32.match(span["traceId"]) and HEX16.match(span["spanId"])
        assert isinstance(span["startTimeUnixNano"], str) and span["startTimeUnixNano"].isdigit()
        assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        assert span["kind"] == 1
        if "parentSpanId" in span:
            parent = by_id[span["parentSpanId"]]
            assert parent["traceId"] == span["traceId"]
    roots = [s for s in spans if s["name"] == "realtime.session"]
    turn_spans = [s for s in spans if s["name"] == "realtime.turn"]
    assert len(roots) == 6 and len(turn_spans) == len(turns) == 12
    assert len({s["traceId"] for s in roots}) == 6  # one trace per session
    first = turn_spans[0]
    attrs = _attrs(first)
    row = turns[(turns["session_id"] == attrs["rt.session_id"]) & (turns["index"] == 1)].iloc[0]
    assert attrs["rt.turn.index"] == "1"  # intValue: a decimal string
    assert attrs["rt.latency.first_audio_ms"] == pytest.approx(row["latency_first_audio_ms"])
    assert attrs["gen_ai.usage.output_tokens"] == str(int(row["output_tokens"]))
    assert attrs["rt.run_id"] == row["run_id"]
    assert first["startTimeUnixNano"] == unix_nano(row["turn_start_s"])
    names = [e["name"] for e in first["events"]]
    # moments named as in the turn table, whatever the protocol's own event names
    assert {"speech_stopped", "response_created", "first_audio", "response_done"} <= set(names)
    times = [int(e["timeUnixNano"]) for e in first["events"]]
    assert times == sorted(times)
    children = [s for s in spans if s.get("parentSpanId") == first["spanId"]]
    assert sorted(c["name"] for c in children) == ["realtime.audio", "realtime.response"]
    response = next(c for c in children if c["name"] == "realtime.response")
    assert response["startTimeUnixNano"] == unix_nano(row["response_created_s"])
    assert response["endTimeUnixNano"] == unix_nano(row["response_done_s"])
    # Stable: the same capture exports the same ids.
    assert otlp_traces(sessions, version="0.1.0") == request


def test_export_writes_tables_that_read_back(small_fleet: Path, tmp_path: Path) -> None:
    turns = dataset_turns(open_dataset(small_fleet))
    written = export_dataset(
        open_dataset(small_fleet),
        tmp_path / "turns.parquet",
        tmp_path / "sizes.parquet",
        tmp_path / "spans.json",
    )
    assert written["sessions"] == 6 and written["turns"] == 12 and len(written["files"]) == 3
    back = read_turns(tmp_path / "turns.parquet")
    assert list(back.columns) == list(turns.columns)
    assert back["latency_first_audio_ms"].tolist() == turns["latency_first_audio_ms"].tolist()
    assert back["function_calls"].map(list).tolist() == turns["function_calls"].tolist()
    sizes = pq.read_table(tmp_path / "sizes.parquet").to_pandas()
    assert sizes["bytes"].sum() == dataset_sizes(open_dataset(small_fleet))["bytes"].sum()
    assert set(sizes["run_id"]) == set(turns["run_id"])
    spans = _spans(json.loads((tmp_path / "spans.json").read_text()))
    assert sum(s["name"] == "realtime.turn" for s in spans) == 12


def test_cli_export_csv_and_otlp_with_a_filter(small_fleet: Path, tmp_path: Path) -> None:
    result = run_cli(
        "export",
        str(small_fleet),
        "--host",
        "proxy-b",
        "--turns",
        str(tmp_path / "t.csv"),
        "--sizes",
        str(tmp_path / "s.csv"),
        "--otlp",
        str(tmp_path / "o.json"),
    )
    assert result.exit_code == 0, result.output
    turns = read_turns(tmp_path / "t.csv")
    assert len(turns) == 6 and set(turns["proxy_host"]) == {"proxy-b"}
    assert turns["function_calls"].tolist() == [[]] * 6
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0
    assert "realtime.turn" in (tmp_path / "o.json").read_text()
    nothing = run_cli("export", str(small_fleet))
    assert nothing.exit_code != 0 and "nothing to export" in nothing.output
    wrong = run_cli("export", str(small_fleet), "--turns", str(tmp_path / "t.xlsx"))
    assert wrong.exit_code != 0 and ".parquet or .csv" in wrong.output


def test_exports_are_private_files(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from analyzer.cli import main as cli

    out = tmp_path / "new" / "dir"
    sample = Path(__file__).resolve().parents[1] / "samples" / "ga-voice.parquet"
    args = ["export", str(sample), "--turns", str(out / "t.csv"), "--sizes", str(out / "s.parquet")]
    result = CliRunner().invoke(cli, [*args, "--otlp", str(out / "spans.json")])
    assert result.exit_code == 0, result.output
    assert os.stat(out).st_mode & 0o777 == 0o700
    for name in ("t.csv", "s.parquet", "spans.json"):
        assert os.stat(out / name).st_mode & 0o777 == 0o600
    assert "Tell me a bedtime story." in (out / "t.csv").read_text()
