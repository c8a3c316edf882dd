"""One session's audio rebuilt from its events: the input stream, commits and clears, VAD
segments, the assistant's deltas by item."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from analyzer.audio.chunks import Chunks, Index
from analyzer.audio.columns import (
    CLEAR,
    CLEARED,
    COMMIT,
    COMMITTED,
    CONFIG,
    CONTROL,
    SPEECH_STARTED,
    SPEECH_STOPPED,
    TIMEOUT_TRIGGERED,
    TRUNCATE,
    Pieces,
    Rows,
    milliseconds,
)
from analyzer.audio.input_stream import InputStream
from analyzer.audio.model import DECODABLE, BuiltSession, ItemParts, to_pcm16
from analyzer.audio.session_frames import session_frames
from analyzer.codecs import resample_pcm16
from analyzer.formats import PCM16, AudioFormat, format_changes, provider_of
from analyzer.protocol import (
    parse_event,
)


@dataclass(slots=True)
class _Vad:
    start_ms: float | None = None
    end_ms: float | None = None


# (chunk ids into SessionFrames's chunks, first byte, end byte) of each piece of an item's audio
_Slices = tuple[Index, Index, Index]


class SessionAudioBuilder:
    """Follows one session's events in order: the input stream on the server's audio clock,
    commits and clears, VAD segments, assistant deltas by item. Audio frames are handled as
    arrays; only the events that move the input buffer or name items are looked at one by
    one."""

    def __init__(self, rows: Rows, pieces: Pieces, facts: dict[str, Any]) -> None:
        self.rows = rows
        self.pieces = pieces
        self.session_id = rows.session_id
        self.provider = provider_of(facts.get("host"), facts.get("path"))
        self.facts = facts
        self.warnings: list[str] = []
        self.commit_ms = 0.0  # where the uncommitted buffer starts
        self.manual_commits: deque[float] = deque()
        self.client_clears = 0
        self.vad: dict[str | None, _Vad] = {}
        self.user_pieces: dict[str, tuple[_Slices, _Vad | None]] = {}
        self.first_seen: dict[str, int] = {}  # item id -> seq of the first frame about it
        for item_id, seq in rows.named:
            if item_id is not None:
                self.first_seen.setdefault(item_id, seq)  # in seq order: the first is the least
        self.played_ms: dict[str, float] = {}

    def build(self) -> BuiltSession:
        rows = self.rows
        audio = session_frames(rows, self.pieces, self._format_changes())
        self.audio = audio
        self.stream = InputStream(audio)
        self._follow_events()
        for key, first, _ in audio.items:
            self._seen(key, int(rows.seq[audio.position[first]]))
        start_s = self.facts.get("start_s")
        first_s = float(rows.time_s[0]) if len(rows) else 0.0
        user = audio.chunks.take(slice(0, audio.users))
        dropped = bool(audio.dropped.any())
        items = self._items()
        if dropped:
            self.warnings.insert(
                0,
                f"session {self.session_id} was recorded without audio samples (rt_audio=drop).",
            )
        if audio.bad_wav:
            self.warnings.append(
                f"session {self.session_id}: some WAV payloads could not be read and were kept "
                "as they are."
            )
        return BuiltSession(
            session_id=self.session_id,
            start_s=min(first_s, start_s) if isinstance(start_s, int | float) else first_s,
            items=items,
            user=user.take(~audio.dropped[: audio.users]),
            samples_dropped=dropped,
            warnings=self.warnings,
        )

    def _format_changes(self) -> list[tuple[int, AudioFormat, AudioFormat]]:
        events = [e for e in self.rows.events if e[1] == CONFIG]
        return format_changes(
            ((seq, name, content) for _, _, seq, _, name, _, content in events), self.provider
        )

    def _follow_events(self) -> None:
        for position, kind, seq, direction, event_type, item_id, content in self.rows.events:
            if kind != CONTROL:
                continue
            if event_type in _MOVES_STREAM:
                self.stream.append_before(position)
            if direction == "client":
                self._client_event(event_type, content)
            else:
                self._server_event(event_type, item_id, content, seq)

    def _client_event(self, event_type: str | None, content: str | None) -> None:
        if event_type == COMMIT:
            self.manual_commits.append(self.stream.clock_ms)
        elif event_type == CLEAR:
            self.stream.clear(self.commit_ms)
            self.client_clears += 1
        elif event_type == TRUNCATE:
            event = parse_event(content)
            item_id = event.get("item_id")
            played = milliseconds(event.get("audio_end_ms"))
            if isinstance(item_id, str) and played is not None:
                self.played_ms[item_id] = played

    def _server_event(
        self, event_type: str | None, item_id: str | None, content: str | None, seq: int
    ) -> None:
        if event_type == COMMITTED:
            self._commit(item_id, seq)
        elif event_type == SPEECH_STARTED:
            start = milliseconds(parse_event(content).get("audio_start_ms"))
            self.vad[item_id] = _Vad(start_ms=start)
        elif event_type == SPEECH_STOPPED:
            end = milliseconds(parse_event(content).get("audio_end_ms"))
            self.vad.setdefault(item_id, _Vad()).end_ms = end
        elif event_type == TIMEOUT_TRIGGERED:
            event = parse_event(content)
            start, end = (
                milliseconds(event.get("audio_start_ms")),
                milliseconds(event.get("audio_end_ms")),
            )
            self.vad[item_id] = _Vad(start, end)
        elif event_type == CLEARED:
            # The client's clear already emptied the buffer when it was sent; a `cleared` with
            # no clear before it was the server's own doing.
            if self.client_clears:
                self.client_clears -= 1
            else:
                self.stream.clear(self.commit_ms)

    def _commit(self, item_id: str | None, seq: int) -> None:
        vad = self.vad.pop(item_id, None) if item_id in self.vad else self.vad.pop(None, None)
        # A commit of an empty buffer gets an error, not a `committed`: skip those.
        while self.manual_commits and self.manual_commits[0] <= self.commit_ms:
            self.manual_commits.popleft()
        if vad is not None and vad.end_ms is not None:
            start = vad.start_ms if vad.start_ms is not None else self.commit_ms
            pieces = self.stream.slice(start, vad.end_ms)
            self.commit_ms = max(self.commit_ms, vad.end_ms)
        else:
            vad = None
            clock = self.stream.clock_ms
            end = self.manual_commits.popleft() if self.manual_commits else clock
            pieces = self.stream.slice(self.commit_ms, end)
            self.commit_ms = end
        if item_id is not None:
            self.user_pieces[item_id] = (pieces, vad)
            self._seen(item_id, seq)

    def _seen(self, item_id: str, seq: int) -> None:
        """Note a frame about the item: items are in the order they were first seen."""
        if seq < self.first_seen.get(item_id, seq + 1):
            self.first_seen[item_id] = seq

    def _entries(self) -> list[tuple[str, str, _Slices, _Vad | None]]:
        """(item id, role, pieces, VAD segment) of the items with audio, in conversation
        order."""
        entries: list[tuple[int, str, str, _Slices, _Vad | None]] = []
        for item_id, (pieces, vad) in self.user_pieces.items():
            entries.append((self.first_seen[item_id], item_id, "user", pieces, vad))
        for key, first, end in self.audio.items:
            ids = np.arange(first, end)
            pieces = (ids, np.zeros(len(ids), np.int64), self.audio.size[first:end])
            entries.append((self.first_seen[key], key, "assistant", pieces, None))
        entries.sort(key=lambda e: e[0])
        dropped = self.audio.dropped if self.audio.dropped.any() else None
        return [
            (item_id, role, pieces, vad)
            for _, item_id, role, pieces, vad in entries
            # no audio, or samples dropped
            if len(pieces[0]) and (dropped is None or not dropped[pieces[0]].any())
        ]

    def _items(self) -> list[ItemParts]:
        entries = self._entries()
        if not entries:
            return []
        # every item's pieces as one table: formats and sizes found for all at once
        pieces = self.audio.chunks.take(np.concatenate([ids for _, _, (ids, _, _), _ in entries]))
        pieces.end = pieces.start + np.concatenate([b for _, _, (_, _, b), _ in entries])
        pieces.start = pieces.start + np.concatenate([a for _, _, (_, a, _), _ in entries])
        bounds = [0, *np.cumsum([len(ids) for _, _, (ids, _, _), _ in entries]).tolist()]
        lowest = np.minimum.reduceat(pieces.fmt, bounds[:-1]).tolist()
        highest = np.maximum.reduceat(pieces.fmt, bounds[:-1]).tolist()
        data = pieces.segments_each(bounds)
        items: list[ItemParts] = []
        for i, (item_id, role, _, vad) in enumerate(entries):
            chunks = pieces.take(slice(bounds[i], bounds[i + 1]))
            fmt = pieces.formats[lowest[i]]
            if lowest[i] != highest[i]:
                fmt, chunks, data[i] = self._join_formats(item_id, chunks, data[i])
            size = sum(len(view) for view in data[i])
            if fmt.encoding == PCM16 and size % 2:
                self.warnings.append(
                    f"item {item_id}: {size} bytes is not a whole number of 16-bit samples."
                )
            items.append(
                ItemParts(
                    item_id=item_id,
                    role=role,
                    format=fmt,
                    chunks=chunks,
                    data=data[i],
                    played_ms=self.played_ms.get(item_id) if role == "assistant" else None,
                    audio_start_ms=vad.start_ms if vad else None,
                    audio_end_ms=vad.end_ms if vad else None,
                )
            )
        return items

    def _join_formats(
        self, item_id: str, pieces: Chunks, data: list[memoryview]
    ) -> tuple[AudioFormat, Chunks, list[memoryview]]:
        """An item whose audio changes format (its pieces and their bytes): decoded to pcm16 at
        the highest rate where it can be, else its parts as they are; with a warning."""
        formats = [pieces.formats[f] for f in np.unique(pieces.fmt).tolist()]
        if not all(f.encoding in DECODABLE for f in formats):
            self.warnings.append(
                f"item {item_id}: its audio changes format and cannot be decoded; "
                "its parts were joined as they are."
            )
            return pieces.formats[int(pieces.fmt[0])], pieces, data
        rate = max(f.sample_rate for f in formats)
        parts = [
            _pcm16_at(pieces.view(k), pieces.formats[f], rate)
            for k, f in enumerate(pieces.fmt.tolist())
        ]
        names = ", ".join(sorted(f"{f.encoding} {f.sample_rate} Hz" for f in formats))
        self.warnings.append(
            f"item {item_id}: its audio changes format ({names}); written as pcm16 {rate} Hz."
        )
        fmt = AudioFormat(PCM16, rate)
        joined = Chunks.back_to_back(parts, pieces.time_s, fmt)
        return fmt, joined, joined.buffers[:1]


# Events that read or move the input buffer: the stream must be up to date before them.
_MOVES_STREAM = frozenset({COMMIT, CLEAR, COMMITTED, CLEARED})


def _pcm16_at(data: memoryview | bytes | None, fmt: AudioFormat, rate: int) -> bytes:
    raw = bytes(data or b"")
    if fmt.encoding == PCM16 and len(raw) % 2:
        raw = raw[:-1]
    return resample_pcm16(to_pcm16(raw, fmt), fmt.sample_rate, rate)
