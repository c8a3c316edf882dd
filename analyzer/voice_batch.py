"""VOICE_START / VOICE_END of a whole session at once, for captures recorded without events.

Decoding an old capture (:mod:`analyzer.events`) feeds :class:`BatchVoices` every frame as the
recorder's writer feeds :class:`~analyzer.voice_events.SessionVoices` (it is that class: the
same streams, pauses and flushes), but its streams only record their chunks. :meth:`events`
then runs each stream's detector over all its audio between two flushes in one call (numpy over
the whole stretch instead of a few calls per 20 ms chunk: ~10x less CPU) and gives each mark
what the chunk-by-chunk pass gives it: the frame and place of the chunk whose audio completed
the 10 ms frame that decided it (:attr:`VoiceMark.found`), the time of the chunk holding its
sample among the stream's last chunks, and a user span's echo score, measured when the writer
measures it, against the reply audio the writer holds then (replayed through the same ring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.voice import VoiceDetector, VoiceMark, pcm16_samples
from analyzer.voice_echo import MIN_WINDOW_S, RING_S, WINDOW_S, AudioRing, span_echo
from analyzer.voice_events import (
    CHUNKS_KEPT,
    PAUSE_S,
    AudioStream,
    Event,
    SessionVoices,
    voice_event,
)

Samples = npt.NDArray[np.int16]
# A user span's echo measurement: (seq, operation, stream, its end, first sample, end sample,
# start time).
_Measure = tuple[int, int, "_Recorded", "_Found", int, int, float]
_READABLE = ("pcm16", "g711_ulaw", "g711_alaw")


@dataclass(slots=True)
class _Found:
    """A mark and where the chunk-by-chunk pass finds it: the stream's operation (chunk or
    flush) and the last chunk fed by then."""

    op: int
    chunk: int
    mark: VoiceMark
    event: Event | None = None


class _Clock:
    """A session's order of operations, shared by its streams (no reference back to them: a
    finished session's audio is freed as soon as it is dropped, not by the cycle collector)."""

    def __init__(self) -> None:
        self.seq = 0  # operations so far, all streams: the writer's order
        self.row = 0  # the frame being fed
        self.replies: list[tuple[int, bytes | None, str, int, float]] = []  # the reply audio


class _Recorded:
    """A stream whose chunks are kept to be analyzed at once (stands for ``ChunkStream``)."""

    def __init__(
        self, clock: _Clock, role: str, fmt: tuple[str, int], base_ms: float, reply_id: Any
    ) -> None:
        self.clock, self.role, self.reply_id, self.base_ms = clock, role, reply_id, base_ms
        self.encoding, self.rate_hz = fmt
        self.width = 2 if self.encoding == "pcm16" else 1  # bytes a sample
        self.readable = self.encoding in _READABLE
        # Each chunk and flush in order: (seq, row, audio, samples, time); a flush has -1
        # samples. One tuple a chunk: what the writer's loop costs here, nothing more.
        self.ops: list[tuple[int, int, bytes | None, int, float]] = []
        self.ends = np.zeros(0, np.int64)  # the clock after each chunk
        self.op_last = self.ends  # the last chunk fed by each operation (-1: none yet)
        self.last_unknown = self.ends  # the last chunk of unknown audio up to each chunk
        self.segments: list[tuple[int, Samples]] = []  # (first position, samples) analyzed

    def chunk(self, audio: bytes | None, size: int, time_s: float) -> list[Event]:
        clock = self.clock
        clock.seq += 1
        if not self.readable:
            audio = None
        self.ops.append((clock.seq, clock.row, audio, size // self.width, time_s))
        if self.role != "user":
            clock.replies.append((clock.seq, audio, self.encoding, self.rate_hz, time_s))
        return []

    def flush(self) -> list[Event]:
        self.clock.seq += 1
        self.ops.append((self.clock.seq, self.clock.row, None, -1, 0.0))
        return []

    def detect(self) -> list[_Found]:
        """The stream's marks, found as the writer's detector finds them chunk by chunk: its
        chunks fed at once between the points where the writer's detector flushes (a flush, a
        pause, audio not known)."""
        counts = np.asarray([op[3] for op in self.ops], np.int64)
        is_chunk = counts >= 0
        self.chunk_op = np.flatnonzero(is_chunk)
        self.audio = [self.ops[op][2] for op in self.chunk_op.tolist()]
        self.counts = counts[is_chunk]
        self.times = np.asarray([self.ops[op][4] for op in self.chunk_op.tolist()], np.float64)
        self.ends = np.cumsum(self.counts)
        chunk_of_op = np.cumsum(is_chunk) - 1  # the last chunk fed by each operation
        self.op_last = chunk_of_op
        unknown = np.asarray([a is None for a in self.audio], bool)
        index = np.arange(unknown.size)
        self.last_unknown = np.maximum.accumulate(np.where(unknown, index, -1))
        paused = np.zeros(unknown.size, bool)
        paused[1:] = self.times[1:] - self.times[:-1] > PAUSE_S
        stops = ~is_chunk
        stops[self.chunk_op] = paused | unknown
        detector = VoiceDetector(self.rate_hz)
        found: list[_Found] = []
        begin = 0  # the first chunk not fed yet
        for op in np.flatnonzero(stops).tolist():
            chunk = int(chunk_of_op[op])
            if counts[op] < 0:  # a flush: after the chunks before it
                found += self._feed(detector, begin, chunk + 1)
                found += [_Found(op, chunk, m) for m in detector.flush()]
                begin = chunk + 1
                continue
            found += self._feed(detector, begin, chunk)
            if paused[chunk]:  # the stream paused before this chunk: the writer flushed
                found += [_Found(op, chunk, m) for m in detector.flush()]
            begin = chunk
            if unknown[chunk]:
                found += [_Found(op, chunk, m) for m in detector.skip(int(self.counts[chunk]))]
                begin = chunk + 1
        found += self._feed(detector, begin, len(self.audio))  # a session's end flushes nothing
        return found

    def _feed(self, detector: VoiceDetector, first: int, stop: int) -> list[_Found]:
        """Chunks ``first`` .. ``stop - 1`` fed at once; each mark in the chunk whose audio
        completed the frame that decided it, as the writer finds it."""
        if stop <= first:
            return []
        chunks = [a or b"" for a in self.audio[first:stop]]
        if self.width == 2 and any(len(c) % 2 for c in chunks):  # a chunk's odd byte dropped
            chunks = [c[: len(c) - len(c) % 2] for c in chunks]
        samples = pcm16_samples(b"".join(chunks), self.encoding)
        assert samples is not None
        self.segments.append((detector.fed, samples))
        out = []
        for mark in detector.feed(samples):
            chunk = first + int(np.searchsorted(self.ends[first:stop], mark.found))
            out.append(_Found(int(self.chunk_op[chunk]), chunk, mark))
        return out

    def time_of(self, sample: int, chunk: int) -> float | None:
        """``ChunkStream._time_of`` after ``chunk``: the first of the last chunks kept that holds
        ``sample``, else the last chunk."""
        if chunk < 0:
            return None
        at = int(np.searchsorted(self.ends, sample, side="right"))
        return float(self.times[min(max(at, chunk - CHUNKS_KEPT + 1), chunk)])

    def samples(self, start: int, end: int) -> Samples:
        """The stream's known samples ``start`` .. ``end`` (within one stretch of them)."""
        parts = [
            data[max(0, start - at) : max(0, end - at)]
            for at, data in self.segments
            if at < end and at + data.size > start
        ]
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def held_from(self, op: int) -> int | None:
        """The first position the user's echo ring (``EchoWatch._user``) holds after ``op``:
        from the latest unknown audio on, the shortest run of the last chunks holding at least
        two windows (``AudioRing.append``), None when it holds nothing."""
        last = int(self.op_last[op])
        if last < 0:
            return None
        lost = int(self.last_unknown[last])  # the ring is emptied by unknown audio
        base = int(self.ends[lost]) if lost >= 0 else 0
        if int(self.ends[last]) == base:
            return None
        limit = 2 * WINDOW_S * self.rate_hz
        first = max(lost + 1, int(np.searchsorted(self.ends, self.ends[last] - limit, "right")))
        return int(self.ends[first] - self.counts[first])

    def passing(self, first: int, stop: int, sample: int) -> int:
        """The first operation of ``first`` .. ``stop - 1`` after which the clock is at
        ``sample`` or later (``stop`` if none): the clock only moves on."""
        last = self.op_last[first:stop]
        clock = np.where(last >= 0, self.ends[np.maximum(last, 0)], 0)
        return first + int(np.searchsorted(clock, sample))


class BatchVoices(SessionVoices):
    """A session's voice events found at once: fed each frame as ``SessionVoices`` (with the
    frame's row), its events come out at the end (:meth:`events`)."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[_Recorded] = []
        self.clock = _Clock()

    def stream(self, role: str, fmt: tuple[str, int], base_ms: float, reply_id: Any) -> AudioStream:
        self.streams.append(_Recorded(self.clock, role, fmt, base_ms, reply_id))
        return self.streams[-1]

    def feed_row(self, row: int, time_s: float, events: list[Event], audio: bytes | None) -> None:
        self.clock.row = row
        self.feed(time_s, events, audio)

    def events(self) -> list[tuple[int, int, int, Event]]:
        """(row, seq, place, event) of each voice event: its frame, and its order there."""
        out: list[tuple[int, int, int, Event]] = []
        scores: list[_Measure] = []
        for stream in self.streams:
            found = stream.detect()
            starts: dict[int, _Found] = {}
            for place, item in enumerate(found):
                mark = item.mark
                at_s = stream.time_of(mark.sample - 1 if mark.end else mark.sample, item.chunk)
                item.event = voice_event(stream, mark, at_s, None)
                seq, row = stream.ops[item.op][:2]
                out.append((row, seq, place, item.event))
                if stream.role != "user":
                    continue
                if not mark.end:
                    starts[mark.start_sample] = item
                elif mark.start_sample in starts:
                    scores.append(_measure(stream, starts[mark.start_sample], item))
        self._score(scores)
        return out

    def _score(self, scores: list[_Measure]) -> None:
        """Echo scores, in the order the writer measures them, against its reply ring then."""
        ring = AudioRing(RING_S)
        replies = iter(self.clock.replies)
        pending = next(replies, None)
        for seq, op, stream, end, start, stop, start_s in sorted(scores, key=lambda s: s[0]):
            while pending is not None and pending[0] < seq:
                _, audio, encoding, rate, time_s = pending
                data = pcm16_samples(audio, encoding) if audio is not None else None
                ring.append(data, 0 if data is None else data.size, rate, time_s)
                pending = next(replies, None)
            if not ring.rate_hz or stop - start < MIN_WINDOW_S * stream.rate_hz:
                continue
            held = stream.held_from(op)
            if held is None or start < held:
                continue
            user = stream.samples(start, stop)
            echo = span_echo(user, stream.rate_hz, ring.data(), ring.rate_hz, ring.time_at, start_s)
            if echo is not None and end.event is not None:
                end.event["echo_score"], end.event["echo_delay_ms"] = echo


def _measure(stream: _Recorded, start: _Found, end: _Found) -> _Measure:
    """When the writer's echo watch measures a user span (``EchoWatch.user_audio``): at the
    first operation from its start's on where the clock passed a window past its start, or at
    its end; and what."""
    first = start.mark.start_sample
    window = int(WINDOW_S * stream.rate_hz)
    op, stop = end.op, min(end.mark.sample, first + window)
    passed = stream.passing(start.op, end.op, first + window)
    if passed < end.op:
        op, stop = passed, first + window
    at_s = start.event["at_s"] if start.event is not None else None
    start_s = float("nan") if at_s is None else float(at_s)
    return stream.ops[op][0], op, stream, end, first, stop, start_s
