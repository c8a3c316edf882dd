"""The capture format: one definition shared by the addon's writers and the analyzer's reader.

A run of mitmdump writes two files with the same base name:

* ``RUN.jsonl``: the crash-safe journal. One JSON object a line, ``"record"`` says which kind:
  ``session_start``, ``frame``, ``session_end``, ``run_end``. A frame line holds every column of
  :data:`FRAME_SCHEMA` except ``audio`` and ``audio_offset``; its ``content`` is the whole
  (redacted) frame, audio base64 included unless audio was dropped.
* ``RUN.parquet``: the same frames, one row each, in arrival order, columns as in
  :data:`FRAME_SCHEMA`. The audio's base64 text is cut out of ``content`` and stored decoded in
  ``audio``; ``audio_offset`` says where it was cut, so the original frame can be rebuilt exactly.
  A frame with audio in several fields (an item with audio parts, a response's output items) or
  in URL-safe base64 has ``audio_cuts`` instead: each field's place, size and alphabet
  (``analyzer.recording.audio_cut.restore_frame_text`` rebuilds any frame).
  Session facts (:data:`SESSION_FIELDS`) are in the footer's key-value metadata under
  :data:`METADATA_KEY`.

Reports project the small columns and never touch ``audio``; audio export reads ``audio`` without
parsing JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from analyzer.kinds import TOKEN_FIELDS

# 1: frames only. 2: adds ``events``, each frame's normalized events (see EVENT_STRUCT), and
# ``audio_cuts`` (a file of version 2 may lack it: its frames then have at most one cut).
FORMAT_VERSION = 2
METADATA_KEY = b"rt_analyze"

_dict_str = pa.dictionary(pa.int32(), pa.string())


# One normalized event. Fields a kind does not use are null. REPLY_END's token counts are the
# reply's usage; USER_TRANSCRIPT's are the transcription's (billed at the transcriber's prices).
EVENT_STRUCT = pa.struct(
    [
        pa.field("kind", pa.string()),
        pa.field("reply_id", pa.string()),  # the protocol's response id, or one the adapter made
        pa.field("item_id", pa.string()),  # the conversation item it concerns
        pa.field("previous_item_id", pa.string()),
        pa.field("placed", pa.bool_()),  # ITEM: the event states the item's place (previous)
        pa.field("stage", pa.string()),  # REPLY_ITEM: added, done or final (in the reply's end)
        pa.field("role", pa.string()),
        pa.field("item_kind", pa.string()),  # message, function_call, function_call_output...
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("name", pa.string()),  # tool name; UNKNOWN: the event type
        pa.field("call_id", pa.string()),
        pa.field("arguments", pa.string()),
        pa.field("output", pa.string()),
        pa.field("transcript", pa.string()),
        pa.field("text", pa.string()),  # deltas, texts, error messages
        pa.field("audio_bytes", pa.int64()),
        pa.field("audio_ms", pa.float64()),  # play time of audio_bytes in the format in force
        pa.field("stream_ms", pa.float64()),  # a position on the stream's own audio clock
        # When the event happened, when an adapter learned it later than its frame (speech an
        # adapter times from the audio: when that audio passed the proxy); null: the frame's time.
        pa.field("at_s", pa.float64()),
        # USAGE: billed audio seconds so far; USER_TRANSCRIPT: a transcription billed by duration
        pa.field("audio_seconds", pa.float64()),
        pa.field("input_format", pa.string()),  # CONFIG: "encoding/rate", e.g. "pcm16/24000"
        pa.field("output_format", pa.string()),
        pa.field("turn_detection", pa.string()),  # CONFIG: "none", the VAD's type, or null
        pa.field("silence_ms", pa.float64()),  # CONFIG: the VAD's silence window
        pa.field("error_type", pa.string()),
        pa.field("error_code", pa.string()),
        pa.field("error_param", pa.string()),
        pa.field("client_event_id", pa.string()),
        *(pa.field(name, pa.float64()) for name in TOKEN_FIELDS),
        # CONFIG: what the session is for (SESSION_KINDS) and the model that transcribes the
        # user's input, when the config says.
        pa.field("session_kind", pa.string()),
        pa.field("transcription_model", pa.string()),
        # USER_TRANSCRIPT(_DELTA): the token log probabilities it carries (count and mean)
        pa.field("logprob_count", pa.int64()),
        pa.field("logprob_mean", pa.float64()),
        # VOICE_END: the levels of the span of speech it ends (analyzer.voice): RMS and peak in
        # dB relative to PCM16 full scale, and the share of its samples at full scale (clipped).
        pa.field("rms_dbfs", pa.float64()),
        pa.field("peak_dbfs", pa.float64()),
        pa.field("clipped_share", pa.float64()),
        # VOICE_END of user speech: how much its start looks like reply audio sent before it
        # (analyzer.voice_echo: best normalized cross-correlation, 0..1; null: no reply audio
        # to compare) and from when that reply audio passed the proxy to the span's start.
        pa.field("echo_score", pa.float64()),
        pa.field("echo_delay_ms", pa.float64()),
    ]
)
EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in EVENT_STRUCT)
# Fields whose absence only means "not measured": events recorded before one was added are read
# as they are, the field null, rather than decoded again from their frames (which would cost a
# format-1 read and lose what an ``rt_audio=drop`` capture can no longer recompute).
OPTIONAL_EVENT_FIELDS: frozenset[str] = frozenset({"echo_score", "echo_delay_ms"})
# CONFIG's session_kind: a voice/text conversation with replies, or speech-to-text only.
SESSION_KINDS: tuple[str, ...] = ("conversation", "transcription")


def events_are_current(schema: pa.Schema) -> bool:
    """Whether a capture file's recorded ``events`` hold every field of :data:`EVENT_STRUCT`
    but the optional ones. Files written before another field was added are decoded again from
    their frames (as files of format 1 are), so every capture answers alike whichever recorder
    wrote it."""
    if "events" not in schema.names:
        return False
    kind = schema.field("events").type
    if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type):
        return False
    struct = kind.value_type
    recorded = {struct.field(i).name for i in range(struct.num_fields)}
    return recorded >= set(EVENT_FIELDS) - OPTIONAL_EVENT_FIELDS


AUDIO_CUT_STRUCT = pa.struct(
    [
        pa.field("offset", pa.int64()),
        pa.field("audio_bytes", pa.int64()),
        pa.field("urlsafe", pa.bool_()),
    ]
)

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
        # Null unless the frame has several audio fields or URL-safe ones: then each field, in
        # text order, its decoded size (its part of ``audio``), where it was cut from
        # ``content`` (null: left in the text) and its base64 alphabet.
        pa.field("audio_cuts", pa.list_(AUDIO_CUT_STRUCT)),
        pa.field("events", pa.list_(EVENT_STRUCT)),  # normalized events (version 2); see Kind
    ]
)

FRAME_COLUMNS: tuple[str, ...] = tuple(FRAME_SCHEMA.names)
# What latency, size and conversation analysis read: everything but the samples.
ANALYSIS_COLUMNS: tuple[str, ...] = tuple(
    c for c in FRAME_COLUMNS if c not in ("audio", "binary_content", "audio_cuts")
)
# What ``rt-analyze report`` reads (turns, conversation, sizes, usage): no opcode, event ids or
# audio offsets, which only replay and audio rebuilding need. The ``audio`` only from files
# whose events are decoded at read time (``analyzer.events.DECODE_ONLY_COLUMNS``): speech is
# found in it then; a file that carries its events has its speech in them.
REPORT_COLUMNS: tuple[str, ...] = (
    *(c for c in ANALYSIS_COLUMNS if c not in ("opcode", "event_id", "audio_offset")),
    "audio",
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
    "provider_session_id",  # the provider's own id of the session, when a server event names it
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
