"""The vocabulary of normalized events (kept apart from :mod:`analyzer.schema` so that the
recorder's adapters use it without loading pyarrow into the proxy)."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a normalized event means, whatever the protocol (a closed vocabulary: adapters emit
    only these, and every consumer handles each one it reads)."""

    CONFIG = "config"  # audio formats / turn detection in force (client asked or server said)
    USER_AUDIO = "user_audio"  # a chunk of the user's audio (audio_bytes, audio_ms, stream_ms)
    USER_AUDIO_COMMIT = "user_audio_commit"  # the client ends its input (manual turn taking)
    INPUT_CLEARED = "input_cleared"  # the pending input audio was thrown away
    SPEECH_START = "speech_start"  # the server's VAD heard speech start (stream_ms)
    SPEECH_END = "speech_end"  # the server's VAD heard speech end (stream_ms)
    INPUT_COMMITTED = "input_committed"  # the server took the user's input as a turn (item_id)
    USER_TRANSCRIPT_DELTA = "user_transcript_delta"
    USER_TRANSCRIPT = "user_transcript"  # the final transcript of the user's input
    USER_TRANSCRIPT_FAILED = "user_transcript_failed"
    ITEM = "item"  # the server states a conversation item (role, kind, content, its place)
    ITEM_CREATE = "item_create"  # the client adds a conversation item (text, tool result...)
    ITEM_DELETED = "item_deleted"
    REPLY_REQUEST = "reply_request"  # the client asks for a reply
    REPLY_START = "reply_start"  # first sign of a reply (reason "created": the server said so)
    REPLY_ITEM = "reply_item"  # an item a reply outputs (stage: added, done, final)
    REPLY_AUDIO = "reply_audio"  # a chunk of reply audio (audio_bytes, audio_ms)
    REPLY_TRANSCRIPT_DELTA = "reply_transcript_delta"
    REPLY_TEXT_DELTA = "reply_text_delta"
    REPLY_TRANSCRIPT = "reply_transcript"  # a reply item's whole transcript
    REPLY_TEXT = "reply_text"  # a reply item's whole text
    REPLY_END = "reply_end"  # status, reason, token usage
    TOOL_CALL = "tool_call"  # name, call_id, arguments
    TRUNCATE = "truncate"  # the client cut a reply item at stream_ms of played audio
    TRUNCATED = "truncated"  # the server confirms a truncation
    ERROR = "error"  # the server reports an error
    USAGE = "usage"  # the session's cumulative usage so far (audio_seconds); never summed
    # Speech found in the audio itself (analyzer.voice), role "user" or "assistant" (reply_id):
    # stream_ms on that stream's clock, at_s when the chunk holding it passed the proxy; an
    # end carries the span's length (audio_ms) and levels (rms_dbfs, peak_dbfs, clipped_share).
    VOICE_START = "voice_start"
    VOICE_END = "voice_end"
    UNKNOWN = "unknown"  # an event type the protocol does not define (name)


TOKEN_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
)
