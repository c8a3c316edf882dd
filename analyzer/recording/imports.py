"""Traffic recorded elsewhere -> capture files: HAR exports (browser DevTools, mitmweb,
mitmproxy's ``hardump``) and mitmproxy flow files (``mitmdump -w``).

Each input file becomes one run written by :class:`RunRecorder` through the same
:func:`build_frame` and :func:`handshake_facts` the addon uses: same schema, same redaction.
Times are the file's (message receive times), not the time of the import.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from analyzer.protocols import endpoint_pattern
from analyzer.recording.frames import build_frame
from analyzer.recording.naming import new_run_id
from analyzer.recording.session import handshake_facts

# The addon's default filter, as a regex on the URL: paths ending in /realtime.
DEFAULT_MATCH = endpoint_pattern()  # what the addon records by default
# Where the addon marks a flow whose messages it trimmed (rt_keep_messages=last).
TRIMMED_METADATA_KEY = "rt_analyze.messages_trimmed"


class ImportFileError(ValueError):
    """A file that is neither a HAR file nor a mitmproxy flow file, or is damaged."""


@dataclass(frozen=True)
class Message:
    time_s: float
    from_client: bool
    is_text: bool
    content: bytes


@dataclass
class Connection:
    """One WebSocket connection as another tool saved it."""

    session_id: str
    url: str
    request_headers: list[tuple[str, str]]
    response_headers: list[tuple[str, str]]
    start_s: float
    messages: list[Message]
    end_s: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    closed_by_client: bool | None = None
    trimmed: bool = False  # recorded by an rt-analyze addon that kept only the last message


@dataclass
class ImportResult:
    source: Path
    run_id: str | None  # None: nothing to import in this file
    parquet_path: Path | None
    sessions: int = 0
    frames: int = 0
    websockets_skipped: int = 0  # WebSocket connections whose URL did not match
    warnings: list[str] = field(default_factory=list)


def _header_pairs(entries: Any) -> list[tuple[str, str]]:
    if not isinstance(entries, list):
        return []
    return [
        (str(h.get("name", "")), str(h.get("value", "")))
        for h in entries
        if isinstance(h, dict) and "name" in h
    ]


def _har_time(value: Any) -> float:
    """HAR's ``startedDateTime`` (ISO 8601, ``Z`` or an offset) -> Unix seconds."""
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ImportFileError(f"startedDateTime {value!r} is not an ISO 8601 time") from exc


def _har_message(raw: Any, number: int) -> tuple[float, Message]:
    """One ``_webSocketMessages`` entry: ``type`` send/receive, ``time`` (seconds), ``opcode``
    1 (text) or 2 (binary, ``data`` in base64), ``data``."""
    if not isinstance(raw, dict) or raw.get("type") not in ("send", "receive"):
        raise ImportFileError(f"WebSocket message {number} has no type send/receive")
    data = raw.get("data", "")
    if not isinstance(data, str):
        raise ImportFileError(f"WebSocket message {number} has no text data")
    is_text = raw.get("opcode", 1) != 2
    if is_text:
        content = data.encode("utf-8", "surrogatepass")
    else:
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImportFileError(f"binary WebSocket message {number} is not base64") from exc
    try:
        time_s = float(raw.get("time", 0.0))
    except (TypeError, ValueError) as exc:
        raise ImportFileError(f"WebSocket message {number} has no numeric time") from exc
    return time_s, Message(time_s, raw["type"] == "send", is_text, content)


def _har_connection(entry: dict[str, Any], index: int, source: Path) -> Connection:
    request = entry.get("request") or {}
    response = entry.get("response") or {}
    start_s = _har_time(entry.get("startedDateTime"))
    timed = [_har_message(m, n) for n, m in enumerate(entry.get("_webSocketMessages") or [])]
    messages = [m for _, m in timed]
    # DevTools writes wall-clock seconds; a tool writing seconds since some other origin gets
    # its times placed after the handshake, keeping their spacing.
    if timed and min(t for t, _ in timed) < 1e9:
        first = min(t for t, _ in timed)
        messages = [replace(m, time_s=start_s + m.time_s - first) for m in messages]
    started = entry.get("startedDateTime")
    return Connection(
        # The same entry of the same file imports under the same id every time.
        session_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source.name}#{index}#{started}")),
        url=str(request.get("url", "")),
        request_headers=_header_pairs(request.get("headers")),
        response_headers=_header_pairs(response.get("headers")),
        start_s=start_s,
        messages=messages,
        end_s=max((m.time_s for m in messages), default=start_s),
    )


def har_connections(path: Path, document: Any) -> Iterator[Connection]:
    """The WebSocket connections of a HAR document (entries with ``_webSocketMessages``)."""
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise ImportFileError(f"{path} is JSON but not a HAR file (no log.entries).")
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and "_webSocketMessages" in entry:
            try:
                yield _har_connection(entry, index, path)
            except ImportFileError as exc:
                raise ImportFileError(f"{path}: entry {index}: {exc}.") from exc


def flow_connections(path: Path) -> Iterator[Connection]:
    """The WebSocket connections of a mitmproxy flow file (``mitmdump -w``)."""
    from mitmproxy import http
    from mitmproxy.exceptions import FlowReadException
    from mitmproxy.io import FlowReader

    with open(path, "rb") as f:
        try:
            for flow in FlowReader(f).stream():
                if not isinstance(flow, http.HTTPFlow) or flow.websocket is None:
                    continue
                ws = flow.websocket
                response = flow.response
                yield Connection(
                    session_id=flow.id,
                    url=flow.request.pretty_url,
                    request_headers=list(flow.request.headers.items(multi=True)),
                    response_headers=list(response.headers.items(multi=True)) if response else [],
                    start_s=(response.timestamp_end if response else None)
                    or flow.request.timestamp_start,
                    messages=[
                        Message(m.timestamp, m.from_client, m.is_text, m.content)
                        for m in ws.messages
                    ],
                    end_s=ws.timestamp_end,
                    close_code=ws.close_code,
                    close_reason=ws.close_reason,
                    closed_by_client=ws.closed_by_client,
                    trimmed=bool(flow.metadata.get(TRIMMED_METADATA_KEY)),
                )
        except FlowReadException as exc:
            raise ImportFileError(
                f"{path} is neither a HAR file nor a mitmproxy flow file ({exc})."
            ) from exc


def read_connections(path: Path) -> Iterator[Connection]:
    """HAR (JSON) or mitmproxy flow file, told apart by content, not by name."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        try:
            document = json.loads(path.read_bytes())
        except (ValueError, RecursionError) as exc:
            raise ImportFileError(f"{path} looks like JSON but does not parse: {exc}.") from exc
        return har_connections(path, document)
    return flow_connections(path)


def import_file(
    path: Path,
    directory: Path,
    match: str = DEFAULT_MATCH,
    keep_audio: bool = True,
) -> ImportResult:
    """Write the matching WebSocket connections of ``path`` as one run in ``directory``."""
    # The writers import pyarrow and pandas: only once there is something to write.
    from analyzer.recording.run import RunRecorder

    pattern = re.compile(match)
    result = ImportResult(path, None, None)
    wanted: list[Connection] = []
    for connection in read_connections(path):
        if pattern.search(connection.url):
            wanted.append(connection)
        else:
            result.websockets_skipped += 1
    if not wanted:
        return result
    wanted.sort(key=lambda c: c.start_s)
    recorder = RunRecorder(directory, new_run_id(wanted[0].start_s))
    for connection in wanted:
        _record_connection(recorder, connection, keep_audio)
        if connection.trimmed:
            result.warnings.append(
                f"{path}: session {connection.session_id} was saved by an rt-analyze addon that "
                "kept only the last message (rt_keep_messages=last); it holds "
                f"{len(connection.messages)} of its frames."
            )
    summary = recorder.close(end_open_sessions_reason="import")
    if summary["frames_not_recorded"]:
        raise OSError(f"{summary['frames_not_recorded']} frames could not be written")
    result.run_id = recorder.run_id
    result.parquet_path = recorder.parquet_path
    result.sessions = summary["sessions"]
    result.frames = summary["frames_recorded"]
    return result


def _record_connection(recorder: Any, connection: Connection, keep_audio: bool) -> None:
    facts = handshake_facts(
        session_id=connection.session_id,
        run_id=recorder.run_id,
        url=connection.url,
        request_headers=connection.request_headers,
        response_headers=connection.response_headers,
        start_s=connection.start_s,
        audio_kept=keep_audio,
    )
    recorder.start_session(facts)
    for seq, message in enumerate(connection.messages):
        rec = build_frame(
            connection.session_id,
            seq,
            message.time_s,
            message.from_client,
            message.is_text,
            message.content,
            keep_audio=keep_audio,
            # Where the session's protocol carries audio (without it: Realtime's fields only).
            audio_paths=recorder.audio_paths(connection.session_id),
        )
        recorder.record_frame(rec)
    recorder.end_session(
        connection.session_id,
        end_s=connection.end_s or max((m.time_s for m in connection.messages), default=None),
        close_code=connection.close_code,
        close_reason=connection.close_reason,
        closed_by_client=connection.closed_by_client,
    )
