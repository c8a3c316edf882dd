"""Faults through real mitmdump: peers that vanish, a disk that fills, an addon reload, SIGTERM.

Each test runs real processes on loopback and checks two things: the user's traffic is not
harmed more than the fault itself harms it, and the capture says what happened (frames, the
session's end, what could not be recorded) in files the analyzer still reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from analyzer.cli import main as cli
from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.harness import (
    ADDON_PATH,
    MITMDUMP_READY,
    REPO_ROOT,
    ManagedProcess,
    mitmdump_path,
    run_mitmdump,
    run_server,
)
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


# --- helpers -------------------------------------------------------------------------------


def bound_socket() -> socket.socket:
    """A listening loopback socket, so mitmdump can be pointed at it before the server runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def records_of(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a journal (a torn last line is left out)."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def only_journal(directory: Path) -> Path:
    (journal,) = directory.glob("*.jsonl")
    return journal


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def session_ended(directory: Path) -> bool:
    return any(
        r["record"] == "session_end" for j in directory.glob("*.jsonl") for r in records_of(j)
    )


def event(kind: str, n: int, **fields: Any) -> str:
    return json.dumps({"type": kind, "event_id": f"{kind}-{n}", **fields})


async def ack_server(ws: ServerConnection, sent: list[str], vanish_after: int | None) -> None:
    """session.created, then one ack per client frame; optionally drop the TCP connection
    (no close frame) after ``vanish_after`` acks."""
    created = event("session.created", 0, session={"type": "realtime"})
    sent.append(created)
    await ws.send(created)
    count = 0
    try:
        async for message in ws:
            count += 1
            ack = event("conversation.item.added", count, echo=len(message))
            sent.append(ack)
            await ws.send(ack)
            if vanish_after is not None and count >= vanish_after:
                ws.transport.abort()
                return
    except ConnectionClosed:
        pass


async def talk(ws: ClientConnection, frames: int, sent: list[str], received: list[str]) -> None:
    received.append(str(await ws.recv()))
    for n in range(frames):
        text = event("input_audio_buffer.append", n, audio="AAAA")
        sent.append(text)
        await ws.send(text)
        received.append(str(await ws.recv()))


def assert_capture_reads(out: Path) -> None:
    """The analyzer reads what the fault left, without a traceback."""
    for command in (["report", str(out)], ["sizes", str(out)], ["conversation", str(out)]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output


# --- peers that vanish ---------------------------------------------------------------------


def test_a_client_that_vanishes_without_a_close_frame_is_recorded_with_1006(
    tmp_path: Path,
) -> None:
    out = tmp_path / "captures"
    upstream = bound_socket()
    server_sent: list[str] = []
    client_sent: list[str] = []
    received: list[str] = []

    async def scenario(url: str) -> None:
        async with serve(lambda ws: ack_server(ws, server_sent, None), sock=upstream):
            ws = await connect(url)
            await talk(ws, 5, client_sent, received)
            ws.transport.abort()  # the process died: no close frame, just a dropped socket
            await asyncio.sleep(0.5)

    with run_mitmdump(upstream.getsockname()[1], rt_dir=out) as proxy:
        asyncio.run(scenario(proxy.url()))
        wait_until(lambda: session_ended(out))
        assert proxy.stop(signal.SIGINT) == 0
    records = records_of(only_journal(out))
    frames = [r for r in records if r["record"] == "frame"]
    assert [f["content"] for f in frames if f["direction"] == "client"] == client_sent
    assert [f["content"] for f in frames if f["direction"] == "server"] == server_sent
    (end,) = [r for r in records if r["record"] == "session_end"]
    assert end["close_code"] == 1006
    assert records[-1]["record"] == "run_end"
    assert pq.read_table(next(out.glob("*.parquet"))).num_rows == len(frames) == 11
    assert read_capture(out).sessions["close_code"].tolist() == [1006]
    assert_capture_reads(out)


def test_a_server_that_drops_the_connection_is_recorded_with_1006(tmp_path: Path) -> None:
    out = tmp_path / "captures"
    upstream = bound_socket()
    server_sent: list[str] = []
    client_sent: list[str] = []
    received: list[str] = []
    close_codes: list[int | None] = []

    async def scenario(url: str) -> None:
        async with (
            serve(lambda ws: ack_server(ws, server_sent, 3), sock=upstream),
            connect(url) as ws,
        ):
            with pytest.raises(ConnectionClosed):
                await talk(ws, 10, client_sent, received)
            close_codes.append(ws.close_code)

    with run_mitmdump(upstream.getsockname()[1], rt_dir=out) as proxy:
        asyncio.run(scenario(proxy.url()))
        wait_until(lambda: session_ended(out))
        assert proxy.stop(signal.SIGINT) == 0
    assert received == server_sent  # the client got everything the server sent before it went
    records = records_of(only_journal(out))
    frames = [r for r in records if r["record"] == "frame"]
    assert [f["content"] for f in frames if f["direction"] == "server"] == server_sent
    assert [f["content"] for f in frames if f["direction"] == "client"] == client_sent[:3]
    (end,) = [r for r in records if r["record"] == "session_end"]
    assert end["close_code"] == 1006 and end["closed_by_client"] is False
    assert_capture_reads(out)


def test_a_killed_server_process_mid_conversation_leaves_a_readable_capture(
    tmp_path: Path, fast_peer_config: PeerConfig
) -> None:
    out = tmp_path / "captures"
    outcome: list[ConversationResult | BaseException] = []
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):

        def converse() -> None:
            try:  # real-time pace, so the server dies mid-session
                outcome.append(run_conversation_sync(proxy.url(), speed=1.0, timeout_s=30))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=converse)
        thread.start()
        wait_until(lambda: out.exists() and any(out.glob("*.jsonl")))
        time.sleep(1.5)
        server.process.popen.send_signal(signal.SIGKILL)
        thread.join(timeout=40)
        wait_until(lambda: session_ended(out))
        assert proxy.stop(signal.SIGINT) == 0
    assert isinstance(outcome[0], BaseException)  # the user saw the server die...
    records = records_of(only_journal(out))
    frames = [r for r in records if r["record"] == "frame"]
    assert {f["direction"] for f in frames} == {"client", "server"}
    assert len(frames) > 20
    (end,) = [r for r in records if r["record"] == "session_end"]
    assert end["close_code"] == 1006  # ...and the capture says how it ended
    assert records[-1]["record"] == "run_end" and records[-1]["frames_not_recorded"] == 0
    assert pq.read_table(next(out.glob("*.parquet"))).num_rows == len(frames)
    assert_capture_reads(out)


# --- a disk that fills, a directory that cannot be written ----------------------------------

# Runs mitmdump with a file size limit: writes past it fail with EFBIG (Python ignores SIGXFSZ,
# and an ignored signal stays ignored across exec), as they would on a full disk.
LIMIT_FSIZE = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); os.execv(sys.argv[2], sys.argv[2:])"
)
NOT_RECORDED = re.compile(r"(\d+) frames NOT recorded and (\d+) addon faults")


@contextmanager
def mitmdump_with_file_limit(
    upstream_port: int, out: Path, limit_bytes: int, extra: list[str]
) -> Iterator[ManagedProcess]:
    confdir = out.parent / "confdir"
    args = [sys.executable, "-c", LIMIT_FSIZE, str(limit_bytes), str(mitmdump_path())]
    args += ["--set", f"confdir={confdir}", "--listen-host", "127.0.0.1", "-p", "0"]
    args += ["--mode", f"reverse:http://127.0.0.1:{upstream_port}", "-s", str(ADDON_PATH)]
    args += ["--set", f"rt_dir={out}", "--set", "flow_detail=0", *extra]
    process = ManagedProcess("mitmdump (file size limit)", args, cwd=REPO_ROOT)
    try:
        yield process
    finally:
        process.stop(signal.SIGINT, 15)


@contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the EFBIG variant covers this")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def proxy_for_fault(
    fault: str, tmp_path: Path, upstream_port: int, extra: list[str]
) -> Iterator[tuple[str, Path, ManagedProcess]]:
    """mitmdump whose capture directory fails: full disk, file size limit, or not a directory."""
    if fault == "efbig":
        out = tmp_path / "captures"
        with mitmdump_with_file_limit(upstream_port, out, 96 * 1024, extra) as process:
            port = int(process.wait_for_line(MITMDUMP_READY, 30).group(1))
            yield f"ws://127.0.0.1:{port}/v1/realtime", out, process
        return
    with tiny_tmpfs(tmp_path / "small", "256k") if fault == "enospc" else nullpath() as base:
        if fault == "enospc":
            out = base / "captures"
        else:  # a regular file where a parent directory should be
            (tmp_path / "file").write_text("not a directory")
            out = tmp_path / "file" / "captures"
        with run_mitmdump(upstream_port, rt_dir=out, extra_args=extra) as proxy:
            yield proxy.url(), out, proxy.process


@contextmanager
def nullpath() -> Iterator[Path]:
    yield Path()


def journal_frame_count(out: Path) -> int:
    journals = list(out.glob("*.jsonl")) if out.is_dir() else []
    return sum(1 for j in journals for r in records_of(j) if r["record"] == "frame")


@pytest.mark.parametrize("fault", ["enospc", "efbig", "not_a_directory"])
def test_a_capture_that_cannot_be_written_is_loud_counted_and_traffic_flows(
    tmp_path: Path, fault: str, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    with (
        run_server(config=fast_peer_config) as server,
        proxy_for_fault(fault, tmp_path, server.port, []) as (url, out, process),
    ):
        result = run_conversation_sync(url, speed=fast_speed)
        assert process.stop(signal.SIGINT, 15) == 0
        log = process.output()
        recorded = journal_frame_count(out)
        report = CliRunner().invoke(cli, ["report", str(out), "--format", "json"])
        readable = len(read_capture(out).frames) if recorded else 0
    # The user's conversation went on to the end...
    assert result.errors() == [] and len(result.responses()) >= 4
    # ...mitmdump said loudly that it was not being recorded, and how much was lost.
    assert "cannot write the capture" in log and "NOT being recorded" in log
    (counts,) = NOT_RECORDED.findall(log)
    not_recorded = int(counts[0])
    assert not_recorded > 0
    assert not_recorded == len(result.frames) - recorded
    assert "Traceback" not in report.output
    if fault == "not_a_directory":
        assert report.exit_code == 1 and "does not exist" in report.output
    else:  # what was written before the disk filled is readable
        assert recorded > 0
        assert report.exit_code == 0, report.output
        assert json.loads(report.stdout)["sessions"]
        assert readable == recorded  # from the Parquet file, or its journal when cut short


def test_rt_strict_closes_the_session_when_the_capture_cannot_be_written(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    with (
        run_server(config=fast_peer_config) as server,
        proxy_for_fault("efbig", tmp_path, server.port, ["--set", "rt_strict=true"]) as (
            url,
            out,
            process,
        ),
    ):
        with pytest.raises(Exception) as raised:  # whatever the client raises
            run_conversation_sync(url, speed=fast_speed, timeout_s=20)
        assert process.stop(signal.SIGINT, 15) == 0
        log = process.output()
    assert not isinstance(raised.value, TimeoutError)  # closed at once, not left hanging
    assert log.count("rt_strict is set; closing session") == 1
    assert "Traceback" not in log
    assert journal_frame_count(out) > 0


# --- an addon reload and SIGTERM with sessions open -----------------------------------------


def run_files(out: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Each run's journal and records, in the order the runs started."""
    runs = [(j, records_of(j)) for j in out.glob("*.jsonl")]
    # Both runs' session_start carry the same handshake time: order by their first frame.
    return sorted(runs, key=lambda run: min(r["time_s"] for r in run[1] if r["record"] == "frame"))


def reload_scenario(
    tmp_path: Path,
) -> tuple[Path, list[str], list[str], list[str]]:
    """A session that sends 20 frames, sees the addon reload, sends 20 more and closes."""
    script = tmp_path / "addon" / "capture.py"
    script.parent.mkdir()
    shutil.copy(ADDON_PATH, script)
    out = tmp_path / "captures"
    upstream = bound_socket()
    server_sent: list[str] = []
    client_sent: list[str] = []
    received: list[str] = []
    extra = ["-s", str(script), "--set", f"rt_dir={out}"]
    with run_mitmdump(upstream.getsockname()[1], addon=False, extra_args=extra) as proxy:

        def loads() -> int:
            return sum("Loading script" in line for line in proxy.process.lines())

        async def scenario() -> None:
            async with (
                serve(lambda ws: ack_server(ws, server_sent, None), sock=upstream),
                connect(proxy.url() + "?model=gpt-realtime") as ws,
            ):
                received.append(str(await ws.recv()))
                for n in range(40):
                    if n == 20:  # an engineer edits the addon while users are talking
                        script.write_text(script.read_text() + "\n# edited\n")
                        os.utime(script, (time.time() + 5, time.time() + 5))
                        async with asyncio.timeout(10):
                            while loads() < 2:
                                await asyncio.sleep(0.05)
                    text = event("input_audio_buffer.append", n, audio="AAAA")
                    client_sent.append(text)
                    await ws.send(text)
                    received.append(str(await ws.recv()))

        asyncio.run(scenario())
        wait_until(lambda: session_ended(out) and len(list(out.glob("*.jsonl"))) == 2)
        assert proxy.stop(signal.SIGINT) == 0
        log = proxy.output()
    assert "addon fault" not in log and "Traceback" not in log
    assert received == server_sent
    return out, client_sent, server_sent, received


def test_an_addon_reload_mid_session_closes_the_old_run_and_records_on_in_a_new_one(
    tmp_path: Path,
) -> None:
    out, client_sent, server_sent, _ = reload_scenario(tmp_path)
    (old_journal, old), (new_journal, new) = run_files(out)
    # The old run is complete: its session ended, its summary written, its Parquet footer too.
    assert [r["record"] for r in old][-2:] == ["session_end", "run_end"]
    old_frames = [r for r in old if r["record"] == "frame"]
    assert old[-1]["frames_recorded"] == len(old_frames) and old[-1]["frames_not_recorded"] == 0
    assert pq.read_table(old_journal.with_suffix(".parquet")).num_rows == len(old_frames)
    # The new run picks the open session up at its next frame and records it to its end.
    assert new[0]["record"] == "session_start"
    assert new[0]["session_id"] == old[0]["session_id"]
    new_frames = [r for r in new if r["record"] == "frame"]
    assert [r["record"] for r in new][-2:] == ["session_end", "run_end"]
    assert new[-2]["close_code"] == 1000
    assert pq.read_table(new_journal.with_suffix(".parquet")).num_rows == len(new_frames)
    # Together the two runs hold every frame once, in order: nothing lost in the reload.
    frames = old_frames + new_frames
    assert [f["content"] for f in frames if f["direction"] == "client"] == client_sent
    assert [f["content"] for f in frames if f["direction"] == "server"] == server_sent
    assert len(old_frames) >= 20 and len(new_frames) >= 20


def test_a_session_split_by_an_addon_reload_reads_back_in_order(tmp_path: Path) -> None:
    out, client_sent, server_sent, _ = reload_scenario(tmp_path)
    frames = read_capture(out).frames
    expected = [json.loads(t)["event_id"] for t in [server_sent[0]]]
    for sent, ack in zip(client_sent, server_sent[1:], strict=True):
        expected += [json.loads(sent)["event_id"], json.loads(ack)["event_id"]]
    assert frames["event_id"].tolist() == expected
    assert frames["seq"].is_unique


def test_sigterm_with_a_session_open_leaves_complete_files(tmp_path: Path) -> None:
    out = tmp_path / "captures"
    upstream = bound_socket()
    server_sent: list[str] = []
    client_sent: list[str] = []
    received: list[str] = []
    exit_codes: list[int] = []
    with run_mitmdump(upstream.getsockname()[1], rt_dir=out) as proxy:

        async def scenario() -> None:
            async with (
                serve(lambda ws: ack_server(ws, server_sent, None), sock=upstream),
                connect(proxy.url()) as ws,
            ):
                await talk(ws, 10, client_sent, received)
                proxy.process.popen.send_signal(signal.SIGTERM)
                loop = asyncio.get_running_loop()
                exit_codes.append(await loop.run_in_executor(None, proxy.process.popen.wait, 15))

        asyncio.run(scenario())
    assert exit_codes == [0]
    records = records_of(only_journal(out))
    assert [r["record"] for r in records][-2:] == ["session_end", "run_end"]
    assert records[-2]["close_reason"] == "proxy shut down"
    frames = [r for r in records if r["record"] == "frame"]
    assert [f["content"] for f in frames if f["direction"] == "client"] == client_sent
    assert [f["content"] for f in frames if f["direction"] == "server"] == server_sent
    parquet = next(out.glob("*.parquet"))
    assert pq.read_table(parquet).num_rows == len(frames) == 21  # the footer is there
    (session,) = json.loads(pq.ParquetFile(parquet).metadata.metadata[b"rt_analyze"])["sessions"]
    assert session["close_reason"] == "proxy shut down"
