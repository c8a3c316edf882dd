"""The writer process (``rt_writer=process``): same files as inline, and safe when it or the
proxy dies, stalls or is cut short."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from mitmproxy import exceptions, websocket
from mitmproxy.test import taddons
from wsproto.frame_protocol import Opcode

from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.recording import pipe, worker
from analyzer.recording.run import new_run_id
from analyzer.recording.session import handshake_facts
from tests.test_addon_unit import ADDON_PATH, capture, realtime_flow, send


def send_at(addon: Any, flow: Any, content: bytes | str, from_client: bool, ts: float) -> None:
    data = content.encode() if isinstance(content, str) else content
    opcode = Opcode.TEXT if isinstance(content, str) else Opcode.BINARY
    flow.websocket.messages.append(
        websocket.WebSocketMessage(opcode, from_client, data, timestamp=ts)
    )
    addon.websocket_message(flow)


def records(directory: Path) -> list[list[dict[str, Any]]]:
    """The records of each journal in ``directory``, in the order the runs were created."""
    journals = sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    return [[json.loads(line) for line in j.read_text().splitlines()] for j in journals]


def conversation(addon: Any, flow: Any) -> None:
    audio = base64.b64encode(bytes(range(256)) * 20).decode()
    frames: list[tuple[bytes | str, bool]] = [
        (json.dumps({"type": "session.created", "session": {"type": "realtime"}}), False),
        (json.dumps({"type": "input_audio_buffer.append", "audio": audio}), True),
        (json.dumps({"type": "input_audio_buffer.speech_stopped"}), False),
        (json.dumps({"type": "response.output_audio.delta", "delta": audio}), False),
        (json.dumps({"type": "response.done", "response": {}}), False),
        (b"\x00\xffbinary", True),
        ('{"type": "bad \\ud800 surrogate", "x": "\\ud800"}', False),
        ("not json", True),
    ]
    addon.websocket_start(flow)
    for n, (content, from_client) in enumerate(frames):
        send_at(addon, flow, content, from_client, 1000.0 + n / 10)
    flow.websocket.timestamp_end = 1001.0
    addon.websocket_end(flow)


def without_run_specifics(directory: Path) -> tuple[list[dict[str, Any]], str]:
    (journal,) = records(directory)
    for record in journal:
        record.pop("run_id", None)
        if record["record"] == "run_end":
            record.pop("time_s")
    table = pq.read_table(next(directory.glob("*.parquet"))).to_pydict()
    # As text: the events' NaNs (no play time known) compare equal there.
    return journal, json.dumps(table, default=repr, sort_keys=True)


def test_process_writer_writes_the_same_files_as_inline(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    for mode in ("inline", "process"):
        addon = capture.RealtimeCapture()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, rt_dir=str(tmp_path / mode), rt_writer=mode)
            flow = realtime_flow()
            flow.id = "11111111-2222-3333-4444-555555555555"
            conversation(addon, flow)
            assert (addon.writer is not None) == (mode == "process")
            addon.done()
    assert without_run_specifics(tmp_path / "inline") == without_run_specifics(tmp_path / "process")
    out = capfd.readouterr().out
    # The writer process prints mitmdump-style lines: the turn line and the run's closing line.
    assert "] rt: session 11111111 turn 1: speech_end -> first audio" in out
    assert "] rt-analyze: run rt-" in out and "8 frames recorded, 0 not recorded" in out


def test_rt_strict_forces_inline_and_bad_rt_writer_is_rejected(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        assert addon.writer is not None and addon.recorder is None
        tctx.configure(addon, rt_strict=True)
        assert addon.writer is None and addon.recorder is not None
        with pytest.raises(exceptions.OptionsError, match="rt_writer must be"):
            tctx.configure(addon, rt_writer="thread")
        addon.done()


def test_a_dead_writer_is_logged_once_and_recording_goes_on_inline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow()
        addon.websocket_start(flow)
        for n in range(5):
            send(addon, flow, json.dumps({"type": "x", "n": n}), True)
        writer = addon.writer
        assert writer is not None and writer.process is not None
        writer.process.kill()
        writer.process.wait()
        for n in range(5, 10):
            send(addon, flow, json.dumps({"type": "x", "n": n}), True)
        assert addon.writer is None and addon.recorder is not None
        assert flow.websocket is not None and not flow.error
        addon.websocket_end(flow)
        addon.done()
    assert caplog.text.count("writer process of run") == 1
    assert "recording goes on inside the proxy" in caplog.text
    assert addon.faults == 0
    # Frames the dead process had not written are lost; all the others are in the new run,
    # numbered on, with the session started and ended.
    *_, new = records(tmp_path)
    frames = [r for r in new if r["record"] == "frame"]
    assert [json.loads(f["content"])["n"] for f in frames] == list(range(5, 10))
    assert [f["seq"] for f in frames] == list(range(5, 10))
    assert new[0]["record"] == "session_start"
    assert [r["record"] for r in new][-2:] == ["session_end", "run_end"]


def start_writer(directory: Path, **kwargs: Any) -> tuple[pipe.WriterProcess, int]:
    writer = pipe.WriterProcess(directory, new_run_id(), **kwargs)
    facts = handshake_facts("s1", writer.run_id, "ws://h/v1/realtime", [], [], time.time(), True)
    handle = writer.start_session(facts)
    assert handle is not None
    return writer, handle


def test_the_writer_closes_the_run_when_the_proxy_vanishes(tmp_path: Path) -> None:
    writer, handle = start_writer(tmp_path)
    for n in range(100):
        assert writer.frame(handle, n, time.time(), worker.IS_TEXT, b'{"type":"x"}')
    # A message cut short, then end of input: what kill -9 of the proxy leaves.
    os.write(writer._fd, pipe.FRAME.pack(1000, worker.KIND_FRAME, handle, 100, 0.0, 0))
    assert writer.process is not None
    writer._close_pipe()
    assert writer.process.wait(timeout=30) == 0
    (run,) = records(tmp_path)
    assert [r["record"] for r in run][-2:] == ["session_end", "run_end"]
    assert run[-2]["close_reason"] == worker.PROXY_VANISHED
    assert run[-1]["frames_recorded"] == 100
    assert pq.read_table(next(tmp_path.glob("*.parquet"))).num_rows == 100


def test_a_writer_that_stops_reading_is_given_up_after_a_bounded_wait(tmp_path: Path) -> None:
    writer, handle = start_writer(tmp_path, stall_timeout_s=0.5)
    assert writer.process is not None
    content = b'{"type":"x","pad":"' + b"a" * 6000 + b'"}'
    assert writer.frame(handle, 0, time.time(), worker.IS_TEXT, content)
    os.kill(writer.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        handed = 1
        while writer.frame(handle, handed, time.time(), worker.IS_TEXT, content):
            handed += 1
            assert time.monotonic() - started < 20
        assert writer.broken and 0.4 < writer.max_stall_s < 2.0
        assert handed > 100  # the enlarged pipe took ~1 MiB first
    finally:
        os.kill(writer.process.pid, signal.SIGCONT)
    # It still writes everything it had taken whole, and closes its run.
    assert writer.process.wait(timeout=30) == 0
    (run,) = records(tmp_path)
    assert run[-1]["record"] == "run_end" and run[-1]["frames_recorded"] == handed


def test_handing_a_frame_over_is_cheap(tmp_path: Path) -> None:
    writer, handle = start_writer(tmp_path)
    content = b'{"type":"response.output_audio.delta","delta":"' + b"A" * 6400 + b'"}'
    timings = []
    for n in range(2000):
        started = time.perf_counter()
        assert writer.frame(handle, n, time.time(), worker.IS_TEXT, content)
        timings.append(time.perf_counter() - started)
        if n % 100 == 0:
            time.sleep(0.01)  # realtime-ish: let the process keep up, as it does in practice
    assert writer.close()
    timings.sort()
    assert timings[len(timings) // 2] < 200e-6  # a few µs normally; generous for a busy host
    assert read_capture(tmp_path).frames["seq"].tolist() == list(range(2000))


# --- through real mitmdump ------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_kill_9_of_mitmdump_still_leaves_a_complete_run(
    tmp_path: Path, fast_peer_config: PeerConfig
) -> None:
    out = tmp_path / "captures"
    outcome: list[ConversationResult | BaseException] = []
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):

        def talk() -> None:
            try:
                outcome.append(run_conversation_sync(proxy.url(), speed=1.0, timeout_s=30))
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=talk)
        thread.start()
        time.sleep(3.0)
        proxy.process.popen.send_signal(signal.SIGKILL)
        proxy.process.popen.wait(timeout=10)
        thread.join(timeout=60)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            runs = records(out)
            if runs and runs[0] and runs[0][-1]["record"] == "run_end":
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the writer did not close the run")
    (run,) = records(out)
    frames = [r for r in run if r["record"] == "frame"]
    assert len(frames) > 10
    assert run[-2]["close_reason"] == worker.PROXY_VANISHED
    assert pq.read_table(next(out.glob("*.parquet"))).num_rows == len(frames)
    assert "the proxy went away without closing run" in proxy.output()


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_mitmdump_logs_the_writer_lines_and_waits_for_it_on_sigint(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    out = tmp_path / "captures"
    with (
        run_server(config=fast_peer_config) as server,
        run_mitmdump(server.port, rt_dir=out) as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect="ga", speed=fast_speed)
        assert proxy.stop(signal.SIGINT) == 0
    lines = proxy.process.lines()
    assert len(proxy.rt_lines()) == len(result.responses())
    (closed,) = [line for line in lines if "closed:" in line]
    assert closed.startswith("[") and f"{len(result.frames)} frames recorded" in closed
    assert "Traceback" not in proxy.output()
    assert read_capture(out).frames["seq"].tolist() == list(range(len(result.frames)))


class _Trickle:
    """A pipe that hands its bytes over ``step`` at a time, as reads of a busy pipe do."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def read1(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + min(n, self.step)]
        self.at += len(chunk)
        return chunk


def _message(kind: bytes, body: bytes) -> bytes:
    return worker.LENGTH.pack(1 + len(body)) + kind + body


@pytest.mark.parametrize("step", [1, 3, 7, 64, 1 << 20])
def test_messages_split_anywhere_across_reads_come_out_whole(step: int) -> None:
    bodies = [b"x" * n for n in (0, 1, 5, 300)]
    data = b"".join(_message(b"F", b) for b in bodies)
    cut_short = _message(b"F", b"lost")[:-1]  # the proxy died mid-message
    batches = list(worker.read_batches(_Trickle(data + cut_short, step)))  # type: ignore[arg-type]
    got = [message for batch in batches for message in batch]
    assert got == [(ord("F"), b"F" + b) for b in bodies]
    assert step < len(data) or len(batches) == 1  # one read of the whole: one batch


def test_a_zero_length_message_ends_the_input() -> None:
    data = _message(b"F", b"a") + worker.LENGTH.pack(0) + _message(b"F", b"b")
    got = list(worker.read_batches(_Trickle(data, 1 << 20)))  # type: ignore[arg-type]
    assert got == [[(ord("F"), b"Fa")]]


# A session through the addon in a fresh interpreter; prints which of the analysis libraries
# the proxy's process had loaded after configuring, and at the end.
_PROXY_SIDE = """
import importlib.util, json, sys
from mitmproxy import websocket
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

spec = importlib.util.spec_from_file_location("rt_capture", sys.argv[1])
capture = importlib.util.module_from_spec(spec)
spec.loader.exec_module(capture)
heavy = lambda: sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules)
addon = capture.RealtimeCapture()
with taddons.context(addon) as tctx:
    tctx.configure(addon, rt_dir=sys.argv[2], rt_writer=sys.argv[3])
    configured = heavy()
    addon.running()
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = "/v1/realtime?model=gpt-realtime"
    addon.websocket_start(flow)
    for event in ({"type": "session.created"}, {"type": "response.done", "response": {}}):
        message = json.dumps(event).encode()
        flow.websocket.messages.append(websocket.WebSocketMessage(Opcode.TEXT, False, message))
        addon.websocket_message(flow)
    addon.websocket_end(flow)
    addon.done()
print(json.dumps({"configured": configured, "end": heavy()}))
"""


@pytest.mark.parametrize(
    ("mode", "loaded"), [("process", []), ("inline", ["numpy", "pandas", "pyarrow"])]
)
def test_with_the_writer_process_mitmdump_loads_no_analysis_library(
    tmp_path: Path, mode: str, loaded: list[str]
) -> None:
    """The writer process writes Parquet; mitmdump's own process does not import pyarrow,
    pandas or numpy (~85 MB of its memory). Inline, they are imported when configured, not at
    the first frame."""
    out = subprocess.run(
        [sys.executable, "-c", _PROXY_SIDE, str(ADDON_PATH), str(tmp_path), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == {"configured": loaded, "end": loaded}
    (parquet,) = tmp_path.glob("*.parquet")
    assert pq.read_table(parquet).column("event_type").to_pylist() == [
        "session.created",
        "response.done",
    ]
