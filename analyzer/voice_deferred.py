"""VOICE_START / VOICE_END found a batch of frames at a time, for ``rt-analyze convert``.

The recorder's writer runs :class:`~analyzer.voice_events.SessionVoices` as each frame comes:
its detector is called once per audio chunk (a few tens of ms of audio), which was most of
``convert``'s CPU. :class:`DeferredVoices` is that class with streams that only note their
chunks and flushes; :meth:`DeferredVoices.settle`, called by ``writers.write_frames`` on a
bounded batch of frames (``writers.VOICE_BATCH``) and at a session's end, then

1. runs each stream's detector once over all its chunks noted since the last settle, between
   the points where the writer's detector flushes (a flush, a pause, audio not known), and
   gives each mark to the chunk whose audio completed the 10 ms frame that decided it (the
   chunk whose ``feed`` finds it when fed chunk by chunk: :attr:`VoiceMark.found`);
2. replays the session's chunks and flushes in the writer's order through the writer's own
   bookkeeping (:meth:`ChunkStream.chunk_found`: recent chunk times, the echo watch) with
   those marks, appending each event to its frame's events where the writer appends it.

So every piece of state (the detector, the chunk times, the echo rings) is the writer's own,
carried from one settle to the next as from one chunk to the next: the same events, whatever
the batches (``tests/test_voice_deferred.py``). Until a settle, a frame's events lack its
voice events: the caller holds the frames (a bounded batch) until then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.voice import VoiceMark, pcm16_samples
from analyzer.voice_echo import EchoWatch
from analyzer.voice_events import PAUSE_S, AudioStream, ChunkStream, Event, SessionVoices

Samples = npt.NDArray[np.int16]


class _Log:
    """A session's chunks and flushes not analyzed yet, in the writer's order: the stream of
    each and the events list of its frame (where its voice events go)."""

    def __init__(self) -> None:
        self.ops: list[tuple[_Deferred, list[Event]]] = []
        self.target: list[Event] = []  # the events of the frame being fed


class _Deferred(ChunkStream):
    """A stream whose detector runs at :meth:`detect`, over the chunks noted since the last."""

    def __init__(
        self,
        role: str,
        fmt: tuple[str, int],
        base_ms: float,
        reply_id: Any,
        echo: EchoWatch,
        log: _Log,
    ) -> None:
        super().__init__(role, fmt, base_ms, reply_id, echo)
        self.log = log
        self.width = 2 if self.encoding == "pcm16" else 1  # bytes a sample
        self.fed = 0  # the detector's clock after the last chunk replayed
        self.started = False  # replayed anything yet
        # Each chunk (audio, its size in bytes, time) and flush (size None) not analyzed yet.
        self.ops: list[tuple[bytes | None, int | None, float]] = []
        self.samples: list[Samples | None] = []  # each op's samples, once analyzed
        self.found: list[list[VoiceMark]] = []  # each op's marks, once analyzed
        self.next = 0  # the next op to replay

    def chunk(self, audio: bytes | None, size: int, time_s: float) -> list[Event]:
        self.ops.append((audio, size, time_s))
        self.log.ops.append((self, self.log.target))
        return []

    def flush(self) -> list[Event]:
        self.ops.append((None, None, 0.0))
        self.log.ops.append((self, self.log.target))
        return []

    def detect(self) -> None:
        """Each op's marks, as ``ChunkStream.chunk`` and ``flush`` find them one by one."""
        detector = self.detector
        self.samples = [None] * len(self.ops)
        self.found = [[] for _ in self.ops]
        self.next = 0
        last = self.chunks[-1][1] if self.chunks else None  # the previous chunk's time
        run: list[tuple[int, Samples]] = []  # chunks to feed at once
        for op, (audio, size, time_s) in enumerate(self.ops):
            if size is None:
                self._feed(run)
                self.found[op] += detector.flush()
                continue
            if last is not None and time_s - last > PAUSE_S:  # paused: the writer flushed
                self._feed(run)
                self.found[op] += detector.flush()
            last = time_s
            samples = pcm16_samples(audio, self.encoding) if audio is not None else None
            if samples is None:
                self._feed(run)
                self.found[op] += detector.skip(size // self.width)
            else:
                self.samples[op] = samples
                run.append((op, samples))
        self._feed(run)

    def _feed(self, run: list[tuple[int, Samples]]) -> None:
        """Chunks ``run`` (op, samples) fed at once, then emptied; each mark to the chunk whose
        audio completed the frame that decided it."""
        if not run:
            return
        parts = [samples for _, samples in run]
        ends = self.detector.fed + np.cumsum([part.size for part in parts])
        joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
        for mark in self.detector.feed(joined):
            self.found[run[int(np.searchsorted(ends, mark.found))][0]].append(mark)
        run.clear()

    def replay(self) -> list[Event]:
        """The events of the next op, as the writer gives them (see :meth:`detect`)."""
        op = self.next
        self.next += 1
        _, size, time_s = self.ops[op]
        if not self.started and self.role == "user":
            self.echo.new_user_stream()  # where the writer made the stream: before its first op
        self.started = True
        if size is None:
            return self.flush_found(self.found[op])
        count, samples = size // self.width, self.samples[op]
        self.fed += count if samples is None else samples.size  # as the detector's clock moves
        return self.chunk_found(samples, count, time_s, self.fed, self.found[op])

    def done(self) -> None:
        """Forget the ops settled (their audio is held no longer)."""
        self.ops, self.samples, self.found, self.next = [], [], [], 0


class DeferredVoices(SessionVoices):
    """A session's voice detection as ``SessionVoices``, its events added to each frame's
    events list at :meth:`settle`, not as the frame is fed."""

    def __init__(self) -> None:
        super().__init__()
        self.log = _Log()

    def stream(self, role: str, fmt: tuple[str, int], base_ms: float, reply_id: Any) -> AudioStream:
        return _Deferred(role, fmt, base_ms, reply_id, self.echo, self.log)

    def feed(self, time_s: float, events: Any, audio: bytes | None) -> list[Event]:
        """Notes the frame's audio; its voice events are appended to ``events`` (a list) at
        :meth:`settle`. Returns nothing."""
        self.log.target = events
        found = super().feed(time_s, events, audio)
        assert not found
        return found

    def settle(self) -> None:
        """The voice events of every frame fed since the last settle, into their lists."""
        ops = self.log.ops
        if not ops:
            return
        streams = list(dict.fromkeys(stream for stream, _ in ops))
        for stream in streams:
            stream.detect()
        for stream, target in ops:
            target.extend(stream.replay())
        for stream in streams:
            stream.done()
        self.log.ops = []
        self.log.target = []
