"""Which of the user's audio is which input item: the input buffer on the server's audio clock,
followed through the session's normalized events (appends, commits, clears, VAD segments).

A commit takes the VAD segment of its item (speech start to end on the audio clock) or, without
one, everything since the last commit (up to the client's manual commit). A clear drops the
audio since the last commit and winds the clock back. A protocol without commits (GPT-Live)
makes each VAD segment an item when its speech ends.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from analyzer.audio.source import SessionChunks
from analyzer.kinds import Kind

# (chunk index into SessionChunks, first byte, end byte) of each piece of an item's audio
Piece = tuple[int, int, int]
Segment = tuple[float | None, float | None]  # VAD speech start and end on the audio clock


@dataclass
class InputItems:
    pieces: dict[str, list[Piece]] = field(default_factory=dict)  # in commit order
    segments: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # VAD
    first_seen: dict[str, int] = field(default_factory=dict)  # item id -> first seq naming it
    played_ms: dict[str, float] = field(default_factory=dict)  # reply item -> truncate point


class _Buffer:
    """The input buffer: entries (chunk, start ms, duration ms, bytes kept), back to back."""

    def __init__(self, chunks: SessionChunks) -> None:
        self.chunks = chunks
        self.entries: list[list[Any]] = []
        self.starts: list[float] = []  # each entry's start, for bisecting
        self.clock_ms = 0.0

    def append(self, k: int) -> None:
        fmt = self.chunks.formats[k]
        size = len(self.chunks.data[k])
        duration = fmt.duration_ms(size) or 0.0
        self.entries.append([k, self.clock_ms, duration, size])
        self.starts.append(self.clock_ms)
        self.clock_ms += duration

    def _byte_at(self, entry: list[Any], ms: float) -> int:
        """The byte offset ``ms`` into an entry, on a whole sample."""
        fmt = self.chunks.formats[entry[0]]
        sample = round(ms * fmt.sample_rate / 1000.0)
        return int(max(0, min(entry[3], sample * fmt.bytes_per_sample)))

    def clear(self, cut_ms: float) -> None:
        """Drop the audio past ``cut_ms``: the buffer and its clock go back to it."""
        top = bisect_left(self.starts, cut_ms)
        del self.entries[top:], self.starts[top:]
        if self.entries and self.entries[-1][1] + self.entries[-1][2] > cut_ms:
            last = self.entries[-1]
            last[3] = self._byte_at(last, cut_ms - last[1])
            rate = self.chunks.formats[last[0]].bytes_per_second
            last[2] = last[3] * 1000.0 / rate if rate else 0.0
        self.clock_ms = min(self.clock_ms, cut_ms)

    def slice(self, start_ms: float, end_ms: float) -> list[Piece]:
        """The buffer between two points of the audio clock."""
        first = max(0, bisect_right(self.starts, start_ms) - 1)
        last = max(first, bisect_left(self.starts, end_ms))
        out: list[Piece] = []
        for n, entry in enumerate(self.entries[first:last]):
            k, begin, duration, size = entry
            a = self._byte_at(entry, start_ms - begin) if n == 0 and start_ms > begin else 0
            b = self._byte_at(entry, end_ms - begin) if end_ms < begin + duration else size
            if begin + duration > start_ms and b > a:
                out.append((k, a, b))
        return out


def input_items(chunks: SessionChunks) -> InputItems:
    """The user's input items of a session, and when each item was first named."""
    found = InputItems()
    buffer = _Buffer(chunks)
    users = [(chunks.seq[k], k) for k, mine in enumerate(chunks.user) if mine]
    pushed = 0
    commit_ms = 0.0
    manual: deque[float] = deque()
    client_clears = 0
    speech_start: float | None = None
    vad: dict[str | None, tuple[float | None, float | None]] = {}
    commits = any(e["kind"] == Kind.INPUT_COMMITTED for e in chunks.events)

    def commit(item_id: str | None, seq: int, segment: Segment | None) -> None:
        nonlocal commit_ms
        while manual and manual[0] <= commit_ms:  # an empty commit gets an error, no item
            manual.popleft()
        if segment is not None and segment[1] is not None:
            start = segment[0] if segment[0] is not None else commit_ms
            pieces = buffer.slice(start, segment[1])
            commit_ms = max(commit_ms, segment[1])
        else:
            segment = None
            end = manual.popleft() if manual else buffer.clock_ms
            pieces = buffer.slice(commit_ms, end)
            commit_ms = end
        if item_id is not None:
            found.pieces[item_id] = pieces
            if segment is not None:
                found.segments[item_id] = segment
            seen(item_id, seq)

    def seen(item_id: str, seq: int) -> None:
        if seq < found.first_seen.get(item_id, seq + 1):
            found.first_seen[item_id] = seq

    for event in chunks.events:
        seq, kind, item_id = event["seq"], event["kind"], event["item_id"]
        # a reply's end lists its items, as no frame of the protocol's own ids says (Realtime)
        if item_id is not None and event["stage"] != "final":
            seen(item_id, seq)
        while pushed < len(users) and users[pushed][0] < seq:
            buffer.append(users[pushed][1])
            pushed += 1
        ms = event["stream_ms"]
        ms = float(ms) if ms is not None and ms == ms else None
        if event["direction"] == "client":
            if kind == Kind.USER_AUDIO_COMMIT:
                manual.append(buffer.clock_ms)
            elif kind == Kind.INPUT_CLEARED:
                buffer.clear(commit_ms)
                client_clears += 1
            elif kind == Kind.TRUNCATE and item_id is not None and ms is not None:
                found.played_ms[item_id] = ms
            continue
        if kind == Kind.SPEECH_START:
            speech_start = ms
        elif kind == Kind.SPEECH_END:
            vad[item_id] = (speech_start, ms)
            speech_start = None
            if not commits:
                commit(item_id, seq, vad.pop(item_id))
        elif kind == Kind.INPUT_COMMITTED:
            segment = vad.pop(item_id) if item_id in vad else vad.pop(None, None)
            commit(item_id, seq, segment)
        elif kind == Kind.INPUT_CLEARED:
            # The client's clear already emptied the buffer when it was sent; a server clear
            # with no client clear before it was the server's own doing.
            if client_clears:
                client_clears -= 1
            else:
                buffer.clear(commit_ms)
    return found


def user_chunk_items(chunks: SessionChunks, which: list[int]) -> list[str | None]:
    """The input item each of the user chunks ``which`` went into (its first piece's), if any."""
    owner: dict[int, str] = {}
    for item_id, pieces in input_items(chunks).pieces.items():
        for k, _, _ in pieces:
            owner.setdefault(k, item_id)
    return [owner.get(k) for k in which]
