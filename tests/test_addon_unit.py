"""The capture addon driven by mitmproxy's own test helpers (taddons / tflow)."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest
from mitmproxy import exceptions, websocket
from mitmproxy.addons import save, savehar, view
from mitmproxy.http import HTTPFlow
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

from analyzer.reader import read_capture
from analyzer.recording.imports import TRIMMED_METADATA_KEY

ADDON_PATH = Path(__file__).resolve().parents[1] / "addon" / "capture.py"


def load_addon_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rt_capture_addon", ADDON_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


capture = load_addon_module()


def realtime_flow(path: str = "/v1/realtime?model=gpt-realtime") -> HTTPFlow:
    flow = tflow.twebsocketflow(messages=False)
    flow.request.path = path
    flow.request.headers["Authorization"] = "Bearer sk-unit-test-secret-0123456789"
    return flow


def send(
    addon: Any, flow: HTTPFlow, content: bytes | str, from_client: bool, text: bool = True
) -> None:
    assert flow.websocket is not None
    data = content.encode() if isinstance(content, str) else content
    opcode = Opcode.TEXT if text else Opcode.BINARY
    flow.websocket.messages.append(websocket.WebSocketMessage(opcode, from_client, data))
    addon.websocket_message(flow)


def journal_records(directory: Path) -> list[dict[str, Any]]:
    (journal,) = directory.glob("*.jsonl")
    return [json.loads(line) for line in journal.read_text().splitlines()]


def test_records_frames_in_order_with_direction_and_event_fields(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow()
        addon.websocket_start(flow)
        audio = bytes(range(256)) * 19
        send(
            addon,
            flow,
            json.dumps(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}
            ),
            True,
        )
        send(
            addon,
            flow,
            json.dumps(
                {
                    "type": "response.output_audio.delta",
                    "event_id": "e1",
                    "item_id": "i1",
                    "response_id": "r1",
                    "delta": base64.b64encode(audio[:100]).decode(),
                }
            ),
            False,
        )
        send(addon, flow, b"\x00\x01binary", True, text=False)
        send(addon, flow, "not json at all", False)
        addon.websocket_end(flow)
        addon.done()
    frames = read_capture(tmp_path).frames
    assert list(frames["seq"]) == [0, 1, 2, 3]
    assert list(frames["direction"]) == ["client", "server", "client", "server"]
    assert list(frames["event_type"].fillna("-")) == [
        "input_audio_buffer.append",
        "response.output_audio.delta",
        "-",
        "-",
    ]
    assert list(frames["audio_bytes"].fillna(-1)) == [len(audio), 100, -1, -1]
    assert list(frames["problem"].fillna("-")) == ["-", "-", "binary frame", "not JSON"]
    assert frames["item_id"].iloc[1] == "i1" and frames["response_id"].iloc[1] == "r1"
    table = pq.read_table(next(tmp_path.glob("*.parquet")), columns=["audio", "binary_content"])
    assert table["audio"].to_pylist()[:2] == [audio, audio[:100]]
    assert table["binary_content"].to_pylist()[2] == b"\x00\x01binary"


def test_keeps_only_last_websocket_message_in_memory(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow()
        addon.websocket_start(flow)
        for i in range(50):
            send(addon, flow, json.dumps({"type": "x", "i": i}), True)
        assert flow.websocket is not None and len(flow.websocket.messages) == 1
        addon.done()


def test_ignores_websockets_that_are_not_realtime_endpoints(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow("/socket.io/?EIO=4")
        assert flow.websocket is not None
        flow.websocket.messages.clear()
        addon.websocket_start(flow)
        send(addon, flow, '{"type":"x"}', True)
        addon.done()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/realtime",
        "/openai/realtime?api-version=2024-10-01&deployment=gpt",
        "/openai/v1/realtime?model=d",
        "/api-ws/v1/realtime?model=qwen-omni",
        "/api/paas/v4/realtime",
    ],
)
def test_default_filter_matches_known_provider_endpoints(tmp_path: Path, path: str) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow(path)
        assert addon._wanted(flow)


def test_bad_option_values_are_rejected_with_clear_errors(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="rt_audio must be 'keep' or 'drop'"):
            tctx.configure(addon, rt_audio="maybe")
        with pytest.raises(exceptions.OptionsError, match="rt_filter is not a valid"):
            tctx.configure(addon, rt_filter="~u (")
        afile = tmp_path / "file"
        afile.write_text("x")
        with pytest.raises(exceptions.OptionsError, match="not a directory"):
            tctx.configure(addon, rt_dir=str(afile))


def test_drop_audio_keeps_sizes_but_no_samples(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    audio = b"\x01\x02" * 2400
    b64 = base64.b64encode(audio).decode()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path), rt_audio="drop")
        flow = realtime_flow()
        addon.websocket_start(flow)
        send(addon, flow, json.dumps({"type": "response.audio.delta", "delta": b64}), False)
        addon.done()
    for path in tmp_path.iterdir():
        assert b64[:64].encode() not in path.read_bytes()
    frames = read_capture(tmp_path).frames
    assert frames["audio_bytes"].tolist() == [len(audio)]
    assert pq.read_table(next(tmp_path.glob("*.parquet")), columns=["audio"])[
        "audio"
    ].to_pylist() == [None]


def test_secrets_in_handshake_and_events_never_reach_disk(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow("/v1/realtime?model=gpt-realtime&api-key=KEYINQUERY123")
        flow.request.headers["api-key"] = "AZUREKEY0123456789"
        flow.request.headers["Sec-WebSocket-Protocol"] = (
            "realtime, openai-insecure-api-key.sk-browser-key-0123456789"
        )
        addon.websocket_start(flow)
        send(
            addon,
            flow,
            json.dumps(
                {
                    "type": "session.created",
                    "session": {
                        "client_secret": {"value": "ek_ephemeral_0123456789", "expires_at": 1}
                    },
                }
            ),
            False,
        )
        addon.done()
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in [
        b"sk-unit-test-secret",
        b"KEYINQUERY123",
        b"AZUREKEY0123456789",
        b"sk-browser-key",
        b"ek_ephemeral",
    ]:
        assert secret not in written
    assert b"[REDACTED]" in written


def test_capture_files_are_private(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    out = tmp_path / "caps"
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(out))
        flow = realtime_flow()
        addon.websocket_start(flow)
        send(addon, flow, '{"type":"x"}', True)
        addon.done()
    assert os.stat(out).st_mode & 0o777 == 0o700
    for path in out.iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_done_before_websocket_end_leaves_readable_files(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow()
        addon.websocket_start(flow)
        send(addon, flow, '{"type":"session.created"}', False)
        addon.done()  # mitmproxy's shutdown order: done, then websocket_end
        send(addon, flow, '{"type":"late"}', False)
        addon.websocket_end(flow)
    cap = read_capture(tmp_path)
    assert cap.frames["event_type"].tolist() == ["session.created"]
    assert cap.sessions["close_reason"].tolist() == ["proxy shut down"]
    records = journal_records(tmp_path)
    assert [r["record"] for r in records] == ["session_start", "frame", "session_end", "run_end"]


def test_session_opened_before_reload_is_recorded_from_next_message(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow()  # no websocket_start: opened under the previous addon instance
        send(addon, flow, '{"type":"response.created"}', False)
        addon.done()
    assert read_capture(tmp_path).frames["event_type"].tolist() == ["response.created"]


def test_addon_fault_is_logged_and_traffic_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path), rt_writer="inline")
        flow = realtime_flow()
        addon.websocket_start(flow)
        assert addon.recorder is not None

        def broken(rec: Any) -> bool:
            raise RuntimeError("boom")

        addon.recorder.record_frame = broken
        send(addon, flow, '{"type":"x"}', True)
        assert addon.faults == 1
        assert "addon fault in websocket_message" in caplog.text
        assert flow.websocket is not None and not flow.error


def test_unwritable_directory_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path / "out"), rt_writer="inline")
        flow = realtime_flow()
        addon.websocket_start(flow)
        send(addon, flow, '{"type":"a"}', True)
        assert addon.recorder is not None and addon.recorder._journal is not None
        os.close(addon.recorder._journal._fd)  # the disk goes away under us
        addon.recorder._journal._fd = os.open(os.devnull, os.O_RDONLY)
        send(addon, flow, '{"type":"b"}', True)
        send(addon, flow, '{"type":"c"}', True)
        assert addon.recorder.counts.frames_not_recorded == 2
        assert "NOT being recorded" in caplog.text
        assert not flow.error  # traffic still flows
        addon.done()


def test_turn_log_line_reports_latency(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        caplog.set_level("INFO")
        tctx.configure(addon, rt_dir=str(tmp_path), rt_writer="inline")
        flow = realtime_flow()
        addon.websocket_start(flow)
        assert flow.websocket is not None
        events = [
            (100.0, {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1000}),
            (100.25, {"type": "response.created"}),
            (
                100.4,
                {
                    "type": "response.audio.delta",
                    "delta": base64.b64encode(b"\x00" * 4800).decode(),
                },
            ),
            (
                100.5,
                {
                    "type": "response.audio.delta",
                    "delta": base64.b64encode(b"\x00" * 4800).decode(),
                },
            ),
            (100.9, {"type": "response.done", "response": {"status": "completed"}}),
        ]
        for ts, event in events:
            flow.websocket.messages.append(
                websocket.WebSocketMessage(
                    Opcode.TEXT, False, json.dumps(event).encode(), timestamp=ts
                )
            )
            addon.websocket_message(flow)
        addon.done()
    assert "turn 1: speech_end -> first audio 400 ms, reply audio 9600 bytes" in caplog.text


def test_partitioned_layout_writes_hive_directories(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path / "root"), rt_layout="partitioned")
        flow = realtime_flow()
        addon.websocket_start(flow)
        send(addon, flow, '{"type":"x"}', True)
        addon.done()
        with pytest.raises(exceptions.OptionsError, match="rt_layout must be"):
            tctx.configure(addon, rt_layout="nested")
    (parquet,) = (tmp_path / "root").rglob("*.parquet")
    date_dir, host_dir = parquet.parent.parent, parquet.parent
    assert date_dir.name.startswith("date=20") and host_dir.name.startswith("host=")
    for directory in (tmp_path / "root", date_dir, host_dir):
        assert os.stat(directory).st_mode & 0o777 == 0o700


def _messages_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, *extra_addons: Any, **options: Any
) -> tuple[int, bool, str]:
    """Send three frames of one session; how many messages the flow still holds, whether it
    is marked trimmed, and the addon's last line about it."""
    caplog.clear()
    caplog.set_level("INFO")
    addon = capture.RealtimeCapture()
    with taddons.context(addon, *extra_addons) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path / "captures"), rt_writer="inline", **options)
        flow = realtime_flow()
        assert flow.websocket is not None
        flow.websocket.messages.clear()  # tflow's made-up messages: only ours
        addon.websocket_start(flow)
        for n in range(3):
            send(addon, flow, json.dumps({"type": "x", "n": n}), n % 2 == 0)
        addon.done()
        assert flow.websocket is not None
        # The last word: an option set after the addon loaded logs the new choice.
        line = [r.getMessage() for r in caplog.records if "recorded flows keep" in r.message][-1]
    assert len(read_capture(tmp_path / "captures").frames) == 3  # recorded either way
    return len(flow.websocket.messages), bool(flow.metadata.get(TRIMMED_METADATA_KEY)), line


def test_auto_trims_messages_when_nothing_else_reads_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    left, marked, line = _messages_left(tmp_path, caplog)
    assert (left, marked) == (1, True)
    assert "keep only their last WebSocket message (rt_keep_messages=auto: nothing else" in line


@pytest.mark.parametrize(
    ("reader", "options", "named"),
    [
        (save.Save, {"save_stream_file": "flows.mitm"}, "-w / save_stream_file"),
        (savehar.SaveHar, {"hardump": "traffic.har"}, "hardump"),
        (view.View, {}, "the flow view (mitmweb / console)"),
    ],
)
def test_auto_keeps_messages_when_a_flow_file_har_or_flow_view_reads_them(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reader: Any,
    options: dict[str, str],
    named: str,
) -> None:
    paths = {name: str(tmp_path / value) for name, value in options.items()}
    left, marked, line = _messages_left(tmp_path, caplog, reader(), **paths)
    assert (left, marked) == (3, False)
    assert line.endswith(
        f"keep all their WebSocket messages (read by {named}); the proxy's "
        "memory grows with the traffic"
    )


# One taddons context per test: under mitmproxy 12 a second one in the same test logs to the
# first one's closed event loop.
def test_all_keeps_messages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    left, marked, line = _messages_left(tmp_path, caplog, rt_keep_messages="all")
    assert (left, marked) == (3, False)
    assert "(rt_keep_messages=all)" in line


def test_last_trims_messages_even_when_a_flow_file_reads_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flows = {"save_stream_file": str(tmp_path / "flows.mitm")}
    left, marked, line = _messages_left(
        tmp_path, caplog, save.Save(), rt_keep_messages="last", **flows
    )
    assert (left, marked) == (1, True)
    assert "(rt_keep_messages=last)" in line


def test_messages_of_flows_not_recorded_are_left_alone(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, rt_dir=str(tmp_path))
        flow = realtime_flow("/socket.io/?EIO=4")
        assert flow.websocket is not None
        flow.websocket.messages.clear()
        addon.websocket_start(flow)
        for n in range(3):
            send(addon, flow, f"4{n}", True)
        addon.done()
    assert flow.websocket is not None and len(flow.websocket.messages) == 3


def test_keep_messages_must_be_auto_all_or_last(tmp_path: Path) -> None:
    addon = capture.RealtimeCapture()
    with (
        taddons.context(addon) as tctx,
        pytest.raises(exceptions.OptionsError, match="rt_keep_messages must be auto"),
    ):
        tctx.configure(addon, rt_dir=str(tmp_path), rt_keep_messages="some")
