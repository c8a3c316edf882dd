"""Realtime protocol facts both the recorder and the analyzer match on (by ``type`` string only):
event-name sets per dialect and direction, and which dialect an event type belongs to."""

from __future__ import annotations

# Every event a client sends, in both dialects; anything else comes from the server.
CLIENT_EVENTS = frozenset(
    {
        "session.update",
        "transcription_session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
        "output_audio_buffer.clear",
        "conversation.item.create",
        "conversation.item.delete",
        "conversation.item.retrieve",
        "conversation.item.truncate",
        "response.create",
        "response.cancel",
    }
)

# Every event type of the beta and GA protocols (client and server); anything else is counted
# as unknown (a provider extension or a newer protocol), never dropped silently.
KNOWN_SERVER_EVENTS = frozenset(
    {
        "error",
        "session.created",
        "session.updated",
        "transcription_session.created",
        "transcription_session.updated",
        "conversation.created",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.created",
        "response.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.text.delta",
        "response.text.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.audio_transcript.delta",
        "response.audio_transcript.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.audio.delta",
        "response.audio.done",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "rate_limits.updated",
    }
)
KNOWN_EVENTS = CLIENT_EVENTS | KNOWN_SERVER_EVENTS

# The streaming audio events (where else audio can sit: analyzer.protocols.realtime.AUDIO_PATHS).
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

# Events that set the session's configuration (audio formats, VAD): what the server confirmed,
# and what the client asked for (the server applies an update on receipt).
CONFIG_EVENTS = SESSION_CONFIG_EVENTS | {"session.update", "transcription_session.update"}

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


def dialect_of_event(event_type: str) -> str | None:
    """'beta' or 'ga' when this event type exists in only one dialect, else None."""
    if event_type in BETA_ONLY_EVENTS:
        return "beta"
    if event_type in GA_ONLY_EVENTS:
        return "ga"
    return None
