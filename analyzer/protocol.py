"""Realtime protocol facts both the recorder and the analyzer match on (by ``type`` string only)."""

from __future__ import annotations

# Events carrying base64 audio, and the field that holds it.
AUDIO_FIELD_BY_EVENT: dict[str, str] = {
    "input_audio_buffer.append": "audio",
    "response.audio.delta": "delta",  # beta
    "response.output_audio.delta": "delta",  # GA
}
CLIENT_AUDIO_EVENTS = frozenset({"input_audio_buffer.append"})
SERVER_AUDIO_EVENTS = frozenset({"response.audio.delta", "response.output_audio.delta"})

AUDIO_TRANSCRIPT_DELTA_EVENTS = frozenset(
    {"response.audio_transcript.delta", "response.output_audio_transcript.delta"}
)
AUDIO_TRANSCRIPT_DONE_EVENTS = frozenset(
    {"response.audio_transcript.done", "response.output_audio_transcript.done"}
)
TEXT_DELTA_EVENTS = frozenset({"response.text.delta", "response.output_text.delta"})
TEXT_DONE_EVENTS = frozenset({"response.text.done", "response.output_text.done"})
AUDIO_DONE_EVENTS = frozenset({"response.audio.done", "response.output_audio.done"})
ITEM_CREATED_EVENTS = frozenset(
    {"conversation.item.created", "conversation.item.added", "conversation.item.done"}
)
SESSION_CONFIG_EVENTS = frozenset(
    {
        "session.created",
        "session.updated",
        "transcription_session.created",
        "transcription_session.updated",
    }
)

# Event types only one dialect sends; used to tell beta from GA when no header says.
BETA_ONLY_EVENTS = frozenset(
    {
        "response.audio.delta",
        "response.audio.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.text.delta",
        "response.text.done",
        "transcription_session.update",
        "transcription_session.updated",
    }
)
GA_ONLY_EVENTS = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.output_text.delta",
        "response.output_text.done",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.timeout_triggered",
    }
)

# Paths of realtime endpoints (OpenAI, Azure, DashScope, Zhipu, vLLM...) all end in /realtime.
REALTIME_PATH_SUFFIX = "/realtime"


def dialect_of_event(event_type: str) -> str | None:
    """'beta' or 'ga' when this event type exists in only one dialect, else None."""
    if event_type in BETA_ONLY_EVENTS:
        return "beta"
    if event_type in GA_ONLY_EVENTS:
        return "ga"
    return None
