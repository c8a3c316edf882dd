"""Real processes: the peer server, mitmdump with the capture addon, and the scripted client."""

from __future__ import annotations

import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from tests.test_live_log_providers import expected_lines

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_server_process_serves_records_and_stops_on_sigterm(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    record = tmp_path / "server.jsonl"
    with run_server(record_path=record, config=fast_peer_config) as server:
        result = run_conversation_sync(
            server.url(), dialect="beta", scenario="text", speed=fast_speed
        )
        process = server.process
    assert process.popen.returncode == 0
    timeline = server.read_record()
    assert len(timeline.frames()) == len(result.frames)
    assert {r["record"] for r in timeline.records} == {
        "session_start",
        "frame",
        "turn",
        "transcription",  # the user's input, transcribed (whisper-1)
        "session_end",
    }
    assert "sk-test" not in record.read_text()


def test_reverse_proxy_capture_with_rt_lines(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=tmp_path / "captures") as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect="ga", speed=fast_speed)
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == []
    lines = proxy.rt_lines()
    assert len(lines) == len(result.responses()) == 5, proxy.output()
    assert lines == expected_lines(tmp_path / "captures")  # what the report will say
    assert ": speech_end -> first audio " in lines[0]
    (parquet_path,) = (tmp_path / "captures").glob("*.parquet")
    table = pq.read_table(parquet_path, columns=["direction", "event_type"])
    assert table.num_rows == len(result.frames)
    captured = list(zip(*table.to_pydict().values(), strict=True))
    for direction in ("client", "server"):
        assert [t for d, t in captured if d == direction] == [
            f["type"] for f in result.frames if f["direction"] == direction
        ]


def test_regular_proxy_mode_with_keys_in_subprotocol_and_query(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    key = "sk-test-regular-mode-secret"
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(mode="regular", rt_dir=tmp_path / "captures") as proxy,
    ):
        result = run_conversation_sync(
            server.url(),
            dialect="beta",
            scenario="text",
            speed=fast_speed,
            proxy=proxy.proxy_url,
            api_key=key,
            key_in_subprotocol=True,
            key_in_query=True,
        )
    assert result.errors() == []
    assert len(proxy.rt_lines()) == len(result.responses())
    files = list((tmp_path / "captures").iterdir())
    assert {p.suffix for p in files} == {".jsonl", ".parquet"}
    for path in files:
        assert key.encode() not in path.read_bytes(), f"API key written to {path.name}"
