"""A session as one stereo recording on the capture's timeline: user left, assistant right."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analyzer.audio.items import DECODABLE, AudioChunk, ItemAudio, SessionAudio, to_pcm16
from analyzer.codecs import resample_pcm16
from analyzer.formats import PCM16, AudioFormat

STEREO_RATE_HZ = 24000
# A user append that arrives less than this after the previous one ended plays right after it:
# a microphone streams without gaps, so a late frame is network jitter, not silence.
USER_JITTER_S = 0.2
# Deltas closer than this to the previous one's end play right after it (float noise, no stall).
ASSISTANT_GAP_S = 0.001


@dataclass
class _Run:
    """Chunks that play back to back from ``start`` (in output samples)."""

    start: int
    format: AudioFormat
    parts: list[memoryview | bytes] = field(default_factory=list)


def _runs(
    chunks: Iterable[AudioChunk], start_s: float, rate: int, tolerance_s: float
) -> list[_Run]:
    """Lay chunks out in order: each starts when it arrived, but never before the previous one
    ended (or right at that end when it arrived within ``tolerance_s`` of it)."""
    runs: list[_Run] = []
    run: _Run | None = None
    end = 0.0  # where the previous chunk ends, in output samples
    tolerance = tolerance_s * rate
    fmt: AudioFormat | None = None  # the last chunk's format and what follows from it
    usable = pcm16 = False
    width = sample_rate = 1
    for chunk in chunks:
        if chunk.format is not fmt:
            fmt = chunk.format
            usable = fmt.encoding in DECODABLE
            pcm16 = fmt.encoding == PCM16
            width, sample_rate = fmt.bytes_per_sample, fmt.sample_rate
        data = chunk.data
        if pcm16 and len(data) % 2:
            data = data[:-1]
        if not data or not usable:
            continue
        arrival = max(0.0, (chunk.time_s - start_s) * rate)
        if (
            run is not None
            and (run.format is fmt or run.format == fmt)
            and arrival <= end + tolerance
        ):
            run.parts.append(data)
        else:
            start = max(arrival, end)
            run = _Run(round(start), fmt, [data])
            runs.append(run)
            end = start
        end += len(data) // width * rate / sample_rate
    return runs


def _samples(run: _Run, rate: int) -> npt.NDArray[np.int16]:
    pcm = to_pcm16(b"".join(run.parts), run.format)
    if run.format.sample_rate != rate:
        pcm = resample_pcm16(pcm, run.format.sample_rate, rate)
    return np.frombuffer(pcm, dtype="<i2")


def _heard(items: Sequence[ItemAudio]) -> Iterator[AudioChunk]:
    """The assistant's deltas as the user heard them: cut where the client truncated."""
    for item in items:
        if item.role != "assistant" or item.format.encoding not in DECODABLE:
            continue
        fmt = item.format
        limit = len(item.raw)
        if item.played_ms is not None:
            samples = round(item.played_ms * fmt.sample_rate / 1000.0)
            limit = min(limit, max(0, samples * fmt.bytes_per_sample))
        raw = memoryview(item.raw)
        ends = [offset for _, offset in item.arrivals[1:]] + [len(item.raw)]
        for (time_s, offset), end in zip(item.arrivals, ends, strict=True):
            if offset >= limit:
                break
            yield AudioChunk(time_s, fmt, raw[offset : min(end, limit)])


def session_stereo(
    session: SessionAudio, sample_rate: int = STEREO_RATE_HZ
) -> npt.NDArray[np.int16]:
    """The session as 16-bit stereo samples, shape (frames, 2), time 0 at the session start.

    Left: every append of the user's audio (cleared ones too), each placed at its capture time.
    Right: the assistant's deltas from the capture time of each item's first delta, played back
    in order (a delta starts when it arrived or when the previous one ended, whichever is
    later), cut at the client's ``conversation.item.truncate`` ``audio_end_ms``. G.711 is
    decoded and other rates resampled to ``sample_rate``; mp3 is left out."""
    channels = (
        _runs(session.user_stream, session.start_s, sample_rate, USER_JITTER_S),
        _runs(_heard(session.items), session.start_s, sample_rate, ASSISTANT_GAP_S),
    )
    placed = [[(run.start, _samples(run, sample_rate)) for run in runs] for runs in channels]
    frames = max((start + len(samples) for runs in placed for start, samples in runs), default=0)
    mix = np.zeros((frames, 2), dtype="<i2")
    for channel, runs in enumerate(placed):
        for start, samples in runs:
            mix[start : start + len(samples), channel] = samples
    return mix
