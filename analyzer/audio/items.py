"""Audio per conversation item, rebuilt from a capture's ``audio`` column.

Audio frames are never JSON-parsed: their decoded samples are in the ``audio`` column already.
Only the few events that say where a turn's audio starts and ends (session config, VAD, commit,
clear, truncate) are parsed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.audio.builder import SessionAudioBuilder
from analyzer.audio.columns import AUDIO_COLUMNS, FIRST_COLUMNS, META_COLUMNS, Frames, Pieces
from analyzer.audio.model import AudioCapture, BuiltSession, ItemAudio
from analyzer.schema import FRAME_SCHEMA, parse_file_metadata


@dataclass
class _Scan:
    """A capture read session by session."""

    warnings: list[str]  # the reader's
    session_ids: list[str]  # every session, in session id order
    sessions: Iterator[tuple[int, BuiltSession]]  # (index in session_ids, audio), in any order
    # a single Parquet capture: the sessions can also be built some at a time (see split)
    by_row_group: _ByRowGroup | None = None


def _facts_by_session(facts_list: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    for entry in facts_list:
        facts.setdefault(str(entry.get("session_id")), {}).update(entry)
    return facts


def _cast(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([FRAME_SCHEMA.field(c) for c in table.column_names]))


def _capture_files(paths: Sequence[Path]) -> list[Path]:
    """:func:`analyzer.reader.find_capture_files`, which is imported only when there is more to
    find than one file: the reader imports pandas (~0.3 s), which the audio does not use."""
    if len(paths) == 1 and paths[0].is_file():
        return [paths[0]]
    from analyzer.reader import find_capture_files

    return find_capture_files(paths)


def _open_capture(paths: Sequence[Path]) -> tuple[pq.ParquetFile, list[dict[str, Any]]] | None:
    """The one Parquet capture at ``paths``, when it is one that can be read row group by row
    group; None for anything else (journals, several files, unreadable: the reader decides)."""
    files = _capture_files(paths)
    if len(files) != 1 or files[0].suffix != ".parquet":
        return None
    try:
        pf = pq.ParquetFile(files[0])
    except (pa.ArrowInvalid, OSError):
        return None
    meta = parse_file_metadata(pf.metadata.metadata)
    if meta is None or any(c not in pf.schema_arrow.names for c in AUDIO_COLUMNS):
        return None
    return pf, meta["sessions"]


def _scan(paths: Sequence[Path]) -> _Scan:
    """Sessions as soon as their audio is read. A single Parquet capture is read one row group
    of samples at a time (see :class:`_ByRowGroup`)."""
    opened = _open_capture(paths)
    if opened is None:
        from analyzer.reader import read_tables

        table, facts_list, _, warnings = read_tables(list(paths), AUDIO_COLUMNS)
        frames = Frames(table.select(list(META_COLUMNS)))
        blobs = Pieces.of(table.column("audio"))
        return _Scan(warnings, frames.session_ids, _all_at_once(frames, blobs, facts_list))
    pf, facts_list = opened
    frames = Frames(_cast(pf.read(columns=list(FIRST_COLUMNS))))
    by_row_group = _ByRowGroup(pf, frames, facts_list)
    return _Scan([], frames.session_ids, by_row_group.sessions(), by_row_group)


def _all_at_once(
    frames: Frames, blobs: Pieces, facts_list: list[dict[str, Any]]
) -> Iterator[tuple[int, BuiltSession]]:
    facts = _facts_by_session(facts_list)
    for index, session_id in enumerate(frames.session_ids):
        yield (
            index,
            SessionAudioBuilder(frames.rows(index), blobs, facts.get(session_id, {})).build(),
        )


class _ByRowGroup:
    """A Parquet capture's sessions, read one row group of samples at a time (the next one in a
    thread while this one is assembled), each session built once its last row group is in and
    the samples forgotten when no session still needs them: memory follows the sessions open at
    one point of the file, not the capture."""

    def __init__(
        self, pf: pq.ParquetFile, frames: Frames, facts_list: list[dict[str, Any]]
    ) -> None:
        self.pf = pf
        self.frames = frames
        self.facts = _facts_by_session(facts_list)
        groups = pf.metadata.num_row_groups
        self.groups = groups
        sizes = [pf.metadata.row_group(g).num_rows for g in range(groups)]
        self.starts: list[int] = np.cumsum([0, *sizes]).tolist()
        self.first_group: list[int] = []  # per session: the first row group holding its frames
        self.done_group: list[int] = []  # and the last
        for index in range(len(frames)):
            low, high = frames.row_range(index)
            self.first_group.append(bisect_right(self.starts, low) - 1)
            self.done_group.append(bisect_right(self.starts, high) - 1)

    def audio_bytes(self) -> int:
        """The capture's audio, as sent."""
        return int(self.frames.audio_bytes.sum())

    def split(self, parts: int) -> list[list[int]]:
        """The sessions in ``parts`` runs of about equal audio, in the order their last row
        group comes (so each part reads a stretch of the file)."""
        order = sorted(range(len(self.frames)), key=self.done_group.__getitem__)
        audio = self.frames.session_audio_bytes()[order]
        ends = np.cumsum(audio)
        total = int(ends[-1]) if len(ends) else 0
        cuts = np.searchsorted(ends, [total * k / parts for k in range(1, parts)], side="left")
        bounds = [0, *(int(c) + 1 for c in cuts), len(order)]
        return [order[lo:hi] for lo, hi in pairwise(bounds)]

    def sessions(self, wanted: Sequence[int] | None = None) -> Iterator[tuple[int, BuiltSession]]:
        """The sessions (all, or those ``wanted``), each as soon as its row groups are read."""
        indexes = range(len(self.frames)) if wanted is None else wanted
        done_at: dict[int, list[int]] = {}  # row group -> the sessions complete once it is read
        for index in sorted(indexes):
            done_at.setdefault(self.done_group[index], []).append(index)
        if not done_at:
            return
        first = min(self.first_group[i] for i in indexes)
        last = max(done_at)
        # keep_from[g]: the first row group a session not complete after g still needs
        keep_from = dict.fromkeys(range(first, last + 1), last + 1)
        needed = last + 1
        for g in range(last, first - 1, -1):
            keep_from[g] = needed
            needed = min([needed] + [self.first_group[i] for i in done_at.get(g, [])])
        blobs = Pieces()
        frames, starts = self.frames, self.starts
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(self._read, first)
            for g in range(first, last + 1):
                table = ahead.result()
                if g < last:
                    ahead = pool.submit(self._read, g + 1)
                blobs.add(starts[g], table.column("audio"))
                frames.add_contents(starts[g], table.column("content"))
                del table
                for index in done_at.get(g, []):
                    session_facts = self.facts.get(frames.session_ids[index], {})
                    builder = SessionAudioBuilder(frames.rows(index), blobs, session_facts)
                    yield index, builder.build()
                blobs.drop_before(starts[min(keep_from[g], g + 1)])

    def _read(self, group: int) -> pa.Table:
        table = self.pf.read_row_group(group, columns=["audio", "content"], use_threads=False)
        audio = table.column("audio")
        audio_type = FRAME_SCHEMA.field("audio").type
        if audio.type == audio_type:
            return table
        return table.set_column(0, "audio", audio.cast(audio_type))


def _collect(scan: _Scan) -> AudioCapture:
    built = sorted(scan.sessions, key=lambda entry: entry[0])
    sessions = [session.audio() for _, session in built]
    warnings = list(scan.warnings)
    for session in sessions:
        warnings.extend(session.warnings)
    sessions.sort(key=lambda s: s.start_s)
    return AudioCapture(sessions, warnings)


def load_audio(paths: Sequence[Path] | Path) -> AudioCapture:
    """The audio of every session of the captures at ``paths``: items, the user's stream, and
    warnings. Raises :class:`analyzer.reader.CaptureError`."""
    if isinstance(paths, Path):
        paths = [paths]
    return _collect(_scan(list(paths)))


def load_item_audio(paths: Sequence[Path] | Path) -> list[ItemAudio]:
    """One entry per conversation item that carries audio, sessions in start order, items in
    conversation order. Items whose samples were not recorded (rt_audio=drop) are left out;
    :func:`load_audio` says so in its warnings."""
    return [item for session in load_audio(paths).sessions for item in session.items]
