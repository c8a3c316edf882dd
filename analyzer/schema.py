"""The capture format: one definition shared by the addon's writers and the analyzer's reader.

A run of mitmdump writes two files with the same base name:

* ``RUN.jsonl``: the crash-safe journal. One JSON object a line, ``"record"`` says which kind:
  ``session_start``, ``frame``, ``session_end``, ``run_end``. A frame line holds every column of
  :data:`FRAME_SCHEMA` except ``audio`` and ``audio_offset``; its ``content`` is the whole
  (redacted) frame, audio base64 included unless audio was dropped.
* ``RUN.parquet``: the same frames, one row each, in arrival order, columns as in
  :data:`FRAME_SCHEMA`. The audio's base64 text is cut out of ``content`` and stored decoded in
  ``audio``; ``audio_offset`` says where it was cut, so the original frame can be rebuilt exactly.
  Session facts (:data:`SESSION_FIELDS`) are in the footer's key-value metadata under
  :data:`METADATA_KEY`.

Reports project the small columns and never touch ``audio``; audio export reads ``audio`` without
parsing JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

FORMAT_VERSION = 1
METADATA_KEY = b"rt_analyze"

_dict_str = pa.dictionary(pa.int32(), pa.string())

FRAME_SCHEMA = pa.schema(
    [
        pa.field("session_id", _dict_str, nullable=False),  # mitmproxy flow id (a uuid4)
        pa.field("seq", pa.int64(), nullable=False),  # 0-based, arrival order within a session
        pa.field("time_s", pa.float64(), nullable=False),  # proxy receive time, Unix epoch seconds
        pa.field("direction", _dict_str, nullable=False),  # "client" (to server) or "server"
        pa.field("opcode", _dict_str, nullable=False),  # "text" or "binary"
        pa.field("event_type", _dict_str),  # the JSON "type"; null when absent or unparseable
        pa.field("event_id", pa.string()),
        pa.field("item_id", pa.string()),
        pa.field("response_id", pa.string()),
        pa.field("frame_bytes", pa.int64(), nullable=False),  # size of the message on the wire
        pa.field("audio_b64_bytes", pa.int64()),  # length of the audio's base64 text
        pa.field("audio_bytes", pa.int64()),  # decoded audio size (kept even when samples dropped)
        pa.field("problem", pa.string()),  # why the frame could not be fully understood, if so
        pa.field("content", pa.large_string()),  # redacted frame text (audio cut out, see above)
        pa.field("binary_content", pa.large_binary()),  # binary frames and non-UTF-8 text, as is
        pa.field("audio_offset", pa.int64()),  # where the audio base64 was cut from ``content``
        pa.field("audio", pa.large_binary()),  # decoded audio samples; null if none or dropped
    ]
)

FRAME_COLUMNS: tuple[str, ...] = tuple(FRAME_SCHEMA.names)
# Columns a journal line carries for a frame (the rest are derived when building Parquet).
JOURNAL_FRAME_COLUMNS: tuple[str, ...] = tuple(
    c for c in FRAME_COLUMNS if c not in ("audio", "audio_offset")
)
# What latency, size and conversation analysis read: everything but the samples.
ANALYSIS_COLUMNS: tuple[str, ...] = tuple(
    c for c in FRAME_COLUMNS if c not in ("audio", "binary_content")
)
# What ``rt-analyze report`` reads (turns, conversation, sizes, usage): no opcode, event ids or
# audio offsets, which only replay and audio rebuilding need.
REPORT_COLUMNS: tuple[str, ...] = tuple(
    c for c in ANALYSIS_COLUMNS if c not in ("opcode", "event_id", "audio_offset")
)

SESSION_FIELDS: tuple[str, ...] = (
    "session_id",
    "run_id",
    "url",  # secrets removed from the query
    "host",
    "path",
    "model",
    "dialect",  # "beta", "ga" or "other"
    "request_headers",  # list of [name, value], secrets redacted
    "response_headers",
    "start_s",
    "end_s",
    "close_code",
    "close_reason",
    "closed_by_client",
    "audio_kept",  # False when recorded with rt_audio=drop
)

# Parquet per-column settings: JSON compresses well; PCM barely does, so don't spend CPU on it.
PARQUET_COMPRESSION: dict[str, str] = {c: "zstd" for c in FRAME_COLUMNS}
PARQUET_COMPRESSION["audio"] = "none"
PARQUET_COMPRESSION["binary_content"] = "none"


def file_metadata(run_id: str, sessions: list[dict[str, Any]]) -> dict[bytes, bytes]:
    """The Parquet footer metadata holding the run's session facts."""
    payload = {"format_version": FORMAT_VERSION, "run_id": run_id, "sessions": sessions}
    return {METADATA_KEY: json.dumps(payload, ensure_ascii=False).encode()}


def parse_file_metadata(metadata: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    """The run facts stored by :func:`file_metadata`, or None for Parquet we did not write."""
    if not metadata or METADATA_KEY not in metadata:
        return None
    value: dict[str, Any] = json.loads(metadata[METADATA_KEY])
    return value
