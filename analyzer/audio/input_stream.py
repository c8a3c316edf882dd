"""The input audio buffer of a session on the server's audio clock."""

from __future__ import annotations

import numpy as np

from analyzer.audio.chunks import Index
from analyzer.audio.session_frames import SessionFrames


class InputStream:
    """The input audio buffer on the server's audio clock: the user's appends (ids into
    :class:`SessionFrames`'s chunks) minus cleared audio, as a stack of arrays. Each entry
    starts where the one before ended; a clear pops the entries past the cut and shortens the
    last."""

    def __init__(self, audio: SessionFrames) -> None:
        n = audio.users
        self.audio = audio
        self.position = audio.position[:n]
        self.fmt = audio.chunks.fmt[:n]
        self.pushed = 0  # chunks appended so far
        self.top = 0  # entries in the stack
        self.chunk = np.zeros(n, dtype=np.int64)
        self.start_ms = np.zeros(n)
        self.duration_ms = np.zeros(n)
        self.size = np.zeros(n, dtype=np.int64)  # bytes kept of the chunk (from its start)
        self.clock_ms = 0.0

    def append_before(self, position: int) -> None:
        """Append the chunks of the frames before ``position`` not appended yet."""
        first = self.pushed
        last = int(np.searchsorted(self.position, position, side="left"))
        if last <= first:
            return
        durations = self.audio.duration_ms[first:last]
        # cumsum adds left to right, as appending one by one did: the same clock to the bit
        ends = np.cumsum(np.concatenate(([self.clock_ms], durations)))
        at = slice(self.top, self.top + last - first)
        self.chunk[at] = np.arange(first, last)
        self.start_ms[at] = ends[:-1]
        self.duration_ms[at] = durations
        self.size[at] = self.audio.size[first:last]
        self.top += last - first
        self.pushed = last
        self.clock_ms = float(ends[-1])

    def _byte_at(self, entry: int, ms: float) -> int:
        """The byte offset ``ms`` into an entry, on a whole sample."""
        fmt = self.audio.chunks.formats[int(self.fmt[self.chunk[entry]])]
        sample = round(ms * fmt.sample_rate / 1000.0)
        return max(0, min(int(self.size[entry]), sample * fmt.bytes_per_sample))

    def clear(self, cut_ms: float) -> None:
        """Drop the audio past ``cut_ms``: the stream and its clock go back to it."""
        top = int(np.searchsorted(self.start_ms[: self.top], cut_ms, side="left"))
        self.top = top
        if top and float(self.start_ms[top - 1] + self.duration_ms[top - 1]) > cut_ms:
            last = top - 1
            size = self._byte_at(last, cut_ms - float(self.start_ms[last]))
            rate = self.audio.chunks.formats[int(self.fmt[self.chunk[last]])].bytes_per_second
            self.size[last] = size
            self.duration_ms[last] = size * 1000.0 / rate if rate else 0.0
        self.clock_ms = min(self.clock_ms, cut_ms)

    def slice(self, start_ms: float, end_ms: float) -> tuple[Index, Index, Index]:
        """The stream between two points of the audio clock: (chunk ids, first byte, end byte)
        of each piece."""
        starts = self.start_ms[: self.top]
        first = max(0, int(np.searchsorted(starts, start_ms, side="right")) - 1)
        last = max(first, int(np.searchsorted(starts, end_ms, side="left")))
        begin = starts[first:last]
        end = begin + self.duration_ms[first:last]
        a = np.zeros(last - first, dtype=np.int64)
        b = self.size[first:last].copy()
        # only the first entry can start before start_ms (the others start after it)
        if last > first and start_ms > begin[0]:
            a[0] = self._byte_at(first, start_ms - float(begin[0]))
        for k in np.flatnonzero(end_ms < end).tolist():
            b[k] = self._byte_at(first + k, end_ms - float(begin[k]))
        keep = (end > start_ms) & (b > a)
        return self.chunk[first:last][keep], a[keep], b[keep]
