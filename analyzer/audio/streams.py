"""Each session's audio as two PCM16 streams, the user's and the reply's, whatever the protocol.

Built on the normalized event table (:mod:`analyzer.audio.source`): one chunk per
USER_AUDIO / REPLY_AUDIO event, its samples from the frame's ``audio`` column. G.711 is decoded;
mp3 and other undecodable chunks, and chunks recorded without samples (rt_audio=drop), are left
out. A stream's rate is that of its first decodable chunk; a chunk at another rate (a
mid-session format change, a Gemini blob whose mimeType says another rate) is resampled to it
(linear interpolation, :func:`analyzer.codecs.resample`), so ``chunk_start`` stays an index into
one array of one rate.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analyzer.audio.input_items import user_chunk_items
from analyzer.audio.source import SessionChunks, open_capture
from analyzer.codecs import alaw_samples, resample, ulaw_samples
from analyzer.formats import ALAW, PCM16, ULAW, AudioFormat

DECODABLE = frozenset({PCM16, ULAW, ALAW})


def pcm16_samples(data: memoryview | bytes, fmt: AudioFormat) -> npt.NDArray[np.int16] | None:
    """A chunk's samples at its own rate (G.711 decoded, an odd pcm16 byte left out); None for
    encodings that cannot be decoded here (mp3...)."""
    if fmt.encoding == PCM16:
        return np.frombuffer(data, dtype="<i2", count=len(data) // 2)
    if fmt.encoding == ULAW:
        return ulaw_samples(data)
    if fmt.encoding == ALAW:
        return alaw_samples(data)
    return None


@dataclass(frozen=True)
class Stream:
    """One direction of a session's audio, PCM16 mono at ``rate_hz``, chunks in arrival order.
    A stream with no decodable audio is empty, at 24000 Hz."""

    samples: npt.NDArray[np.int16]
    rate_hz: int
    chunk_start: npt.NDArray[np.int64]  # index in `samples` of each chunk's first sample
    chunk_time_s: npt.NDArray[np.float64]  # capture time the chunk's frame passed the proxy
    chunk_item: list[str | None]  # item id of each chunk (reply: its item; user: the input item)
    chunk_reply: list[str | None]  # reply id of each chunk (user stream: None)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate_hz if self.rate_hz else 0.0

    def chunk_end(self) -> npt.NDArray[np.int64]:
        """Index in ``samples`` past each chunk's last sample."""
        return np.append(self.chunk_start[1:], len(self.samples)).astype(np.int64)


@dataclass(frozen=True)
class SessionStreams:
    session_id: str
    user: Stream
    reply: Stream


def _empty(rate: int) -> Stream:
    none = np.zeros(0, dtype=np.int64)
    return Stream(np.zeros(0, dtype="<i2"), rate, none, np.zeros(0), [], [])


def build_stream(
    chunks: SessionChunks, which: Sequence[int], items: Sequence[str | None] | None = None
) -> Stream:
    """The stream of the chunks ``which`` (indexes into ``chunks``, in order); ``items``: each
    one's item id, when not the chunk's own."""
    parts: list[npt.NDArray[np.int16]] = []
    kept: list[int] = []
    kept_items: list[str | None] = []
    rate = 0
    for n, k in enumerate(which):
        fmt = chunks.formats[k]
        samples = pcm16_samples(chunks.data[k], fmt)
        if samples is None or not len(samples):
            continue
        if not rate:
            rate = fmt.sample_rate
        elif fmt.sample_rate != rate:
            samples = resample(samples, fmt.sample_rate, rate)
        parts.append(samples)
        kept.append(k)
        kept_items.append(items[n] if items is not None else chunks.item[k])
    if not parts:
        return _empty(rate or 24000)
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    return Stream(
        samples=np.concatenate(parts).astype("<i2", copy=False),
        rate_hz=rate,
        chunk_start=np.cumsum(sizes) - sizes,
        chunk_time_s=np.array([chunks.time_s[k] for k in kept], dtype=np.float64),
        chunk_item=kept_items,
        chunk_reply=[chunks.reply[k] for k in kept],
    )


def streams_of(chunks: SessionChunks) -> SessionStreams:
    """A session's two streams from its chunks."""
    user = [k for k, mine in enumerate(chunks.user) if mine]
    reply = [k for k, mine in enumerate(chunks.user) if not mine]
    return SessionStreams(
        chunks.session_id,
        build_stream(chunks, user, user_chunk_items(chunks, user)),
        build_stream(chunks, reply),
    )


def session_streams(
    paths: Sequence[Path], sessions: Collection[str] | None = None
) -> Iterator[SessionStreams]:
    """Every session's streams (of ``sessions`` only, when given), one session in memory at a
    time (a single Parquet capture is read by row group; see :mod:`analyzer.audio.source`).
    Sessions come in the order their audio ends in the file. Raises
    :class:`analyzer.reader.CaptureError`."""
    for chunks in open_capture(list(paths), sessions).sessions:
        yield streams_of(chunks)
