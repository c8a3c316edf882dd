"""What audio of a capture is made of: items and sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.audio.source import SessionChunks
from analyzer.audio.streams import DECODABLE
from analyzer.audio.wav import encoded_wav_bytes
from analyzer.codecs import alaw_decode, ulaw_decode
from analyzer.formats import ALAW, MP3, PCM16, ULAW, AudioFormat

__all__ = ["DECODABLE", "AudioCapture", "AudioChunk", "ItemAudio", "SessionAudio", "to_pcm16"]


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
    # export only: the samples where they lie, not joined (``raw`` is then left empty)
    parts: tuple[bytes | memoryview, ...] = field(default=(), compare=False, repr=False)

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


@dataclass(slots=True)
class AudioChunk:
    """One frame's audio where it arrived, as sent."""

    time_s: float
    format: AudioFormat
    data: memoryview | bytes


@dataclass
class SessionAudio:
    session_id: str
    start_s: float  # time 0 of the session's timeline (its WebSocket opening)
    items: list[ItemAudio] = field(default_factory=list)
    # every chunk as read (the stereo mix is made from them); None: no audio at all
    chunks: SessionChunks | None = field(default=None, compare=False, repr=False)
    samples_dropped: bool = False  # recorded with rt_audio=drop: sizes known, samples not
    warnings: list[str] = field(default_factory=list)

    @property
    def user_stream(self) -> list[AudioChunk]:
        """Every chunk of the user's audio, cleared ones too, as sent."""
        c = self.chunks
        if c is None:
            return []
        return [
            AudioChunk(c.time_s[k], c.formats[k], c.data[k])
            for k, user in enumerate(c.user)
            if user
        ]

    @property
    def has_audio(self) -> bool:
        return bool(self.items) or (self.chunks is not None and any(self.chunks.user))


@dataclass
class AudioCapture:
    sessions: list[SessionAudio]
    warnings: list[str]  # the reader's and the sessions'
