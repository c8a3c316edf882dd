"""rt_keep_messages with real mitmdump and mitmweb: what a flow file written beside the addon
holds, and the line the addon logs at start."""

from __future__ import annotations

import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import ADDON_PATH, ManagedProcess, run_mitmdump, run_server
from analyzer.peer.server import PeerConfig

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

KEEP_LINE = re.compile(r"rt-analyze: recorded flows keep (.*)$")


@pytest.mark.parametrize(
    ("keep", "frames_in_flow_file", "said"),
    [
        ("auto", "all", "all their WebSocket messages (read by -w / save_stream_file)"),
        ("all", "all", "all their WebSocket messages (rt_keep_messages=all)"),
        ("last", 1, "only their last WebSocket message (rt_keep_messages=last)"),
    ],
)
def test_flow_file_written_beside_the_addon_holds_what_rt_keep_messages_says(
    tmp_path: Path,
    keep: str,
    frames_in_flow_file: int | str,
    said: str,
    fast_peer_config: PeerConfig,
    fast_speed: float,
) -> None:
    flows = tmp_path / "flows.mitm"
    extra = ["-w", str(flows), "--set", f"rt_keep_messages={keep}"]
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=tmp_path / "captures", extra_args=extra) as proxy,
    ):
        result = run_conversation_sync(
            proxy.url(), dialect="beta", scenario="text", speed=fast_speed
        )
        assert proxy.stop(signal.SIGINT) == 0
    (line,) = [m.group(1) for line in proxy.output().splitlines() if (m := KEEP_LINE.search(line))]
    assert line.startswith(said)
    imported = CliRunner().invoke(cli, ["import", str(flows), "--dir", str(tmp_path / "imported")])
    assert imported.exit_code == 0, imported.output
    expected = len(result.frames) if frames_in_flow_file == "all" else frames_in_flow_file
    assert f"1 session(s), {expected} frame(s)" in imported.output
    trimmed_warning = "kept only the last message (rt_keep_messages=last)"
    assert (trimmed_warning in imported.output) == (keep == "last")


def test_plain_mitmdump_trims_and_says_so(tmp_path: Path) -> None:
    with run_mitmdump(1, rt_dir=tmp_path) as proxy:  # nothing connects: the start line only
        proxy.process.wait_for_line(KEEP_LINE, 10)
    (line,) = [m.group(1) for line in proxy.output().splitlines() if (m := KEEP_LINE.search(line))]
    assert line.startswith("only their last WebSocket message (rt_keep_messages=auto: nothing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_mitmweb_keeps_messages_for_its_flow_list(tmp_path: Path) -> None:
    mitmweb = Path(sys.executable).parent / "mitmweb"
    args = [str(mitmweb), "--set", f"confdir={tmp_path / 'conf'}", "-s", str(ADDON_PATH)]
    args += ["--set", f"rt_dir={tmp_path / 'captures'}", "--listen-host", "127.0.0.1", "-p", "0"]
    args += ["--set", "web_open_browser=false", "--set", f"web_port={free_port()}"]
    process = ManagedProcess("mitmweb", args, cwd=tmp_path)
    try:
        match = process.wait_for_line(KEEP_LINE, 30)
    finally:
        assert process.stop(signal.SIGINT, timeout_s=15) == 0, process.output()
    assert match.group(1).startswith(
        "all their WebSocket messages (read by the flow view (mitmweb / console))"
    )
