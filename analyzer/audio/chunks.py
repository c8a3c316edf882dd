"""Audio chunks as arrays: where each chunk's bytes lie, its format and its arrival time.

A session carries thousands of chunks (one a frame); keeping them as numpy arrays over a few
buffers, rather than a Python object each, lets a capture's audio be laid out in a few numpy
calls a session.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from analyzer.formats import AudioFormat

Index = npt.NDArray[np.int64]


@dataclass(slots=True)
class AudioChunk:
    """One frame's audio where it arrived: a user append or an assistant delta."""

    time_s: float
    format: AudioFormat
    data: memoryview | bytes


def as_bytes_view(data: memoryview | bytes | bytearray) -> memoryview:
    """A flat byte view ("B": comparing a signed "b" view to bytes goes element by element)."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


@dataclass(slots=True)
class Chunks:
    """Chunks in order: chunk ``k`` is ``buffers[buffer[k]][start[k]:end[k]]``, in
    ``formats[fmt[k]]``, arrived at ``time_s[k]``. Equal formats share one index."""

    buffers: list[memoryview]
    buffer: Index
    start: Index
    end: Index
    time_s: npt.NDArray[np.float64]
    fmt: Index
    formats: list[AudioFormat]

    @classmethod
    def empty(cls) -> Chunks:
        none = np.zeros(0, dtype=np.int64)
        return cls([], none, none, none, np.zeros(0), none, [])

    @classmethod
    def of(cls, chunks: Iterable[AudioChunk]) -> Chunks:
        """The arrays of chunk objects (one buffer each)."""
        buffers: list[memoryview] = []
        times: list[float] = []
        fmts: list[int] = []
        index: dict[AudioFormat, int] = {}
        for chunk in chunks:
            buffers.append(as_bytes_view(chunk.data))
            times.append(chunk.time_s)
            fmts.append(index.setdefault(chunk.format, len(index)))
        ends = np.array([len(b) for b in buffers], dtype=np.int64)
        return cls(
            buffers,
            np.arange(len(buffers), dtype=np.int64),
            np.zeros(len(buffers), dtype=np.int64),
            ends,
            np.array(times, dtype=np.float64),
            np.array(fmts, dtype=np.int64),
            list(index),
        )

    @classmethod
    def back_to_back(
        cls, parts: Sequence[bytes], time_s: npt.NDArray[np.float64], fmt: AudioFormat
    ) -> Chunks:
        """Parts joined into one buffer, one chunk each (arrived at ``time_s``)."""
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        ends = np.cumsum(sizes)
        n = len(parts)
        return cls(
            [as_bytes_view(b"".join(parts))],
            np.zeros(n, dtype=np.int64),
            ends - sizes,
            ends,
            np.asarray(time_s, dtype=np.float64),
            np.zeros(n, dtype=np.int64),
            [fmt],
        )

    @classmethod
    def concat(cls, parts: Sequence[Chunks]) -> Chunks:
        """The chunks of all ``parts`` in order (buffers and formats merged)."""
        if not parts:
            return cls.empty()
        first = parts[0]
        if all(p.buffers is first.buffers and p.formats is first.formats for p in parts):
            buffers, formats = first.buffers, first.formats
            buffer, fmt = [p.buffer for p in parts], [p.fmt for p in parts]
        else:
            buffers, formats, buffer, fmt = cls._merged(parts)
        return cls(
            buffers,
            np.concatenate(buffer),
            np.concatenate([p.start for p in parts]),
            np.concatenate([p.end for p in parts]),
            np.concatenate([p.time_s for p in parts]),
            np.concatenate(fmt),
            formats,
        )

    @staticmethod
    def _merged(
        parts: Sequence[Chunks],
    ) -> tuple[list[memoryview], list[AudioFormat], list[Index], list[Index]]:
        """One buffer list and one format list for all parts; each part's indexes into them."""
        buffers: list[memoryview] = []
        seen: dict[int, int] = {}  # id of a part's buffer list -> where it starts in ``buffers``
        formats: dict[AudioFormat, int] = {}
        buffer: list[Index] = []
        fmt: list[Index] = []
        for part in parts:
            base = seen.get(id(part.buffers))
            if base is None:
                base = seen[id(part.buffers)] = len(buffers)
                buffers.extend(part.buffers)
            buffer.append(part.buffer + base)
            remap = [formats.setdefault(f, len(formats)) for f in part.formats]
            fmt.append(np.array([*remap, 0], dtype=np.int64)[part.fmt])
        return buffers, list(formats), buffer, fmt

    def __len__(self) -> int:
        return len(self.start)

    @property
    def sizes(self) -> Index:
        return self.end - self.start

    def take(self, which: npt.NDArray[Any] | slice) -> Chunks:
        """The chunks ``which`` selects (a mask, indices or a slice), same buffers."""
        return Chunks(
            self.buffers,
            self.buffer[which],
            self.start[which],
            self.end[which],
            self.time_s[which],
            self.fmt[which],
            self.formats,
        )

    def view(self, k: int) -> memoryview:
        return self.buffers[int(self.buffer[k])][int(self.start[k]) : int(self.end[k])]

    def segments_each(self, bounds: Sequence[int]) -> list[list[memoryview]]:
        """The bytes of each group of chunks ``bounds[i]`` to ``bounds[i + 1]`` as views, chunks
        that lie back to back in a buffer as one (found for all groups at once)."""
        n = len(self)
        new = np.ones(n, dtype=np.bool_)  # where a run of back-to-back chunks starts
        new[1:] = (self.buffer[1:] != self.buffer[:-1]) | (self.start[1:] != self.end[:-1])
        new[[b for b in bounds[:-1] if b < n]] = True
        firsts = np.flatnonzero(new)
        lasts = np.empty_like(firsts)
        lasts[:-1] = firsts[1:] - 1
        lasts[-1:] = n - 1
        views = [
            self.buffers[b][s:e]
            for b, s, e in zip(
                self.buffer[firsts].tolist(),
                self.start[firsts].tolist(),
                self.end[lasts].tolist(),
                strict=True,
            )
        ]
        at = np.searchsorted(firsts, bounds).tolist()
        return [views[lo:hi] for lo, hi in pairwise(at)]

    def objects(self) -> list[AudioChunk]:
        """One :class:`AudioChunk` a chunk."""
        where = zip(self.buffer.tolist(), self.start.tolist(), self.end.tolist(), strict=True)
        views = [self.buffers[b][s:e] for b, s, e in where]
        fmts = [self.formats[f] for f in self.fmt.tolist()]
        return [
            AudioChunk(t, f, v) for t, f, v in zip(self.time_s.tolist(), fmts, views, strict=True)
        ]


class ChunkList(Sequence[AudioChunk]):
    """:class:`Chunks` as a sequence of :class:`AudioChunk`, made on first use (the stereo mix
    reads the arrays; few callers want an object a frame)."""

    __slots__ = ("_objects", "chunks")

    def __init__(self, chunks: Chunks) -> None:
        self.chunks = chunks
        self._objects: list[AudioChunk] | None = None

    def _list(self) -> list[AudioChunk]:
        if self._objects is None:
            self._objects = self.chunks.objects()
        return self._objects

    def __len__(self) -> int:
        return len(self.chunks)

    @overload
    def __getitem__(self, index: int) -> AudioChunk: ...

    @overload
    def __getitem__(self, index: slice) -> list[AudioChunk]: ...

    def __getitem__(self, index: int | slice) -> AudioChunk | list[AudioChunk]:
        return self._list()[index]

    def __iter__(self) -> Iterator[AudioChunk]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChunkList | list | tuple):
            return self._list() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChunkList({len(self)} chunks)"


def chunks_of(stream: Sequence[AudioChunk]) -> Chunks:
    """The arrays behind ``stream``, without making them again when it is a :class:`ChunkList`."""
    return stream.chunks if isinstance(stream, ChunkList) else Chunks.of(stream)
