"""VOICE_START / VOICE_END events: where speech starts and ends in a session's audio.

Fed, frame by frame, the events a protocol adapter decoded and the frame's decoded audio, it
runs :class:`analyzer.voice.VoiceDetector` over the user's audio (one stream per session) and
over each reply's audio (one stream per reply). The recorder's writer does it live, before
``rt_audio=drop`` discards the samples; ``rt-analyze convert`` does it a batch of frames at a
time (:class:`analyzer.voice_deferred.DeferredVoices`: each stream's detector run once over
the batch, the rest of :class:`ChunkStream` replayed with its marks); captures recorded
without these events are given them at read time (``analyzer.events``) by
:class:`analyzer.voice_batch.BatchVoices`, this class with streams that record their chunks
and analyze each stream at once. The same events, all three.

A mark's ``stream_ms`` is on that stream's audio clock (the user's input clock, as the
adapter's USER_AUDIO ``stream_ms``; a reply's own audio, from 0). Its ``at_s`` is when the chunk
holding that sample passed the proxy (for an end: the chunk holding the last voiced sample).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from analyzer.kinds import Kind
from analyzer.voice import VoiceDetector, VoiceMark, pcm16_samples
from analyzer.voice_echo import EchoWatch

Event = dict[str, Any]
DEFAULT_FORMAT = ("pcm16", 24000)
# Chunks remembered per stream to time marks found later (a span ends HANGOVER_MS after its
# last voiced frame; chunks are 10..100 ms): far more than the hangover needs.
CHUNKS_KEPT = 256
# A stream that stops this long (wall time) between two chunks paused: speech open before the
# pause ended there (streams send continuously, every 10..100 ms, while they are live).
PAUSE_S = 1.0


def _format(name: Any) -> tuple[str, int] | None:
    """``"pcm16/24000"`` as (encoding, rate); None when unreadable."""
    if not isinstance(name, str) or "/" not in name:
        return None
    encoding, _, rate = name.partition("/")
    return (encoding, int(rate)) if rate.isdigit() and int(rate) > 0 else None


class ChunkStream:
    """One stream of audio: its detector and when its recent chunks passed the proxy; its
    samples also go to the session's echo watch (a user span's VOICE_END carries its score)."""

    def __init__(
        self, role: str, fmt: tuple[str, int], base_ms: float, reply_id: Any, echo: EchoWatch
    ) -> None:
        self.role, self.encoding, self.reply_id, self.base_ms = role, fmt[0], reply_id, base_ms
        self.echo = echo
        self.rate_hz = fmt[1]
        self.detector = VoiceDetector(fmt[1])
        self.chunks: deque[tuple[int, float]] = deque(maxlen=CHUNKS_KEPT)  # (end sample, time)

    def chunk(self, audio: bytes | None, size: int, time_s: float) -> list[Event]:
        samples = pcm16_samples(audio, self.encoding) if audio is not None else None
        marks: list[VoiceMark] = []
        if self.chunks and time_s - self.chunks[-1][1] > PAUSE_S:
            marks = self.detector.flush()  # the stream paused (push to talk): speech ended
        count = size // (2 if self.encoding == "pcm16" else 1)
        if samples is None:
            marks += self.detector.skip(count)
        else:
            marks += self.detector.feed(samples)
        return self.chunk_found(samples, count, time_s, self.detector.fed, marks)

    def chunk_found(
        self,
        samples: npt.NDArray[np.int16] | None,
        count: int,
        time_s: float,
        fed: int,
        marks: list[VoiceMark],
    ) -> list[Event]:
        """The events of a chunk whose marks the detector found (``fed``: its clock after the
        chunk): the chunk's time noted, its audio given to the echo watch."""
        self.chunks.append((fed, time_s))
        if self.role != "user":
            self.echo.reply_audio(samples, self.detector.rate_hz, time_s)
            return self._events(marks)
        return self._events(marks, self._echo(samples, count, marks))

    def flush(self) -> list[Event]:
        return self.flush_found(self.detector.flush())

    def flush_found(self, marks: list[VoiceMark]) -> list[Event]:
        """The events of a flush whose marks the detector found."""
        if self.role != "user":
            return self._events(marks)
        return self._events(marks, self._echo(np.zeros(0, np.int16), 0, marks))

    def _echo(
        self, samples: npt.NDArray[np.int16] | None, count: int, marks: Sequence[VoiceMark]
    ) -> dict[int, tuple[float, float]]:
        rate = self.detector.rate_hz
        return self.echo.user_audio(samples, count, rate, marks, self._time_of)

    def _time_of(self, sample: int) -> float | None:
        """When the chunk holding ``sample`` passed the proxy."""
        for end, time_s in self.chunks:
            if sample < end:
                return time_s
        return self.chunks[-1][1] if self.chunks else None

    def _events(
        self, marks: Sequence[VoiceMark], echoes: dict[int, tuple[float, float]] | None = None
    ) -> list[Event]:
        return [
            voice_event(
                self,
                mark,
                self._time_of(mark.sample - 1 if mark.end else mark.sample),
                (echoes or {}).get(index),
            )
            for index, mark in enumerate(marks)
        ]


class StreamFacts(Protocol):
    """What a stream's events say of it."""

    role: str
    reply_id: Any
    base_ms: float
    rate_hz: int


def voice_event(
    stream: StreamFacts, mark: VoiceMark, at_s: float | None, echo: tuple[float, float] | None
) -> Event:
    """A mark as a VOICE_START / VOICE_END event (``at_s``: when the chunk holding its sample
    passed the proxy; ``echo``: a user span's echo score and delay)."""
    rate = stream.rate_hz
    event: Event = {
        "kind": Kind.VOICE_END if mark.end else Kind.VOICE_START,
        "role": stream.role,
        "reply_id": stream.reply_id,
        "stream_ms": round(stream.base_ms + mark.sample * 1000.0 / rate, 3),
        "at_s": at_s,
    }
    if mark.end:
        event["audio_ms"] = round((mark.sample - mark.start_sample) * 1000.0 / rate, 3)
        event["rms_dbfs"] = mark.rms_dbfs
        event["peak_dbfs"] = mark.peak_dbfs
        event["clipped_share"] = mark.clipped_share
        if echo is not None:
            event["echo_score"], event["echo_delay_ms"] = echo
    return event


class AudioStream(Protocol):
    """A stream fed by :class:`SessionVoices`: chunk by chunk (:class:`ChunkStream`) or recorded
    to be analyzed at once (``analyzer.voice_batch``)."""

    reply_id: Any

    def chunk(self, audio: bytes | None, size: int, time_s: float) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


class SessionVoices:
    """A session's voice detection, fed each frame's events and audio in arrival order."""

    def __init__(self) -> None:
        self.input_format = self.output_format = DEFAULT_FORMAT
        self.user: AudioStream | None = None
        self.reply: AudioStream | None = None
        self.echo = EchoWatch()

    def stream(self, role: str, fmt: tuple[str, int], base_ms: float, reply_id: Any) -> AudioStream:
        """A new stream (its clock from 0)."""
        if role == "user":
            self.echo.new_user_stream()
        return ChunkStream(role, fmt, base_ms, reply_id, self.echo)

    def feed(self, time_s: float, events: Sequence[Event], audio: bytes | None) -> list[Event]:
        """The voice events found by this frame (``events``: what its adapter decoded from it;
        ``audio``: its decoded samples, null when dropped before this point)."""
        out: list[Event] = []
        offset = 0
        for event in events:
            kind = event.get("kind")
            if kind == Kind.USER_AUDIO or kind == Kind.REPLY_AUDIO:
                size = int(event.get("audio_bytes") or 0)
                chunk = audio[offset : offset + size] if audio is not None else None
                if chunk is not None and len(chunk) < size:
                    chunk = None
                offset += size
                if kind == Kind.USER_AUDIO:
                    out.extend(self._user(event).chunk(chunk, size, time_s))
                else:
                    out.extend(self._reply(event, out).chunk(chunk, size, time_s))
            elif kind in (Kind.USER_AUDIO_COMMIT, Kind.INPUT_CLEARED) and self.user is not None:
                out.extend(self.user.flush())  # the input ends here: its speech too
            elif kind == Kind.REPLY_END and self.reply is not None:
                if event.get("reply_id") in (None, self.reply.reply_id):
                    out.extend(self.reply.flush())
                    self.reply = None
            elif kind == Kind.CONFIG:
                self._config(event, out)
        return out

    def _user(self, event: Event) -> AudioStream:
        if self.user is None:
            base = event.get("stream_ms")
            base_ms = float(base) if isinstance(base, int | float) and base == base else 0.0
            self.user = self.stream("user", self.input_format, base_ms, None)
        return self.user

    def _reply(self, event: Event, out: list[Event]) -> AudioStream:
        reply_id = event.get("reply_id")
        if self.reply is not None and self.reply.reply_id != reply_id:
            out.extend(self.reply.flush())
            self.reply = None
        if self.reply is None:
            self.reply = self.stream("assistant", self.output_format, 0.0, reply_id)
        return self.reply

    def _config(self, event: Event, out: list[Event]) -> None:
        new_in = _format(event.get("input_format")) or self.input_format
        new_out = _format(event.get("output_format")) or self.output_format
        if new_in != self.input_format and self.user is not None:
            out.extend(self.user.flush())  # a new clock rate: the next chunk starts a stream
            self.user = None
        if new_out != self.output_format and self.reply is not None:
            out.extend(self.reply.flush())
            self.reply = None
        self.input_format, self.output_format = new_in, new_out
