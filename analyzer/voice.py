"""Speech found in the audio itself: an energy voice-activity detector, fed in any chunks.

Deterministic, numpy only, no model. The audio is cut into 10 ms analysis frames (FRAME_MS);
a frame is *voiced* when its RMS level is at least VOICE_DBFS (dB relative to PCM16 full
scale, 32768). A span of speech runs from the first voiced frame to the last voiced frame
before HANGOVER_MS of unvoiced audio; a span shorter than MIN_SPEECH_MS (a click, a breath)
is not speech. Positions are on the stream's own audio clock (samples fed so far), so a
span's start is exact to the frame and does not depend on how the audio was chunked.

A span's levels (VOICE_END) are over its samples from start to end: RMS and peak in dBFS and
the share of samples at full scale (|x| >= CLIP_LEVEL: a clipping microphone).

One core, :func:`track` over a block of whole frames (energies in one numpy pass, one step per
run of voiced frames), serves the recorder's writer (a block per 20 ms chunk) and the decoding
of old captures (a block per 4096 frames of a whole stream, ``analyzer.voice_batch``) and
``convert`` (a block per batch of frames, ``analyzer.voice_deferred``): the same marks either
way, which ``tests/test_voice_batch.py`` and ``tests/test_voice_deferred.py`` check exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    carries the span: its first sample and its levels. ``found``: the clock (samples analyzed)
    when the detector found the mark, which tells a caller that fed a whole stream at once in
    which chunk a chunk-by-chunk detector would have found it."""

    end: bool
    sample: int
    start_sample: int
    rms_dbfs: float | None = None
    peak_dbfs: float | None = None
    clipped_share: float | None = None
    found: int = field(default=0, compare=False)


_VOICED_POWER = (FULL_SCALE * 10 ** (VOICE_DBFS / 20)) ** 2  # mean square of a voiced frame
# Sums of a stretch of frames: squares, samples, peak, clipped samples. Frame energies are sums
# of squared PCM16 values, exact integers in float64 (below 2**53): any order of adding them
# gives the same sum, so a stream fed in chunks of any size measures the same levels.
_Sums = tuple[float, float, float, float]
_EMPTY: _Sums = (0.0, 0.0, 0.0, 0.0)


class _Block:
    """Whole frames of a stream (one row each, the last possibly short at a flush), their
    energies and whether each is voiced: what :func:`track` follows spans over."""

    def __init__(self, position: int, frames: npt.NDArray[np.int16]) -> None:
        count, size = frames.shape
        self.position, self.frames = position, frames
        values = frames.astype(np.float64)
        self.energies = np.einsum("ij,ij->i", values, values)
        self.voiced = self.energies >= _VOICED_POWER * size
        self.count, self.size = count, size

    def end(self, index: int) -> int:
        """Where frame ``index`` ends on the clock."""
        return self.position + (index + 1) * self.size

    def reaching(self, sample: int, first: int) -> int:
        """The first frame from ``first`` on that ends at or after ``sample``."""
        return max(first, -(-(sample - self.position) // self.size) - 1)

    def runs(self) -> list[tuple[int, int]]:
        """The voiced frames as runs [first, stop)."""
        if self.count <= 16:  # a chunk's few frames: plain Python is cheaper than numpy calls
            flags = self.voiced.tolist()
            return [
                (i, next((j for j in range(i, self.count) if not flags[j]), self.count))
                for i in range(self.count)
                if flags[i] and (i == 0 or not flags[i - 1])
            ]
        edges = np.diff(self.voiced.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts, stops = np.flatnonzero(edges > 0).tolist(), np.flatnonzero(edges < 0).tolist()
        return list(zip(starts, stops, strict=True))

    def sums(self, first: int, stop: int) -> _Sums:
        """Sums of frames ``first`` .. ``stop - 1``."""
        if stop <= first:
            return _EMPTY
        rows = self.frames[first:stop]
        peak = float(max(int(rows.max()), -int(rows.min())))
        clipped = 0
        if peak >= CLIP_LEVEL:  # counted only where some sample reaches full scale (rare)
            clipped = int(np.count_nonzero((rows >= CLIP_LEVEL) | (rows <= -CLIP_LEVEL)))
        squares = float(self.energies[first:stop].sum())
        return (squares, float(rows.size), peak, float(clipped))


@dataclass(slots=True)
class _Open:
    """The span still open after a block: its first voiced sample, the end of its last voiced
    frame, whether its start was reported, its sums up to that end and of the unvoiced frames
    since."""

    start: int
    last_end: int
    started: bool
    span: _Sums
    gap: _Sums


def track(
    block: _Block, span: _Open | None, hangover: int, min_speech: int
) -> tuple[list[VoiceMark], _Open | None]:
    """The marks found in ``block`` (``span``: the span open before it), and the span left open.

    One step per run of voiced frames, whatever the block's length, so one call over a whole
    stream and one call per chunk find the same marks. Voiced frames are one span while the
    unvoiced audio between two of them is shorter than ``hangover``; a span starts (is
    reported) at its first voiced frame reaching ``min_speech`` from its start, and closes at
    the first unvoiced frame ending ``hangover`` after its last voiced frame.
    """
    marks: list[VoiceMark] = []
    begin, last = 0, -1  # the span's first frame in this block, its last voiced one here
    for first, stop in block.runs():
        if span is not None and first > last + 1:  # unvoiced frames since its last voiced one
            closing = block.reaching(span.last_end + hangover, last + 1)
            if closing < first:
                marks.extend(_end(_with_block(span, block, begin, last), block.end(closing)))
                span = None
        if span is None:
            span = _Open(block.position + first * block.size, 0, False, _EMPTY, _EMPTY)
            begin = first
        last = stop - 1
        span.last_end = block.end(last)
        if not span.started:
            reach = block.reaching(span.start + min_speech, first)
            if reach < stop:
                span.started = True
                marks.append(VoiceMark(False, span.start, span.start, found=block.end(reach)))
    if span is None:
        return marks, None
    closing = block.reaching(span.last_end + hangover, last + 1)
    if closing < block.count:
        marks.extend(_end(_with_block(span, block, begin, last), block.end(closing)))
        return marks, None
    if last < 0:  # no speech in the block: all of it is the gap after the span's last voice
        span.gap = _merge(span.gap, block.sums(0, block.count))
        return marks, span
    span = _with_block(span, block, begin, last)
    span.gap = block.sums(last + 1, block.count)
    return marks, span


def _with_block(span: _Open, block: _Block, begin: int, last: int) -> _Open:
    """The span's sums with its frames ``begin`` .. ``last`` of the block (its gap before them
    joined to it); as it was if none."""
    if last < 0:
        return span
    sums = _merge(_merge(span.span, span.gap), block.sums(begin, last + 1))
    return _Open(span.start, span.last_end, span.started, sums, _EMPTY)


def _end(span: _Open, found: int) -> tuple[VoiceMark, ...]:
    if not span.started:
        return ()
    squares, count, peak, clipped = span.span
    return (
        VoiceMark(
            True,
            span.last_end,
            span.start,
            rms_dbfs=round(dbfs(math.sqrt(squares / count)), 2),
            peak_dbfs=round(dbfs(peak), 2),
            clipped_share=round(clipped / count, 6),
            found=found,
        ),
    )


class VoiceDetector:
    """One stream's detector; :meth:`feed` PCM16 samples in order, :meth:`flush` at its end.
    Fed chunk by chunk (the recorder's writer) or a whole stream at once (decoding an old
    capture), it finds the same marks: every chunk's whole frames go through :func:`track`."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self.frame = max(1, rate_hz * FRAME_MS // 1000)
        self.hangover = rate_hz * HANGOVER_MS // 1000  # in samples, as every position here
        self.min_speech = rate_hz * MIN_SPEECH_MS // 1000
        self.position = 0  # samples analyzed: the clock of the marks
        self._left = np.zeros(0, np.int16)  # samples short of a whole frame
        self._open: _Open | None = None

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
        marks: list[VoiceMark] = []
        step = self.frame * _BLOCK_FRAMES  # bounded blocks: a long stream's energies
        for at in range(0, whole, step):
            stop = min(whole, at + step)
            marks.extend(self._frames(data[at:stop].reshape(-1, self.frame)))
        return marks

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
        if self._open is not None:
            marks.extend(_end(self._open, self.position))
            self._open = None
        return marks

    def _frames(self, samples: npt.NDArray[np.int16]) -> list[VoiceMark]:
        block = _Block(self.position, samples)
        self.position += samples.size
        if self._open is None and not block.voiced.any():  # silence: nothing to follow
            return []
        marks, self._open = track(block, self._open, self.hangover, self.min_speech)
        return marks


_BLOCK_FRAMES = 4096  # frames analyzed at once


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
