"""Energy voice-activity detection on the server's audio clock (24 kHz 16-bit mono PCM)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 24000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000


def rms_threshold(threshold: float) -> float:
    """Map the API's 0..1 ``threshold`` to a frame RMS: 0.5 -> -45 dBFS, 1.0 -> -20 dBFS."""
    return float(32768 * 10 ** ((-70 + 50 * threshold) / 20))


def frame_rms(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """RMS of each whole 20 ms frame (a trailing partial frame is ignored)."""
    count = samples.size // FRAME_SAMPLES
    frames = samples[: count * FRAME_SAMPLES].astype(np.float64).reshape(count, FRAME_SAMPLES)
    return np.sqrt(np.mean(frames**2, axis=1)) if count else np.zeros(0)


def speech_span_ms(pcm16le: bytes, threshold: float = 0.5) -> tuple[int, int] | None:
    """(first voiced ms, end of last voiced frame ms) of a buffer, or None if silent."""
    voiced = np.nonzero(frame_rms(np.frombuffer(pcm16le, dtype="<i2")) > rms_threshold(threshold))
    if voiced[0].size == 0:
        return None
    return int(voiced[0][0]) * FRAME_MS, (int(voiced[0][-1]) + 1) * FRAME_MS


@dataclass(frozen=True)
class VadEvent:
    kind: str  # "started" or "stopped"
    audio_ms: int  # audio_start_ms (prefix padding included) or audio_end_ms
    speech_ms: int  # for "stopped": how long the voiced part lasted, first to last voiced frame


class EnergyVad:
    """Feed PCM as it arrives; get speech start/stop events in audio-clock milliseconds.

    Like the real server, ``audio_end_ms`` includes the ``silence_duration_ms`` waited, and
    ``audio_start_ms`` reaches back ``prefix_padding_ms`` (not before the buffer start).
    """

    def __init__(
        self, threshold: float = 0.5, prefix_padding_ms: int = 300, silence_duration_ms: int = 200
    ) -> None:
        self.rms_threshold = rms_threshold(threshold)
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.clock_ms = 0  # audio fed so far, whole frames only
        self.buffer_start_ms = 0  # audio before this was committed or cleared
        self.in_speech = False
        self._onset_ms = 0
        self._last_voiced_end_ms = 0
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, pcm16le: bytes) -> list[VadEvent]:
        samples = np.concatenate([self._pending, np.frombuffer(pcm16le, dtype="<i2")])
        whole = samples.size - samples.size % FRAME_SAMPLES
        self._pending = samples[whole:]
        events: list[VadEvent] = []
        for rms in frame_rms(samples[:whole]):
            start_ms = self.clock_ms
            self.clock_ms += FRAME_MS
            voiced = bool(rms > self.rms_threshold)
            if voiced:
                self._last_voiced_end_ms = self.clock_ms
            if voiced and not self.in_speech:
                self.in_speech = True
                self._onset_ms = start_ms
                audio_start_ms = max(self.buffer_start_ms, start_ms - self.prefix_padding_ms)
                events.append(VadEvent("started", audio_start_ms, 0))
            elif (
                self.in_speech
                and self.clock_ms - self._last_voiced_end_ms >= self.silence_duration_ms
            ):
                self.in_speech = False
                speech_ms = self._last_voiced_end_ms - self._onset_ms
                events.append(VadEvent("stopped", self.clock_ms, speech_ms))
        return events

    def reset_buffer(self) -> None:
        """The input buffer was committed or cleared: padding never reaches back before now."""
        self.buffer_start_ms = self.clock_ms
