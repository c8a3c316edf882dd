"""The scripted client's microphone, with the faults issue 18 plants: a gain that clips, and
the loudspeaker heard back (echo). Works on 24 kHz PCM16, the peers' own audio."""

from __future__ import annotations

import numpy as np

from analyzer.peer.scenarios import Scenario

BYTES_PER_MS = 48  # 24 kHz PCM16


class Microphone:
    def __init__(self, scenario: Scenario) -> None:
        self.gain = scenario.mic_gain
        self.echo_gain = scenario.echo_gain
        self.echo_delay_ms = scenario.echo_delay_ms
        self._echo = bytearray()  # reply audio the microphone is still to hear

    @property
    def echoes(self) -> bool:
        return self.echo_gain > 0

    def speech(self, pcm16: bytes) -> bytes:
        """The user's speech as the microphone sends it: beyond full scale it clips."""
        if self.gain == 1.0:
            return pcm16
        louder = np.frombuffer(pcm16, "<i2").astype(np.float64) * self.gain
        return np.clip(louder, -32768, 32767).astype("<i2").tobytes()

    def heard(self, pcm16: bytes) -> None:
        """Reply audio reached the loudspeaker: the microphone hears it echo_delay_ms later."""
        if not self.echoes:
            return
        if not self._echo:
            self._echo += bytes(self.echo_delay_ms * BYTES_PER_MS)
        self._echo += pcm16

    def queued_ms(self) -> int:
        return len(self._echo) // BYTES_PER_MS

    def clear(self) -> None:
        """The loudspeaker stopped (the user speaks next): nothing more to hear."""
        self._echo.clear()

    def mix(self, pcm16: bytes) -> bytes:
        """A frame the microphone sends: what was said plus the echo due in it."""
        if not self._echo:
            return pcm16
        size = len(pcm16) - len(pcm16) % 2
        echo = bytes(self._echo[:size]).ljust(size, b"\0")
        del self._echo[:size]
        said = np.frombuffer(pcm16[:size], "<i2").astype(np.float64)
        mixed = said + np.frombuffer(echo, "<i2") * self.echo_gain
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
