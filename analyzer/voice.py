"""Speech found in the audio itself: an energy voice-activity detector, run chunk by chunk.

Deterministic, numpy only, no model. The audio is cut into 10 ms analysis frames (FRAME_MS);
a frame is *voiced* when its RMS level is at least VOICE_DBFS (dB relative to PCM16 full
scale, 32768). A span of speech runs from the first voiced frame to the last voiced frame
before HANGOVER_MS of unvoiced audio; a span shorter than MIN_SPEECH_MS (a click, a breath)
is not speech. Positions are on the stream's own audio clock (samples fed so far), so a
span's start is exact to the frame and does not depend on how the audio was chunked.

A span's levels (VOICE_END) are over its samples from start to end: RMS and peak in dBFS and
the share of samples at full scale (|x| >= CLIP_LEVEL: a clipping microphone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_MS = 10
VOICE_DBFS = -40.0  # speech is well above (-30..-10 dBFS); room noise and silence below
HANGOVER_MS = 200  # unvoiced audio that ends a span (pauses inside a sentence are shorter)
MIN_SPEECH_MS = 60  # a voiced run shorter than this is not speech
CLIP_LEVEL = 32767  # a PCM16 sample at (or beyond, for -32768) full scale
FULL_SCALE = 32768.0
SILENT_DBFS = -120.0  # the level reported for digital silence (log of zero)


def dbfs(value: float) -> float:
    """An amplitude (RMS or peak, in PCM16 units) in dB relative to full scale."""
    return 20.0 * math.log10(value / FULL_SCALE) if value > 0 else SILENT_DBFS


@dataclass(frozen=True, slots=True)
class VoiceMark:
    """Speech starting (``end`` False) or ending at ``sample`` on the stream's clock. An end
    carries the span: its first sample and its levels."""

    end: bool
    sample: int
    start_sample: int
    rms_dbfs: float | None = None
    peak_dbfs: float | None = None
    clipped_share: float | None = None


_VOICED_POWER = (FULL_SCALE * 10 ** (VOICE_DBFS / 20)) ** 2  # mean square of a voiced frame
_Sums = tuple[float, float, float, float]  # sum of squares, samples, peak, clipped samples
_EMPTY: _Sums = (0.0, 0.0, 0.0, 0.0)


class VoiceDetector:
    """One stream's detector; :meth:`feed` PCM16 samples in order, :meth:`flush` at its end."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self.frame = max(1, rate_hz * FRAME_MS // 1000)
        self.hangover = rate_hz * HANGOVER_MS // 1000  # in samples, as every position here
        self.min_speech = rate_hz * MIN_SPEECH_MS // 1000
        self.position = 0  # samples analyzed: the clock of the marks
        self._left = np.zeros(0, np.int16)  # samples short of a whole frame
        self._start: int | None = None  # where the open span's first voiced frame starts
        self._last_end = 0  # where its last voiced frame ends
        self._started = False  # the open span is long enough: its start was reported
        # The open span's sums up to its last voiced frame, and of the unvoiced frames since.
        self._span = _EMPTY
        self._gap = _EMPTY

    @property
    def fed(self) -> int:
        """Samples fed so far (analyzed or waiting for a whole frame)."""
        return self.position + self._left.size

    def ms(self, sample: int) -> float:
        """A position on the clock in milliseconds."""
        return sample * 1000.0 / self.rate_hz

    def feed(self, samples: npt.NDArray[np.int16]) -> list[VoiceMark]:
        data = np.concatenate([self._left, samples]) if self._left.size else samples
        whole = data.size - data.size % self.frame
        self._left = data[whole:].copy()
        if whole == 0:
            return []
        return self._frames(data[:whole].reshape(-1, self.frame))

    def skip(self, count: int) -> list[VoiceMark]:
        """Samples whose audio is not known (dropped, undecodable): any open span ends before
        them, and the clock moves on."""
        marks = self.flush()
        self.position += count
        return marks

    def flush(self) -> list[VoiceMark]:
        """The stream ended (or pauses): the samples short of a frame are analyzed as one, and
        an open span ends at its last voiced frame."""
        marks: list[VoiceMark] = []
        if self._left.size:
            left, self._left = self._left, np.zeros(0, np.int16)
            marks = self._frames(left.reshape(1, -1))
        marks.extend(self._close())
        return marks

    def _frames(self, samples: npt.NDArray[np.int16]) -> list[VoiceMark]:
        count, size = samples.shape
        values = samples.astype(np.float64)
        energies = np.einsum("ij,ij->i", values, values)
        voiced = energies >= _VOICED_POWER * size
        marks: list[VoiceMark] = []
        if self._start is None and not voiced.any():  # silence: nothing to follow
            self.position += count * size
            return marks
        # Plain Python numbers for the loop (numpy scalars cost more than they save here).
        squares = energies.tolist()
        magnitude = np.abs(values, out=values)
        peaks = magnitude.max(axis=1).tolist()
        clipped = [0] * count  # counted only where some sample reaches full scale (rare)
        if max(peaks) >= CLIP_LEVEL:
            clipped = (magnitude >= CLIP_LEVEL).sum(axis=1).tolist()
        for i, is_voiced in enumerate(voiced.tolist()):
            at = self.position + i * size
            sums = (squares[i], float(size), peaks[i], float(clipped[i]))
            if is_voiced:
                if self._start is None:
                    self._start, self._span, self._gap = at, _EMPTY, _EMPTY
                elif self._gap[1]:
                    self._span = _merge(self._span, self._gap)
                    self._gap = _EMPTY
                self._span = _merge(self._span, sums)
                self._last_end = at + size
                if not self._started and self._last_end - self._start >= self.min_speech:
                    self._started = True
                    marks.append(VoiceMark(False, self._start, self._start))
            elif self._start is not None:
                self._gap = _merge(self._gap, sums)
                if at + size - self._last_end >= self.hangover:
                    marks.extend(self._close())
        self.position += count * size
        return marks

    def _close(self) -> list[VoiceMark]:
        """End the open span (reported only if it was long enough to be speech)."""
        if self._start is None:
            return []
        start, started, span = self._start, self._started, self._span
        self._start, self._started, self._span, self._gap = None, False, _EMPTY, _EMPTY
        if not started:
            return []
        squares, count, peak, clipped = span
        return [
            VoiceMark(
                True,
                self._last_end,
                start,
                rms_dbfs=round(dbfs(math.sqrt(squares / count)), 2),
                peak_dbfs=round(dbfs(peak), 2),
                clipped_share=round(clipped / count, 6),
            )
        ]


def _merge(a: _Sums, b: _Sums) -> _Sums:
    """Two stretches' sums as one: squares, samples and clipped samples add, peaks the max."""
    return (a[0] + b[0], a[1] + b[1], max(a[2], b[2]), a[3] + b[3])


def pcm16_samples(audio: bytes, encoding: str) -> npt.NDArray[np.int16] | None:
    """A chunk of audio in ``encoding`` (pcm16, g711_ulaw, g711_alaw) as PCM16 samples; None
    for encodings the detector cannot read (compressed audio)."""
    if encoding == "pcm16":
        return np.frombuffer(audio[: len(audio) - len(audio) % 2], "<i2")
    if encoding in ("g711_ulaw", "g711_alaw"):
        from analyzer.codecs import alaw_samples, ulaw_samples

        return ulaw_samples(audio) if encoding == "g711_ulaw" else alaw_samples(audio)
    return None
