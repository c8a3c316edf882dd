"""Echo suspicion: the reply's audio showing up in the user's microphone (issue 18).

A client without echo cancellation sends back what its loudspeaker plays: the server then
hears its own reply as the user speaking and interrupts itself. Run beside the voice detector
(:mod:`analyzer.voice_events`, in the recorder's writer before ``rt_audio=drop``), one
:class:`EchoWatch` per session keeps the reply audio as sent (its last RING_S seconds of audio,
decimated to RATE_HZ, float32) and, for each span of user speech, cross-correlates the span's
first WINDOW_S seconds with it (numpy FFT, normalized: 1.0 is the same waveform at any gain).

The span's ``echo_score`` is the best normalized correlation over every delay the ring holds
(the reply may be played long after it passed the proxy: servers send faster than real time
and clients buffer), and ``echo_delay_ms`` where it was found: from when the matched reply
audio passed the proxy to when the user's span started (playout buffering plus the acoustic
path). A score of ECHO_SCORE or more is an echo suspect; different speech scores well below
(0.1..0.3 on the peers' voices). No reply audio before the span: no score (null).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from analyzer.voice import VoiceMark

RATE_HZ = 4000  # speech is mostly below 2 kHz: enough to match waveforms, 6x fewer samples
RING_S = 10.0  # reply audio kept (seconds of audio): a reply buffered and played that late
WINDOW_S = 1.0  # the part of a user span compared: its start (an echo is there from the start)
MIN_WINDOW_S = 0.1  # a shorter span is not compared
ECHO_SCORE = 0.5  # a normalized correlation this high is the reply's waveform, not new speech
# Reply audio quieter than this (dBFS) in a window is not compared: silence matches anything.
_FLOOR = (32768.0 * 10 ** (-55.0 / 20)) ** 2

Floats = npt.NDArray[np.float32]
Samples = npt.NDArray[np.int16]


def decimate(samples: Samples, rate_hz: int) -> Floats:
    """PCM16 at ``rate_hz`` as float32 at about RATE_HZ: the mean of each run of samples (a
    crude low-pass, enough to compare waveforms)."""
    factor = max(1, round(rate_hz / RATE_HZ))
    runs = samples[: samples.size - samples.size % factor].reshape(-1, factor)
    # Summed column by column (4x faster than a mean along rows): a run's sum is an exact
    # integer in float32 (below 2**24) whatever the order, so this is the float32 mean.
    total = runs[:, 0].astype(np.int32)
    for column in range(1, factor):
        total += runs[:, column]
    out: Floats = total.astype(np.float32) / np.float32(factor)
    return out


class AudioRing:
    """The last ``seconds`` of a stream's samples as they came (chunks kept by reference:
    nothing is converted until a span is measured), with when each chunk passed the proxy."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.rate_hz = 0
        self.pos = 0  # samples appended so far: the position of the next one
        self._chunks: deque[tuple[int, float, Samples]] = deque()  # (first position, time, data)
        self._held = 0

    def append(self, data: Samples | None, count: int, rate_hz: int, time_s: float) -> None:
        """A chunk of ``count`` samples (``data`` None: not known; what is held no longer
        joins what comes next, as audio at another rate)."""
        if data is None or rate_hz != self.rate_hz:
            self._chunks.clear()
            self._held = 0
            self.rate_hz = rate_hz
        if data is not None and data.size:
            self._chunks.append((self.pos, time_s, data))
            self._held += data.size
            while self._held - self._chunks[0][2].size >= self.seconds * rate_hz:
                self._held -= self._chunks.popleft()[2].size
        self.pos += count

    def span(self, start: int, end: int) -> Samples | None:
        """Positions ``start`` .. ``end`` if all held, else None."""
        if not self._chunks or start < self._chunks[0][0] or end > self.pos:
            return None
        return self.data()[start - self._chunks[0][0] : end - self._chunks[0][0]]

    def data(self) -> Samples:
        if not self._chunks:
            return np.zeros(0, np.int16)
        return np.concatenate([c[2] for c in self._chunks])

    def time_at(self, offset: int) -> float:
        """When the chunk holding the ``offset``-th held sample passed the proxy."""
        for first, time_s, data in self._chunks:
            if offset < first - self._chunks[0][0] + data.size:
                return time_s
        return self._chunks[-1][1]


def echo_match(user: Floats, reply: Floats) -> tuple[float, int] | None:
    """The best normalized cross-correlation of ``user`` against every window of ``reply``
    of its length (absolute value: an inverted echo is one too), and the window's offset; None
    when there is nothing to compare."""
    length = user.size
    centered = user - user.mean()
    norm = float(np.dot(centered, centered))
    if length == 0 or norm <= 0 or reply.size == 0:
        return None
    if reply.size < length:
        reply = np.concatenate([reply, np.zeros(length - reply.size, np.float32)])
    values = reply
    size = _fast_size(values.size + length - 1)
    product = np.fft.rfft(values, size) * np.conj(np.fft.rfft(centered, size))
    corr = np.fft.irfft(product, size)[: values.size - length + 1]
    squares = np.concatenate([[0.0], np.cumsum(values.astype(np.float64) ** 2)])
    energy = squares[length:] - squares[: values.size - length + 1]
    loud = energy >= _FLOOR * length
    if not loud.any():
        return None
    score = np.where(loud, np.abs(corr) / np.sqrt(np.maximum(energy, 1e-9) * norm), 0.0)
    best = int(np.argmax(score))
    return min(1.0, float(score[best])), best


def _fast_size(n: int) -> int:
    """The smallest 2^a * 3^b * 5^c at least ``n``: an FFT length pocketfft does fast (a power
    of two alone can nearly double the work)."""
    best = 1 << max(0, n - 1).bit_length()
    five = 1
    while five < best:
        three = five
        while three < best:
            size = three << max(0, (n - 1) // three).bit_length()
            best = min(best, size)
            three *= 3
        five *= 5
    return best


class EchoWatch:
    """A session's echo watch: fed its reply audio and its user audio (with the voice
    detector's marks), it scores each user span (:meth:`user_audio`)."""

    def __init__(self) -> None:
        self._reply = AudioRing(RING_S)
        self._user = AudioRing(2 * WINDOW_S)
        self._open: tuple[int, float] | None = None  # open span: (start position, start time)
        self._score: tuple[float, float] | None = None  # its (score, delay ms), once measured
        self._measured = False  # the open span was measured (a score, or none to give)

    def new_user_stream(self) -> None:
        """The user's audio starts a new clock (a new stream): positions start again at 0."""
        self._user = AudioRing(2 * WINDOW_S)
        self._open, self._score, self._measured = None, None, False

    def reply_audio(self, samples: Samples | None, rate_hz: int, time_s: float) -> None:
        """A chunk of reply audio as sent (None: not known, e.g. undecodable)."""
        self._reply.append(samples, 0 if samples is None else samples.size, rate_hz, time_s)

    def user_audio(
        self,
        samples: Samples | None,
        count: int,
        rate_hz: int,
        marks: Sequence[VoiceMark],
        time_of: Callable[[int], float | None],
    ) -> dict[int, tuple[float, float]]:
        """A chunk of user audio (``count`` samples at ``rate_hz``; ``samples`` None when not
        known) and the marks the detector found in it: (score, delay ms) of each span ending
        there, by the end mark's index in ``marks`` (spans without a score left out)."""
        self._user.append(samples, count, rate_hz, 0.0)
        window = int(WINDOW_S * rate_hz)
        out: dict[int, tuple[float, float]] = {}
        for index, mark in enumerate(marks):
            if not mark.end:
                self._open, self._score = (mark.start_sample, _when(time_of, mark)), None
                self._measured = False
                continue
            if self._open is not None and not self._measured:
                self._measure(min(mark.sample, self._open[0] + window))
            if self._score is not None:
                out[index] = self._score
            self._open, self._score, self._measured = None, None, False
        opened = self._open
        if opened is not None and not self._measured and self._user.pos >= opened[0] + window:
            self._measure(opened[0] + window)
        return out

    def _measure(self, end: int) -> None:
        assert self._open is not None
        start, start_s = self._open
        self._score, self._measured = None, True
        rate = self._user.rate_hz
        if not self._reply.rate_hz or end - start < MIN_WINDOW_S * rate:
            return  # no reply audio yet (or too short a span): nothing to compare
        user = self._user.span(start, end)
        if user is None:
            return
        reply = self._reply
        self._score = span_echo(user, rate, reply.data(), reply.rate_hz, reply.time_at, start_s)


def span_echo(
    user: Samples,
    rate_hz: int,
    reply: Samples,
    reply_rate_hz: int,
    reply_time_at: Callable[[int], float],
    start_s: float,
) -> tuple[float, float] | None:
    """A user span's (echo score, delay ms) against the reply audio held (``reply_time_at``:
    when the chunk holding a sample of it passed the proxy); None when nothing compares."""
    found = echo_match(decimate(user, rate_hz), decimate(reply, reply_rate_hz))
    if found is None:
        return None
    score, offset = found
    reply_s = reply_time_at(offset * max(1, round(reply_rate_hz / RATE_HZ)))
    return round(score, 4), round((start_s - reply_s) * 1000, 3)


def _when(time_of: Callable[[int], float | None], mark: VoiceMark) -> float:
    at = time_of(mark.start_sample)
    return float("nan") if at is None else at
