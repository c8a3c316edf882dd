"""`rt-analyze record`: its options, the screen it prints, and real recordings through it."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import MITMDUMP_READY, ManagedProcess, run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from analyzer.recording.launch import (
    addon_file,
    client_instructions,
    make_plan,
    mitmdump_args,
    resolve_upstream,
)

REPO = Path(__file__).resolve().parents[1]
CAPTURE_LINE = re.compile(r"^Capture: (\S+\.parquet)$")


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("openai", "https://api.openai.com"),
        ("gemini", "https://generativelanguage.googleapis.com"),
        ("azure:my-res", "https://my-res.openai.azure.com"),
        ("wss://rt.example.com:8443/v1/realtime", "https://rt.example.com:8443"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_upstream_presets_and_urls_become_reverse_targets(given: str, url: str) -> None:
    assert resolve_upstream(given) == url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "azure"], "Azure OpenAI has one host per resource"),
        (["--upstream", "api.openai.com"], "neither a preset"),
        (["--upstream", "openai", "--mode", "regular"], "not both"),
        (["--mode", "transparent"], "--mode must be one of regular, local, wireguard"),
        (["--set", "rt_audio"], "write NAME=VALUE"),
        (["--port", "70000"], "not a port number"),
    ],
)
def test_bad_record_options_are_one_error_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["record", *args])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_mitmdump_gets_the_packaged_addon_mode_port_and_settings(tmp_path: Path) -> None:
    plan = make_plan("openai", None, 8081, None, tmp_path, ["rt_audio=drop", "confdir=/c"])
    args = mitmdump_args(plan, Path("/bin/mitmdump"), addon_file())
    assert args == [
        "/bin/mitmdump",
        "--mode",
        "reverse:https://api.openai.com",
        "-s",
        str(REPO / "analyzer" / "recording" / "addon.py"),
        "-p",
        "8081",
        "--listen-host",
        "127.0.0.1",
        "--set",
        "flow_detail=0",
        "--set",
        f"rt_dir={tmp_path}",
        "--set",
        "rt_audio=drop",
        "--set",
        "confdir=/c",
    ]
    local = mitmdump_args(make_plan(None, "local:python", 0, None, tmp_path), Path("m"), Path("a"))
    assert "-p" not in local and local[1:3] == ["--mode", "local:python"]
    wireguard = mitmdump_args(
        make_plan(None, "wireguard", 51820, None, tmp_path), Path("m"), Path("a")
    )
    assert "--listen-host" not in wireguard  # the peers are other devices


def test_screen_says_how_to_point_each_client(tmp_path: Path) -> None:
    reverse = client_instructions(make_plan("openai", None, 0, None, tmp_path), 8080)
    assert 'OpenAI(websocket_base_url="ws://127.0.0.1:8080/v1")' in reverse
    assert "ws://127.0.0.1:8080/v1/realtime?model=gpt-realtime" in reverse
    assert '"base_url": "https://127.0.0.1:8080"' in reverse
    regular = client_instructions(make_plan(None, None, 0, None, tmp_path, ["confdir=/conf"]), 8080)
    assert "export HTTPS_PROXY=http://127.0.0.1:8080" in regular
    assert "export SSL_CERT_FILE=/conf/mitmproxy-ca-cert.pem" in regular
    home_ca = Path("~/.mitmproxy/mitmproxy-ca-cert.pem").expanduser()
    local = client_instructions(make_plan(None, "local", 0, None, tmp_path), None)
    assert f"SSL_CERT_FILE={home_ca}" in local and "HTTPS_PROXY" not in local


def record_process(
    executable: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    return ManagedProcess("rt-analyze record", [str(executable), "record", *args], cwd, env)


def proxy_port(process: ManagedProcess) -> int:
    return int(process.wait_for_line(MITMDUMP_READY, 60).group(1))


def stop_and_read_capture(process: ManagedProcess) -> Path:
    """SIGINT to rt-analyze alone (as `kill -INT`): it must pass it on and close the run."""
    assert process.stop(signal.SIGINT, timeout_s=60) == 0, process.output()
    lines = process.lines()
    (capture,) = [m.group(1) for line in lines if (m := CAPTURE_LINE.match(line))]
    assert f"Report:  rt-analyze report {capture}" in lines
    return Path(capture)


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_record_from_the_checkout_records_every_frame(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    rt = Path(sys.executable).parent / "rt-analyze"
    with run_server(config=fast_peer_config) as server:
        process = record_process(
            rt,
            [
                "--upstream",
                f"http://127.0.0.1:{server.port}",
                "--port",
                "0",
                "--dir",
                str(tmp_path / "captures"),
                "--set",
                f"confdir={tmp_path / 'conf'}",
            ],
            tmp_path,
        )
        try:
            port = proxy_port(process)
            process.wait_for_line(re.compile("^Press Ctrl-C to stop"), 10)
            result = run_conversation_sync(
                f"ws://127.0.0.1:{port}/v1/realtime", dialect="ga", speed=fast_speed
            )
        finally:
            capture = stop_and_read_capture(process)
    assert result.errors() == []
    assert capture.parent == tmp_path / "captures"
    assert pq.read_table(capture).num_rows == len(result.frames)
    assert os.stat(capture).st_mode & 0o777 == 0o600


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_checkout_script_addon_capture_py_still_records(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    """`mitmdump -s addon/capture.py` (the thin file) records as the packaged addon does."""
    out = tmp_path / "captures"
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=out, addon_path=REPO / "addon" / "capture.py") as proxy,
    ):
        result = run_conversation_sync(
            proxy.url(), dialect="beta", scenario="text", speed=fast_speed
        )
        assert proxy.stop(signal.SIGINT) == 0
    assert f"Loading script {REPO / 'addon' / 'capture.py'}" in proxy.output()
    (parquet,) = out.glob("*.parquet")
    meta = json.loads(pq.ParquetFile(parquet).metadata.metadata[b"rt_analyze"])
    assert [s["dialect"] for s in meta["sessions"]] == ["beta"]
    assert pq.read_table(parquet).num_rows == len(result.frames)
