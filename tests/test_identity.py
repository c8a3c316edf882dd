"""The provider's session and response ids and ISO 8601 start times in the report, the turn
table and ``conversation`` (issue 19, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.identity import iso_ms
from analyzer.schema import events_are_current, parse_file_metadata

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
GA = SAMPLES / "ga-voice.parquet"


def answer(*args: str | Path, columns: int = 100) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_report_names_each_sessions_provider_id_and_start() -> None:
    sessions = json.loads(answer("report", SAMPLES, "--format", "json"))["sessions"]
    found = {s["session_id"][:8]: (s["provider_session_id"], s["started"]) for s in sessions}
    assert found == {
        "92d63b06": ("sess_AhAELE4SeMoEBI1B2k3Rb", "2026-11-23T21:15:30.736Z"),
        "c720777e": ("sess_kZFtKxmxoLX12qVvf6guQ", "2026-11-23T21:15:34.840Z"),
        "95638d7d": ("sess_rrzANE7iXVORZOxAKM6Nn", "2026-11-23T21:15:52.753Z"),
        "ef3f4739": ("sess_VlaHN1aBnyX9OfbihO3vG", "2026-11-23T21:16:10.960Z"),
        "45d15596": ("sess_vYmjFLmfA9Fumu26XyWUJ", "2026-12-04T17:28:49.804Z"),
        # GPT-Live's session.started; its sideband socket is never told the session's id
        "0c95dc9d": ("sess_yHLrLGnrHJVyeS9u26syp", "2026-12-04T17:33:49.088Z"),
        "5bc6fe93": (None, "2026-12-04T17:34:13.204Z"),
        # Gemini Live: this peer's setupComplete names no session (the field is optional)
        "e41b7dc9": (None, "2026-12-04T19:27:55.589Z"),
    }
    turn = next(s for s in sessions if s["session_id"].startswith("c720"))["turns"][0]
    assert (turn["started"], turn["response_id"]) == (
        "2026-11-23T21:15:36.411Z",
        "resp_p9D9NqC2Q8xN6tMMKsbUZ",
    )
    table = answer("report", GA).splitlines()
    assert table[1] == "started 2026-11-23T21:15:34.840Z  provider id sess_kZFtKxmxoLX12qVvf6guQ"


def test_turn_table_has_iso_turn_starts_and_the_provider_id() -> None:
    rows = json.loads(answer("turns", GA, "--format", "json"))
    assert [r["turn_started"] for r in rows] == [iso_ms(r["turn_start_s"]) for r in rows]
    assert rows[1]["turn_started"] == "2026-11-23T21:15:38.693Z"
    assert {r["provider_session_id"] for r in rows} == {"sess_kZFtKxmxoLX12qVvf6guQ"}
    header = answer("turns", GA).splitlines()[0].split(",")
    assert header.index("turn_started") == header.index("turn_start_s") + 1


def test_conversation_has_ids_and_iso_times() -> None:
    items = json.loads(answer("conversation", GA, "--format", "json"))
    assert (items[1]["response_id"], items[1]["first_seen"]) == (
        "resp_p9D9NqC2Q8xN6tMMKsbUZ",
        "2026-11-23T21:15:36.566Z",
    )
    assert {i["provider_session_id"] for i in items} == {"sess_kZFtKxmxoLX12qVvf6guQ"}
    wide = answer("conversation", GA, "--wide")
    assert "provider id sess_kZFtKxmxoLX12qVvf6guQ" in wide.splitlines()[0]
    assert "│ resp_p9D9NqC2Q8xN6tMMKsbUZ │ 2026-11-23T21:15:36.566Z │" in wide


@pytest.mark.parametrize(
    ("sample", "provider_id"),
    [("ga-voice", "sess_kZFtKxmxoLX12qVvf6guQ"), ("live-voice", "sess_yHLrLGnrHJVyeS9u26syp")],
)
def test_a_capture_written_today_keeps_the_provider_id_in_its_facts(
    sample: str, provider_id: str, tmp_path: Path
) -> None:
    """The recorder (here ``convert``, which records the journal again) puts the provider's id
    in the session's facts: a report of a capture that carries its events reads no frame text,
    and still names it."""
    out = tmp_path / f"{sample}.parquet"
    result = CliRunner().invoke(main, ["convert", str(SAMPLES / f"{sample}.jsonl"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    meta = parse_file_metadata(pq.ParquetFile(out).metadata.metadata)
    assert meta is not None and events_are_current(pq.read_schema(out))
    assert [s["provider_session_id"] for s in meta["sessions"]] == [provider_id]
    (session,) = json.loads(answer("report", out, "--format", "json"))["sessions"]
    assert session["provider_session_id"] == provider_id
