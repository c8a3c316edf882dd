"""`wss://` end to end: the peer serves TLS with its own certificate, mitmdump is a regular proxy
that trusts it, and the client goes through HTTPS_PROXY trusting mitmproxy's CA (SSL_CERT_FILE),
as a user's client would. The capture must be what reverse mode over plain ws:// records."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from websockets.exceptions import InvalidStatus

from analyzer.cli import main as cli
from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import LiveResult, run_live_conversation_sync
from analyzer.peer.server import PeerConfig
from analyzer.peer.tls import TlsFiles, write_self_signed
from tests.test_record import proxy_port, record_process, stop_and_read_capture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return write_self_signed(tmp_path_factory.mktemp("tls"))


def report(directory: Path) -> dict[str, Any]:
    (parquet,) = directory.glob("*.parquet")
    result = CliRunner().invoke(cli, ["report", str(parquet), "--format", "json"])
    assert result.exit_code == 0, result.output
    (session,) = json.loads(result.output)["sessions"]
    return dict(session)


def turn_shape(session: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(t["index"], t["trigger"], t["status"]) for t in session["turns"]]


def assert_capture_is_the_conversation(
    directory: Path, result: ConversationResult | LiveResult
) -> None:
    (parquet,) = directory.glob("*.parquet")
    table = pq.read_table(parquet, columns=["direction", "event_type", "frame_bytes"])
    assert table.num_rows == len(result.frames)
    rows = table.to_pylist()
    for direction in ("client", "server"):
        sent = [f for f in result.frames if f["direction"] == direction]
        got = [r for r in rows if r["direction"] == direction]
        assert [r["event_type"] for r in got] == [f["type"] for f in sent]
        assert [r["frame_bytes"] for r in got] == [len(f["text"].encode()) for f in sent]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_wss_through_https_proxy_is_recorded_and_analyzed_as_reverse_mode(
    tmp_path: Path,
    tls: TlsFiles,
    dialect: str,
    monkeypatch: pytest.MonkeyPatch,
    fast_peer_config: PeerConfig,
    fast_speed: float,
) -> None:
    reverse_dir, tls_dir = tmp_path / "reverse", tmp_path / "tls"
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=reverse_dir) as proxy,
    ):
        reference = run_conversation_sync(proxy.url(), dialect=dialect, speed=fast_speed)
        assert proxy.stop(signal.SIGINT) == 0
    trust_upstream = ["--set", f"ssl_verify_upstream_trusted_ca={tls.cert}"]
    with (
        run_server(config=fast_peer_config, tls=tls) as server,
        run_mitmdump(mode="regular", rt_dir=tls_dir, extra_args=trust_upstream) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.proxy_url)
        monkeypatch.setenv("SSL_CERT_FILE", str(proxy.ca_file))  # mitmproxy's CA, not the peer's
        result = run_conversation_sync(
            server.url(host="localhost"), dialect=dialect, speed=fast_speed, proxy=True
        )
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == reference.errors() == []
    assert_capture_is_the_conversation(reverse_dir, reference)
    assert_capture_is_the_conversation(tls_dir, result)
    # Not frame for frame between the two runs: how many audio deltas a barge-in lets through
    # depends on timing, in either mode. Each capture is exactly its own conversation.
    plain, secure = report(reverse_dir), report(tls_dir)
    assert secure["url"].startswith(f"https://localhost:{server.port}/v1/realtime")
    assert secure["dialect"] == plain["dialect"] == dialect
    assert turn_shape(secure) == turn_shape(plain)
    assert len(secure["turns"]) == len(result.responses()) == 5
    assert secure["sizes"]["frames"] == len(result.frames)
    assert plain["sizes"]["frames"] == len(reference.frames)


def test_regular_proxy_refuses_an_upstream_certificate_it_was_not_told_to_trust(
    tmp_path: Path, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch, fast_peer_config: PeerConfig
) -> None:
    """Without ssl_verify_upstream_trusted_ca the self-signed peer is rejected: the test above
    proves mitmproxy verified the peer, not that it skipped verification."""
    with (
        run_server(config=fast_peer_config, tls=tls) as server,
        run_mitmdump(mode="regular", rt_dir=tmp_path / "captures") as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", proxy.proxy_url)
        monkeypatch.setenv("SSL_CERT_FILE", str(proxy.ca_file))
        with pytest.raises(InvalidStatus) as refused:
            run_conversation_sync(server.url(host="localhost"), scenario="text", proxy=True)
    assert refused.value.response.status_code == 502
    assert not list((tmp_path / "captures").glob("*.parquet"))


def test_rt_analyze_record_regular_mode_screen_is_enough_to_reach_wss(
    tmp_path: Path,
    tls: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
    fast_peer_config: PeerConfig,
    fast_speed: float,
) -> None:
    """The two `export` lines `rt-analyze record --mode regular` prints are all a client needs."""
    rt = Path(sys.executable).parent / "rt-analyze"
    with run_server(config=fast_peer_config, tls=tls) as server:
        args = ["--mode", "regular", "--port", "0", "--dir", str(tmp_path / "captures")]
        args += ["--set", f"confdir={tmp_path / 'conf'}"]
        args += ["--set", f"ssl_verify_upstream_trusted_ca={tls.cert}"]
        process = record_process(rt, args, tmp_path)
        try:
            proxy_port(process)
            process.wait_for_line(re.compile("^Press Ctrl-C to stop"), 10)
            exports = [line.split()[1] for line in process.lines() if line.startswith("  export ")]
            assert [e.partition("=")[0] for e in exports] == ["HTTPS_PROXY", "SSL_CERT_FILE"]
            for name, _, value in (e.partition("=") for e in exports):
                monkeypatch.setenv(name, value)
            result = run_conversation_sync(
                server.url(host="localhost"), dialect="beta", speed=fast_speed, proxy=True
            )
        finally:
            capture = stop_and_read_capture(process)
    assert result.errors() == []
    assert os.environ["SSL_CERT_FILE"] == str(tmp_path / "conf" / "mitmproxy-ca-cert.pem")
    assert pq.read_table(capture).num_rows == len(result.frames)


def test_gpt_live_wss_through_https_proxy_is_recorded_and_analyzed(
    tmp_path: Path, tls: TlsFiles, fast_peer_config: PeerConfig
) -> None:
    """GPT-Live's primary socket over TLS through a regular proxy: every frame recorded, the
    session read as GPT-Live with its four turns (the first one barged in), the URL https."""
    trust_upstream = ["--set", f"ssl_verify_upstream_trusted_ca={tls.cert}"]
    with (
        run_server(config=fast_peer_config, tls=tls) as server,
        run_mitmdump(mode="regular", rt_dir=tmp_path, extra_args=trust_upstream) as proxy,
    ):
        result = run_live_conversation_sync(
            server.url("/v1/live/sessions", host="localhost"),
            speed=2.0,
            proxy=proxy.proxy_url,
            ca_file=proxy.ca_file,
        )
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == []
    assert_capture_is_the_conversation(tmp_path, result)
    session = report(tmp_path)
    assert session["url"].startswith(f"https://localhost:{server.port}/v1/live/sessions")
    assert session["dialect"] == "live"
    assert [t["interrupted"] for t in session["turns"]] == [True, False, False, False]


def test_gemini_wss_through_https_proxy_is_recorded_and_analyzed(
    tmp_path: Path, tls: TlsFiles
) -> None:
    """Gemini Live over TLS through a regular proxy, its JSON in binary frames: every frame
    recorded with its opcode and size, the session read as Gemini with its five turns."""
    trust_upstream = ["--set", f"ssl_verify_upstream_trusted_ca={tls.cert}"]
    config = GeminiPeerConfig(first_audio_delay_ms=150, audio_pace=8.0)
    with (
        run_gemini_server(config=config, tls=tls) as port,
        run_mitmdump(mode="regular", rt_dir=tmp_path, extra_args=trust_upstream) as proxy,
    ):
        result = run_gemini_conversation_sync(
            f"wss://localhost:{port}", speed=8.0, proxy=proxy.proxy_url, ca_file=proxy.ca_file
        )
        assert proxy.stop(signal.SIGINT) == 0
    (parquet,) = tmp_path.glob("*.parquet")
    rows = pq.read_table(parquet, columns=["seq", "direction", "opcode", "frame_bytes"])
    recorded = sorted(rows.to_pylist(), key=lambda r: r["seq"])
    for direction in ("client", "server"):
        sent = [(f["opcode"], len(f["data"])) for f in result.frames if f["direction"] == direction]
        got = [(r["opcode"], r["frame_bytes"]) for r in recorded if r["direction"] == direction]
        assert got == sent
    session = report(tmp_path)
    assert session["url"].startswith(f"https://localhost:{port}/ws/google.ai.generativelanguage")
    assert session["dialect"] == "gemini"
    assert [t["interrupted"] for t in session["turns"]] == [True, False, False, False, False]
