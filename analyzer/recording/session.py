"""Per-session facts: what the handshake says, refined by the events that follow."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from analyzer.protocols import adapter_for, gemini_wire, session_event_types
from analyzer.protocols.live import is_live_path
from analyzer.protocols.realtime_events import dialect_of_event
from analyzer.recording.frames import FrameRecord
from analyzer.recording.redact import redact_headers, redact_url


def handshake_facts(
    session_id: str,
    run_id: str,
    url: str,
    request_headers: Iterable[tuple[str, str]],
    response_headers: Iterable[tuple[str, str]],
    start_s: float,
    audio_kept: bool,
) -> dict[str, Any]:
    """Session facts known when the WebSocket opens, secrets removed."""
    request_headers = list(request_headers)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    models = query.get("model") or query.get("deployment")
    model = models[0] if models else None
    beta_header = any(
        name.lower() == "openai-beta" and "realtime" in value for name, value in request_headers
    )
    return {
        "session_id": session_id,
        "run_id": run_id,
        "url": redact_url(url),
        "host": parts.hostname,
        "path": parts.path,
        "model": model,
        "dialect": _handshake_dialect(parts.path, beta_header),
        "request_headers": redact_headers(request_headers),
        "response_headers": redact_headers(response_headers),
        "start_s": start_s,
        "end_s": None,
        "close_code": None,
        "close_reason": None,
        "closed_by_client": None,
        "audio_kept": audio_kept,
    }


def _handshake_dialect(path: str, beta_header: bool) -> str | None:
    if gemini_wire.is_endpoint(path):
        return gemini_wire.DIALECT
    if is_live_path(path):
        return "live"
    return "beta" if beta_header else None


# Server event types that can name the provider's session, for any protocol.
SESSION_EVENTS = session_event_types()


def provider_session_id(facts: Mapping[str, Any], event: Any) -> str | None:
    """The provider's own id of the session a server event names (its protocol's adapter
    knows where), or None."""
    return adapter_for(facts).provider_session_id(event) if isinstance(event, dict) else None


def refine_facts(facts: dict[str, Any], rec: FrameRecord) -> None:
    """Fill model and dialect from events when the handshake did not say, and the provider's
    own session id (support asks for it) from the server event that names it."""
    if rec.event_type is None:
        return
    if (
        rec.event_type in SESSION_EVENTS
        and rec.direction == "server"
        and facts.get("provider_session_id") is None
    ):
        facts["provider_session_id"] = provider_session_id(facts, rec.event)
    if facts.get("dialect") == gemini_wire.DIALECT:
        if facts.get("model") is None and rec.event is not None:
            facts["model"] = gemini_wire.model_of(rec.event)
        return
    if facts.get("dialect") is None:
        facts["dialect"] = dialect_of_event(rec.event_type)
    started = ("session.created", "session.updated", "session.start", "session.started")
    if rec.event_type in started and rec.event is not None:
        session = rec.event.get("session")
        if isinstance(session, dict):
            if facts.get("model") is None and isinstance(session.get("model"), str):
                facts["model"] = session["model"]
            if facts.get("dialect") is None:
                if session.get("type") in ("realtime", "transcription"):
                    facts["dialect"] = "ga"
                elif "modalities" in session or "input_audio_format" in session:
                    facts["dialect"] = "beta"
