"""`rt-analyze import`: HAR files and mitmproxy flow files written by real tools (mitmdump -w,
mitmproxy's HAR export) and a DevTools HAR built from the format, become capture files with
every frame, byte-exact audio and the file's own times."""

from __future__ import annotations

import base64
import json
import signal
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from mitmproxy.http import HTTPFlow
from mitmproxy.io import FlowReader

from analyzer.cli import main as cli
from analyzer.peer.client import ConversationResult, run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from analyzer.protocols import streamed_audio_field
from analyzer.recording.imports import ImportFileError, import_file


@dataclass
class Recorded:
    flows: Path
    har: Path
    conversations: dict[str, ConversationResult]  # by dialect


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A GA voice session and a beta text session through mitmdump without the addon, saved
    by mitmdump itself: ``-w`` (flow file) and ``hardump`` (mitmproxy's HAR export)."""
    directory = tmp_path_factory.mktemp("recorded")
    flows, har = directory / "flows.mitm", directory / "traffic.har"
    config = PeerConfig(
        first_response_delay_ms=40,
        first_audio_delay_ms=20,
        transcription_delay_ms=20,
        audio_pace=10.0,
    )
    save = ["-w", str(flows), "--set", f"hardump={har}"]
    with (
        run_server(config=config) as server,
        run_mitmdump(server.port, addon=False, extra_args=save) as proxy,
    ):
        conversations = {
            "ga": run_conversation_sync(proxy.url(), dialect="ga", speed=10.0),
            "beta": run_conversation_sync(proxy.url(), dialect="beta", scenario="text", speed=10.0),
        }
        assert proxy.stop(signal.SIGINT) == 0, proxy.output()
    assert all(c.errors() == [] for c in conversations.values())
    return Recorded(flows, har, conversations)


def capture_rows(parquet: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Frames by session (in seq order) and session facts by session id."""
    file = pq.ParquetFile(parquet)
    sessions = {
        s["session_id"]: s for s in json.loads(file.metadata.metadata[b"rt_analyze"])["sessions"]
    }
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(file.read().to_pylist(), key=lambda r: (r["session_id"], r["seq"])):
        by_session[row["session_id"]].append(row)
    return by_session, sessions


def wire_audio(frames: list[dict[str, Any]], direction: str) -> list[bytes]:
    """The decoded audio of every frame one side sent, in order, as the client saw it."""
    audio = []
    for frame in frames:
        if frame["direction"] != direction:
            continue
        event = json.loads(frame["text"])
        field = streamed_audio_field(event["type"])
        if field:
            audio.append(base64.b64decode(event[field]))
    return audio


def assert_imported_conversations(parquet: Path, recorded: Recorded) -> None:
    by_session, sessions = capture_rows(parquet)
    assert len(by_session) == 2
    for session_id, rows in by_session.items():
        conversation = recorded.conversations[sessions[session_id]["dialect"]]
        assert len(rows) == len(conversation.frames)
        assert [r["seq"] for r in rows] == list(range(len(rows)))
        for direction in ("client", "server"):
            sent = [f for f in conversation.frames if f["direction"] == direction]
            got = [r for r in rows if r["direction"] == direction]
            assert [r["event_type"] for r in got] == [f["type"] for f in sent]
            assert [r["frame_bytes"] for r in got] == [len(f["text"].encode()) for f in sent]
            assert [r["audio"] for r in got if r["audio"] is not None] == wire_audio(
                conversation.frames, direction
            )
    ga_audio = wire_audio(recorded.conversations["ga"].frames, "server")
    assert len(ga_audio) > 10 and sum(map(len, ga_audio)) > 100_000  # real speech went through


def test_mitmdump_flow_file_imports_every_frame_with_exact_audio_and_its_times(
    recorded: Recorded, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["import", str(recorded.flows), "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (parquet,) = tmp_path.glob("*.parquet")
    frames = sum(len(c.frames) for c in recorded.conversations.values())
    assert result.output.splitlines() == [
        f"{recorded.flows}: 2 session(s), {frames} frame(s) -> {parquet}",
        f"Report: rt-analyze report {parquet}",
    ]
    assert_imported_conversations(parquet, recorded)
    with open(recorded.flows, "rb") as f:
        flows = [flow for flow in FlowReader(f).stream() if isinstance(flow, HTTPFlow)]
    times = {
        flow.id: [m.timestamp for m in flow.websocket.messages]
        for flow in flows
        if flow.websocket is not None
    }
    by_session, sessions = capture_rows(parquet)
    assert {sid: [r["time_s"] for r in rows] for sid, rows in by_session.items()} == times
    assert {s["close_code"] for s in sessions.values()} == {1000}
    report = CliRunner().invoke(cli, ["report", str(parquet), "--format", "json"])
    turns = {s["dialect"]: len(s["turns"]) for s in json.loads(report.output)["sessions"]}
    assert turns == {d: len(c.responses()) for d, c in recorded.conversations.items()}


def test_mitmproxy_har_export_imports_every_frame_with_exact_audio(
    recorded: Recorded, tmp_path: Path
) -> None:
    imported = import_file(recorded.har, tmp_path)
    assert imported.sessions == 2 and imported.parquet_path is not None
    assert imported.frames == sum(len(c.frames) for c in recorded.conversations.values())
    assert_imported_conversations(imported.parquet_path, recorded)


PCM_IN = bytes(range(256)) * 19  # 4864 bytes of "audio" the user sent
PCM_OUT = bytes(reversed(range(256))) * 7
BINARY_UP = b"\x00\x01\x02\xff\xfe binary frame"
BINARY_DOWN = b"\x80\x81 not utf-8 \xc3\x28"
SECRETS = ("sk-proj-HARHEADERSECRET01", "sk-HARQUERYSECRET02", "HARAZUREKEY03")
START = "2020-05-01T10:00:00.000Z"
T0 = 1588327200.0  # START as Unix seconds


def devtools_har() -> dict[str, Any]:
    """A HAR as Chrome DevTools writes it ("Save all as HAR with content"): WebSocket messages
    under _webSocketMessages with type, wall-clock time in seconds, opcode, and data (base64
    for binary frames); a plain request and an unrelated WebSocket beside it."""

    def message(kind: str, dt: float, data: str | bytes) -> dict[str, Any]:
        if isinstance(data, bytes):
            return {
                "type": kind,
                "time": T0 + dt,
                "opcode": 2,
                "data": base64.b64encode(data).decode(),
            }
        return {"type": kind, "time": T0 + dt, "opcode": 1, "data": data}

    def entry(url: str, messages: list[dict[str, Any]] | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "startedDateTime": START,
            "time": 12.5,
            "request": {
                "method": "GET",
                "url": url,
                "httpVersion": "HTTP/1.1",
                "headers": [
                    {"name": "Host", "value": "api.openai.com"},
                    {"name": "Authorization", "value": f"Bearer {SECRETS[0]}"},
                    {"name": "api-key", "value": SECRETS[2]},
                ],
                "queryString": [],
                "cookies": [],
                "headersSize": -1,
                "bodySize": 0,
            },
            "response": {
                "status": 101,
                "statusText": "Switching Protocols",
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": "Upgrade", "value": "websocket"}],
                "cookies": [],
                "content": {"size": 0, "mimeType": "x-unknown"},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": 0,
            },
            "cache": {},
            "timings": {
                "blocked": -1,
                "dns": -1,
                "connect": -1,
                "send": 0,
                "wait": 12.5,
                "receive": 0,
            },
        }
        if messages is not None:
            item["_resourceType"] = "websocket"
            item["_webSocketMessages"] = messages
        return item

    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    realtime = [
        message(
            "receive",
            0.10,
            json.dumps(
                {
                    "type": "session.created",
                    "session": {"type": "realtime", "model": "gpt-realtime"},
                }
            ),
        ),
        message(
            "send", 0.20, json.dumps({"type": "input_audio_buffer.append", "audio": b64(PCM_IN)})
        ),
        message("send", 0.25, BINARY_UP),
        message(
            "receive",
            0.40,
            json.dumps(
                {
                    "type": "response.output_audio.delta",
                    "response_id": "resp_1",
                    "item_id": "item_1",
                    "delta": b64(PCM_OUT),
                }
            ),
        ),
        message("receive", 0.45, BINARY_DOWN),
    ]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [],
            "entries": [
                entry("https://example.com/index.html", None),
                entry(
                    f"wss://api.openai.com/v1/realtime?model=gpt-realtime&api-key={SECRETS[1]}",
                    realtime,
                ),
                entry("wss://example.com/socket.io/?EIO=4", [message("send", 0.3, "40")]),
            ],
        }
    }


def test_devtools_har_with_binary_frames_imports_exactly_and_redacted(tmp_path: Path) -> None:
    har = tmp_path / "devtools.har"
    har.write_text(json.dumps(devtools_har()))
    out = tmp_path / "captures"
    imported = import_file(har, out)
    assert (imported.sessions, imported.frames, imported.websockets_skipped) == (1, 5, 1)
    assert imported.run_id is not None and imported.run_id.startswith("rt-20200501T100000Z-")
    assert imported.parquet_path is not None
    by_session, sessions = capture_rows(imported.parquet_path)
    ((session_id, rows),) = by_session.items()
    assert [r["time_s"] for r in rows] == [T0 + dt for dt in (0.10, 0.20, 0.25, 0.40, 0.45)]
    assert [(r["direction"], r["opcode"]) for r in rows] == [
        ("server", "text"),
        ("client", "text"),
        ("client", "binary"),
        ("server", "text"),
        ("server", "binary"),
    ]
    assert [r["binary_content"] for r in rows] == [None, None, BINARY_UP, None, BINARY_DOWN]
    assert [r["audio"] for r in rows] == [None, PCM_IN, None, PCM_OUT, None]
    assert [r["frame_bytes"] for r in rows][2::2] == [len(BINARY_UP), len(BINARY_DOWN)]
    facts = sessions[session_id]
    assert (facts["start_s"], facts["end_s"], facts["dialect"], facts["model"]) == (
        T0,
        T0 + 0.45,
        "ga",
        "gpt-realtime",
    )
    for path in out.iterdir():
        data = path.read_bytes()
        assert not any(secret.encode() in data for secret in SECRETS), path
    again = import_file(har, tmp_path / "again")
    assert again.parquet_path is not None
    assert list(capture_rows(again.parquet_path)[0]) == [session_id]  # stable session ids


def test_har_with_seconds_since_start_keeps_the_spacing(tmp_path: Path) -> None:
    document = devtools_har()
    for message in document["log"]["entries"][1]["_webSocketMessages"]:
        message["time"] -= T0 - 5.0  # 5.10, 5.20, ...: not wall-clock
    har = tmp_path / "relative.har"
    har.write_text(json.dumps(document))
    imported = import_file(har, tmp_path / "out")
    assert imported.parquet_path is not None
    rows = next(iter(capture_rows(imported.parquet_path)[0].values()))
    assert [round(r["time_s"] - T0, 6) for r in rows] == [0.0, 0.1, 0.15, 0.3, 0.35]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01 this is no capture", "neither a HAR file nor a mitmproxy flow file"),
        (b'{"not": "har"}', "is JSON but not a HAR file"),
        (b'{"log": {"entries": [', "looks like JSON but does not parse"),
    ],
)
def test_files_of_other_kinds_are_one_error_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["import", str(path), "--dir", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_binary_frame_names_its_entry_and_message(tmp_path: Path) -> None:
    document = devtools_har()
    document["log"]["entries"][1]["_webSocketMessages"][2]["data"] = "not base64!"
    har = tmp_path / "bad.har"
    har.write_text(json.dumps(document))
    with pytest.raises(ImportFileError, match=r"entry 1: binary WebSocket message 2 is not base64"):
        import_file(har, tmp_path / "out")


def test_nothing_matching_is_an_error_that_says_how_to_import_all(tmp_path: Path) -> None:
    document = devtools_har()
    del document["log"]["entries"][1]
    har = tmp_path / "other.har"
    har.write_text(json.dumps(document))
    result = CliRunner().invoke(cli, ["import", str(har), "--dir", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "1 other WebSocket connection(s); --match . imports all" in result.output
    everything = CliRunner().invoke(
        cli, ["import", str(har), "--dir", str(tmp_path / "out"), "--match", "."]
    )
    assert everything.exit_code == 0 and "1 session(s), 1 frame(s)" in everything.output
