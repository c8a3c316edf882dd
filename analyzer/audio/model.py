"""What audio of a capture is made of: items, sessions, and the parts they are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analyzer.audio.chunks import AudioChunk, ChunkList, Chunks
from analyzer.audio.wav import encoded_wav_bytes
from analyzer.codecs import alaw_decode, ulaw_decode
from analyzer.formats import ALAW, MP3, PCM16, ULAW, AudioFormat

DECODABLE = frozenset({PCM16, ULAW, ALAW})


def to_pcm16(data: bytes, audio_format: AudioFormat) -> bytes:
    """16-bit PCM of ``data`` at the format's own rate (G.711 decoded; pcm16 as is)."""
    if audio_format.encoding == ULAW:
        return ulaw_decode(data)
    if audio_format.encoding == ALAW:
        return alaw_decode(data)
    if audio_format.encoding == PCM16:
        return data
    raise ValueError(f"cannot decode {audio_format.encoding} audio to PCM.")


@dataclass(slots=True)
class ItemAudio:
    """The audio of one conversation item, samples as they were on the wire."""

    session_id: str
    item_id: str
    role: str  # "user" or "assistant"
    index: int  # 1-based, in conversation order within the session
    format: AudioFormat  # of ``raw``: pcm16, g711_ulaw, g711_alaw, mp3 (or what was declared)
    raw: bytes  # the samples as sent (WAV payloads' RIFF headers stripped)
    arrivals: list[tuple[float, int]]  # (capture time_s, offset in raw) of each frame's audio
    played_ms: float | None = None  # assistant: the client's truncate audio_end_ms, if any
    audio_start_ms: float | None = None  # user, server VAD: the speech segment on the audio clock
    audio_end_ms: float | None = None

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def pcm16(self) -> bytes | None:
        """Decoded 16-bit PCM at :attr:`sample_rate` (G.711 decoded; None for mp3 and unknown
        formats). An odd trailing byte of pcm16 is left out."""
        if self.format.encoding not in DECODABLE:
            return None
        raw = self.raw
        if self.format.encoding == PCM16 and len(raw) % 2:
            raw = raw[:-1]
        return to_pcm16(raw, self.format)

    @property
    def duration_ms(self) -> float | None:
        return self.format.duration_ms(len(self.raw))

    @property
    def extension(self) -> str:
        if self.format.encoding in DECODABLE:
            return "wav"
        return "mp3" if self.format.encoding == MP3 else "bin"

    def file_bytes(self) -> bytes:
        """The item's file: a WAV holding the samples byte for byte, or the mp3 stream as is."""
        if self.format.encoding in DECODABLE:
            return encoded_wav_bytes(self.raw, self.format)
        return self.raw


@dataclass
class SessionAudio:
    session_id: str
    start_s: float  # time 0 of the session's timeline (its WebSocket opening)
    items: list[ItemAudio] = field(default_factory=list)
    # every append, cleared too (a ChunkList when read from a capture: arrays, objects on demand)
    user_stream: Sequence[AudioChunk] = field(default_factory=list)
    samples_dropped: bool = False  # recorded with rt_audio=drop: sizes known, samples not
    warnings: list[str] = field(default_factory=list)


@dataclass
class AudioCapture:
    sessions: list[SessionAudio]
    warnings: list[str]  # the reader's and the sessions'


@dataclass(slots=True)
class ItemParts:
    """An item's audio where it lies, one chunk a frame (at its arrival), all in ``format``:
    what :class:`ItemAudio` is made of, before the copy that joins it."""

    item_id: str
    role: str
    format: AudioFormat
    chunks: Chunks
    data: list[memoryview]  # the same bytes in as few views as they lie in
    played_ms: float | None = None
    audio_start_ms: float | None = None
    audio_end_ms: float | None = None

    @property
    def size(self) -> int:
        return sum(len(view) for view in self.data)

    def audio(self, session_id: str, index: int) -> ItemAudio:
        sizes = self.chunks.sizes
        offsets = (np.cumsum(sizes) - sizes).tolist()
        return ItemAudio(
            session_id=session_id,
            item_id=self.item_id,
            role=self.role,
            index=index,
            format=self.format,
            raw=bytes(self.data[0]) if len(self.data) == 1 else b"".join(self.data),
            arrivals=list(zip(self.chunks.time_s.tolist(), offsets, strict=True)),
            played_ms=self.played_ms,
            audio_start_ms=self.audio_start_ms,
            audio_end_ms=self.audio_end_ms,
        )


@dataclass
class BuiltSession:
    """A session's audio as read from a capture, nothing copied yet (audio export writes it
    from where it lies); :meth:`audio` is the :class:`SessionAudio`."""

    session_id: str
    start_s: float
    items: list[ItemParts]  # in conversation order
    user: Chunks  # every append with samples, cleared ones too
    samples_dropped: bool
    warnings: list[str]

    def audio(self) -> SessionAudio:
        items = [item.audio(self.session_id, i + 1) for i, item in enumerate(self.items)]
        return SessionAudio(
            self.session_id,
            self.start_s,
            items,
            ChunkList(self.user),
            self.samples_dropped,
            self.warnings,
        )
