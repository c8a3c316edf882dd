"""Kept only for ``analyzer/audio/`` (being rewritten on another branch): the Realtime event
sets moved to :mod:`analyzer.protocols.realtime_events`. Import from there; delete this shim
once ``analyzer/audio/`` does."""

from analyzer.protocols.realtime_events import (
    CLIENT_AUDIO_EVENTS,
    CONFIG_EVENTS,
    ITEM_CREATED_EVENTS,
    SERVER_AUDIO_EVENTS,
    parse_event,
)

__all__ = [
    "CLIENT_AUDIO_EVENTS",
    "CONFIG_EVENTS",
    "ITEM_CREATED_EVENTS",
    "SERVER_AUDIO_EVENTS",
    "parse_event",
]
