"""Shared fixtures: a fast configuration of the local realtime peer."""

from __future__ import annotations

import pytest

from analyzer.peer.server import PeerConfig

# Ten times faster than real time; delays small but non-zero so ordering stays realistic.
FAST_SPEED = 10.0


@pytest.fixture
def fast_peer_config() -> PeerConfig:
    return PeerConfig(
        first_response_delay_ms=40,
        first_audio_delay_ms=20,
        transcription_delay_ms=20,
        audio_pace=FAST_SPEED,
    )


@pytest.fixture
def fast_speed() -> float:
    """The client's speed matching :func:`fast_peer_config`."""
    return FAST_SPEED
