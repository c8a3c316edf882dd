"""A session as one stereo recording on the capture's timeline: user left, assistant right."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzer.audio.chunks import AudioChunk, Chunks, chunks_of
from analyzer.audio.model import DECODABLE, BuiltSession, ItemAudio, ItemParts, SessionAudio
from analyzer.codecs import (
    alaw_resampled,
    alaw_samples,
    resample,
    resampled_count,
    ulaw_resampled,
    ulaw_samples,
)
from analyzer.formats import ALAW, PCM16, ULAW, AudioFormat

STEREO_RATE_HZ = 24000
# A user append that arrives less than this after the previous one ended plays right after it:
# a microphone streams without gaps, so a late frame is network jitter, not silence.
USER_JITTER_S = 0.2
# Deltas closer than this to the previous one's end play right after it (float noise, no stall).
ASSISTANT_GAP_S = 0.001
# Chunks looked at in one go when following a run (doubled while the run goes on).
_WINDOW = 64


@dataclass(frozen=True, slots=True)
class _Run:
    """Chunks ``first`` to ``end`` play back to back from ``start`` (in output samples)."""

    start: int
    format: AudioFormat
    first: int
    end: int


def _playable(chunks: Chunks) -> Chunks:
    """The chunks that can be mixed (decodable, not empty once an odd pcm16 byte is cut)."""
    formats = chunks.formats
    usable = np.array([f.encoding in DECODABLE for f in formats] + [False], dtype=np.bool_)
    pcm16 = np.array([f.encoding == PCM16 for f in formats] + [False], dtype=np.bool_)
    size = chunks.sizes
    size = np.where(pcm16[chunks.fmt], size - size % 2, size)
    keep = usable[chunks.fmt] & (size > 0)
    playable = chunks.take(keep)
    playable.end = playable.start + size[keep]
    return playable


class _Layout:
    """Lays chunks out in order: each starts when it arrived, but never before the previous one
    ended (or right at that end when it arrived within the tolerance of it). The same float
    arithmetic as a chunk-by-chunk loop, done a window of chunks at a time."""

    def __init__(self, chunks: Chunks, start_s: float, rate: int, tolerance_s: float) -> None:
        self.chunks = chunks
        rates = np.array([f.sample_rate for f in chunks.formats], dtype=np.int64)
        widths = np.array([f.bytes_per_sample for f in chunks.formats], dtype=np.int64)
        self.arrival = np.maximum(0.0, (chunks.time_s - start_s) * rate)
        # output samples each chunk lasts: its samples * rate / its rate, as Python divides
        samples = chunks.sizes // widths[chunks.fmt]
        self.advance = (samples * rate) / rates[chunks.fmt]
        self.tolerance = tolerance_s * rate
        # a run never goes on past a change of format
        changes = np.flatnonzero(chunks.fmt[1:] != chunks.fmt[:-1]) + 1
        self.next_change = [*changes.tolist(), len(chunks)]

    def runs(self) -> list[_Run]:
        runs: list[_Run] = []
        end = 0.0  # where the previous chunk ends, in output samples
        first = change = 0
        while first < len(self.chunks):
            while self.next_change[change] <= first:
                change += 1
            start = max(float(self.arrival[first]), end)
            next_first, end = self._follow(first, start, self.next_change[change])
            fmt = self.chunks.formats[int(self.chunks.fmt[first])]
            runs.append(_Run(round(start), fmt, first, next_first))
            first = next_first
        return runs

    def _follow(self, first: int, start: float, limit: int) -> tuple[int, float]:
        """Where the run that starts with chunk ``first`` at ``start`` stops (at ``limit``, or
        at the first chunk that arrived late), and the end of its last chunk."""
        end = start + float(self.advance[first])
        at, window = first + 1, _WINDOW
        while at < limit:
            stop = min(limit, at + window)
            # ends[m]: the end of the run before chunk at + m; cumsum adds left to right
            ends = np.empty(stop - at + 1)
            ends[0] = end
            ends[1:] = self.advance[at:stop]
            np.cumsum(ends, out=ends)
            late = self.arrival[at:stop] > ends[:-1] + self.tolerance
            m = int(late.argmax())
            if late[m]:
                return at + m, float(ends[m])
            end = float(ends[-1])
            at, window = stop, window * 2
        return limit, end


def _decode(data: memoryview | bytes, fmt: AudioFormat) -> npt.NDArray[np.int16]:
    if fmt.encoding == ULAW:
        return ulaw_samples(data)
    if fmt.encoding == ALAW:
        return alaw_samples(data)
    return np.frombuffer(data, dtype="<i2")


def _write_samples(
    data: memoryview | bytes, fmt: AudioFormat, rate: int, out: npt.NDArray[np.int16]
) -> None:
    """``data``'s samples at ``rate`` into ``out`` (G.711 decoded and resampled at once)."""
    if fmt.sample_rate == rate:
        out[:] = _decode(data, fmt)
    elif fmt.encoding == ULAW:
        ulaw_resampled(data, fmt.sample_rate, rate, out)
    elif fmt.encoding == ALAW:
        alaw_resampled(data, fmt.sample_rate, rate, out)
    else:
        resample(_decode(data, fmt), fmt.sample_rate, rate, out)


@dataclass(frozen=True, slots=True)
class _Placed:
    """A run's bytes and where its samples go, at the output rate."""

    start: int
    format: AudioFormat
    data: list[memoryview]
    length: int  # in output samples

    def write(self, channel: npt.NDArray[np.int16], rate: int) -> None:
        """Put the run's samples in their place in one channel of the mix."""
        data = self.data[0] if len(self.data) == 1 else b"".join(self.data)
        _write_samples(data, self.format, rate, channel[self.start : self.start + self.length])


def _placed(chunks: Chunks, start_s: float, rate: int, tolerance_s: float) -> list[_Placed]:
    playable = _playable(chunks)
    runs = _Layout(playable, start_s, rate, tolerance_s).runs()
    if not runs:
        return []
    bounds = [run.first for run in runs] + [len(playable)]
    sizes = np.add.reduceat(playable.sizes, bounds[:-1]).tolist()
    data = playable.segments_each(bounds)
    placed = []
    for run, size, views in zip(runs, sizes, data, strict=True):
        fmt = run.format
        length = resampled_count(size // fmt.bytes_per_sample, fmt.sample_rate, rate)
        placed.append(_Placed(run.start, fmt, views, length))
    return placed


def _heard(items: Sequence[ItemAudio]) -> Iterator[AudioChunk]:
    """The assistant's deltas as the user heard them: cut where the client truncated."""
    for item in items:
        if item.role != "assistant" or item.format.encoding not in DECODABLE:
            continue
        limit = _played_bytes(item, len(item.raw))
        raw = memoryview(item.raw)
        ends = [offset for _, offset in item.arrivals[1:]] + [len(item.raw)]
        for (time_s, offset), end in zip(item.arrivals, ends, strict=True):
            if offset >= limit:
                break
            yield AudioChunk(time_s, item.format, raw[offset : min(end, limit)])


def _heard_parts(items: Sequence[ItemParts]) -> Chunks:
    """:func:`_heard` of items as read (an item's chunks are its ``raw``, in order), for all
    items at once."""
    parts = [p for p in items if p.role == "assistant" and p.format.encoding in DECODABLE]
    if not parts:
        return Chunks.empty()
    chunks = Chunks.concat([p.chunks for p in parts])
    counts = [len(p.chunks) for p in parts]  # an item has one chunk or more
    firsts = np.cumsum([0, *counts[:-1]])
    sizes = chunks.sizes
    totals = np.add.reduceat(sizes, firsts).tolist()
    limits = [_played_bytes(p, total) for p, total in zip(parts, totals, strict=True)]
    limit = np.repeat(np.array(limits, dtype=np.int64), counts)
    before = np.cumsum(sizes) - sizes
    offset = before - np.repeat(before[firsts], counts)  # where each chunk starts in its item
    played = offset < limit
    heard = chunks.take(played)
    heard.end = heard.start + np.minimum(sizes, limit - offset)[played]
    return heard


def _played_bytes(item: ItemParts | ItemAudio, size: int) -> int:
    """How many of the item's ``size`` bytes the user heard (all but what a truncate cut)."""
    if item.played_ms is None:
        return size
    fmt = item.format
    samples = round(item.played_ms * fmt.sample_rate / 1000.0)
    return min(size, max(0, samples * fmt.bytes_per_sample))


def stereo(user: Chunks, heard: Chunks, start_s: float, sample_rate: int) -> npt.NDArray[np.int16]:
    """:func:`session_stereo` of the user's appends and the assistant's deltas as heard."""
    channels = (
        _placed(user, start_s, sample_rate, USER_JITTER_S),
        _placed(heard, start_s, sample_rate, ASSISTANT_GAP_S),
    )
    frames = max((p.start + p.length for runs in channels for p in runs), default=0)
    mix = np.zeros((frames, 2), dtype="<i2")
    for channel, runs in enumerate(channels):
        for placed in runs:
            placed.write(mix[:, channel], sample_rate)
    return mix


def built_stereo(session: BuiltSession, sample_rate: int = STEREO_RATE_HZ) -> npt.NDArray[np.int16]:
    """:func:`session_stereo` of a session as read (the same samples, without its copy)."""
    return stereo(session.user, _heard_parts(session.items), session.start_s, sample_rate)


def session_stereo(
    session: SessionAudio, sample_rate: int = STEREO_RATE_HZ
) -> npt.NDArray[np.int16]:
    """The session as 16-bit stereo samples, shape (frames, 2), time 0 at the session start.

    Left: every append of the user's audio (cleared ones too), each placed at its capture time.
    Right: the assistant's deltas from the capture time of each item's first delta, played back
    in order (a delta starts when it arrived or when the previous one ended, whichever is
    later), cut at the client's ``conversation.item.truncate`` ``audio_end_ms``. G.711 is
    decoded and other rates resampled to ``sample_rate``; mp3 is left out."""
    user = chunks_of(session.user_stream)
    return stereo(user, Chunks.of(_heard(session.items)), session.start_s, sample_rate)
