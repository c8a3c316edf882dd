"""A capture whose recorded events predate an optional field (echo suspicion, session 8) is read
as recorded, the field null, not decoded again from its frames: its report answers as before
and still reads no frame JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.dataset import _columns_to_read
from analyzer.recording.convert import convert_journal
from analyzer.schema import EVENT_STRUCT, events_are_current

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ECHO_FIELDS = ("echo_score", "echo_delay_ms")


def _without_fields(path: Path, out: Path, dropped: tuple[str, ...]) -> None:
    """``path`` rewritten as a recorder that did not know ``dropped`` would have written it."""
    pf = pq.ParquetFile(path)
    table = pf.read()
    older = pa.struct([f for f in EVENT_STRUCT if f.name not in dropped])
    index = table.schema.get_field_index("events")
    table = table.set_column(
        index, pa.field("events", pa.list_(older)), table["events"].cast(pa.list_(older))
    )
    pq.write_table(table.replace_schema_metadata(pf.metadata.metadata), out)


def _report(path: Path) -> dict[str, Any]:
    """The JSON report, but the files it names (the two copies are in different places)."""
    result = CliRunner().invoke(cli, ["report", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    assert report["summary"].pop("sources") == [str(path)]
    return report


def _blank_echo(value: object) -> object:
    if isinstance(value, dict):
        return {
            k: None if k in ECHO_FIELDS or k == "echo_suspected" else _blank_echo(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_blank_echo(v) for v in value]
    return value


def _current_and_older(tmp_path: Path) -> tuple[Path, Path]:
    """ga-voice as this recorder writes it, and a place for an older recorder's copy."""
    current, older = tmp_path / "ga-voice.parquet", tmp_path / "older.parquet"
    convert_journal(SAMPLES / "ga-voice.jsonl", current)
    return current, older


def _echo_scores(report: object) -> list[object]:
    if isinstance(report, dict):
        return [v for k, v in report.items() if k == "echo_score"] + [
            s for v in report.values() for s in _echo_scores(v)
        ]
    if isinstance(report, list):
        return [s for v in report for s in _echo_scores(v)]
    return []


def test_events_recorded_before_echo_are_read_as_recorded(tmp_path: Path) -> None:
    current, older = _current_and_older(tmp_path)
    _without_fields(current, older, ECHO_FIELDS)

    schema = pq.read_schema(older)
    assert events_are_current(schema)
    read = _columns_to_read(["session_id", "seq", "events", "content", "audio"], schema)
    assert read == ["session_id", "seq", "events"]  # no frame JSON, no audio: nothing decoded

    now = _report(current)
    assert any(score is not None for score in _echo_scores(now))  # echo judged on this sample
    then = _report(older)
    assert all(score is None for score in _echo_scores(then))
    assert then == _blank_echo(now)


def test_events_missing_a_required_field_are_decoded_again(tmp_path: Path) -> None:
    current, older = _current_and_older(tmp_path)
    _without_fields(current, older, ("rms_dbfs", *ECHO_FIELDS))

    schema = pq.read_schema(older)
    assert not events_are_current(schema)
    assert "content" in _columns_to_read(["session_id", "events", "content"], schema)
    assert _report(older) == _report(current)
