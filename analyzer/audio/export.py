"""Write a capture's audio to files: one per conversation item, one stereo mix per session."""

from __future__ import annotations

import os
import re
from collections import Counter, deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from analyzer.audio.forked import Forked, can_fork
from analyzer.audio.items import _Scan, _scan
from analyzer.audio.model import (
    DECODABLE,
    AudioCapture,
    BuiltSession,
    ItemAudio,
    ItemParts,
    SessionAudio,
)
from analyzer.audio.private import PrivatePaths
from analyzer.audio.timeline import STEREO_RATE_HZ, built_stereo, session_stereo
from analyzer.audio.wav import wav_header, wav_padding
from analyzer.formats import MP3, AudioFormat
from analyzer.private_files import make_private_dir

if TYPE_CHECKING:
    from rich.progress import Progress

STEREO_FILE = "session-stereo.wav"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_WAV_DATA = 0xFFFFFFFF - 64


@dataclass
class ExportResult:
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip(".") or "_"


def session_dirs(session_ids: Sequence[str], length: int = 8) -> dict[str, str]:
    """A short directory name per session: its id's first ``length`` characters, or the whole
    id where two sessions would share a prefix."""
    prefixes = [_safe(sid)[:length] for sid in session_ids]
    counts = Counter(prefixes)
    return {
        sid: prefix if counts[prefix] == 1 else _safe(sid)
        for sid, prefix in zip(session_ids, prefixes, strict=True)
    }


_Parts = tuple[bytes | memoryview, ...]
_Job = tuple[Path, list[tuple[Path, _Parts]]]  # a session's directory and files
# Sessions whose files may wait for the writer thread at once (their audio stays in memory).
_QUEUED_SESSIONS = 4
_IOV_MAX = 1024  # buffers one writev takes (Linux's IOV_MAX)


def _write(paths: PrivatePaths, path: Path, parts: _Parts) -> None:
    """One file from its parts, in as few system calls as the kernel takes (no joining)."""
    fd, existed = paths.file(path)
    try:
        views = [memoryview(part).cast("B") for part in parts if len(part)]
        if existed:  # overwritten in place, then cut to size: see PrivatePaths.file
            os.ftruncate(fd, sum(len(view) for view in views))
        first = 0
        while first < len(views):
            written = os.writev(fd, views[first : first + _IOV_MAX])
            while first < len(views) and written >= len(views[first]):
                written -= len(views[first])
                first += 1
            if written:  # a short write: go on from where it stopped
                views[first] = views[first][written:]
    finally:
        os.close(fd)


def _write_session(paths: PrivatePaths, job: _Job) -> None:
    directory, files = job
    paths.directory(directory)
    for path, parts in files:
        _write(paths, path, parts)


class _Writer:
    """Writes each session's files in a thread while the next session is assembled (creating
    and writing files mostly waits on the kernel, without the GIL). One thread: more, or mixing
    there too, costs more in handing the GIL around than it saves."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: deque[Future[None]] = deque()
        self._paths = PrivatePaths()

    def submit(self, job: _Job) -> None:
        self._pending.append(self._pool.submit(_write_session, self._paths, job))
        while len(self._pending) > _QUEUED_SESSIONS:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)


@contextmanager
def _writer() -> Iterator[_Writer]:
    writer = _Writer()
    try:
        yield writer
    finally:
        writer.close()


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console  # only here: rich takes ~30 ms to import
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        bar.add_task("Writing audio", total=total)
        yield bar


@dataclass(frozen=True, slots=True)
class _ItemFile:
    """What an item's file is made of."""

    index: int
    role: str
    item_id: str
    format: AudioFormat
    data: _Parts  # the samples as sent, in pieces
    size: int

    @classmethod
    def of(cls, item: ItemAudio) -> _ItemFile:
        return cls(item.index, item.role, item.item_id, item.format, (item.raw,), len(item.raw))

    @classmethod
    def of_parts(cls, index: int, item: ItemParts) -> _ItemFile:
        return cls(index, item.role, item.item_id, item.format, tuple(item.data), item.size)

    def name(self, width: int) -> str:
        encoding = self.format.encoding
        extension = "wav" if encoding in DECODABLE else "mp3" if encoding == MP3 else "bin"
        return f"{self.index:0{width}d}-{self.role}-{_safe(self.item_id)}.{extension}"

    def parts(self) -> _Parts:
        """The file: a WAV holding the samples byte for byte, or the samples as they are."""
        if self.format.encoding not in DECODABLE:
            return self.data
        fmt = self.format
        header = wav_header(self.size, fmt.sample_rate, 1, fmt.encoding)
        return (header, *self.data, wav_padding(self.size))


def _session_job(
    session_id: str,
    items: Sequence[_ItemFile],
    mix: npt.NDArray[np.int16],
    directory: Path,
    result: ExportResult,
    bar: Progress | None,
) -> _Job:
    """The session's files (written by the caller); warnings and paths go to ``result``."""
    files: list[tuple[Path, _Parts]] = []
    width = max(2, len(str(len(items))))  # so the files sort in conversation order
    for item in items:
        path = directory / item.name(width)
        files.append((path, item.parts()))
        result.files.append(path)
        if bar is not None:
            bar.advance(bar.task_ids[0])
        if item.format.encoding not in DECODABLE:
            result.warnings.append(
                f"item {item.item_id}: {item.format.encoding} audio is written as is and left "
                f"out of {STEREO_FILE}."
            )
    if not len(mix):
        return directory, files  # nothing it could hold (mp3 only)
    if mix.nbytes > _MAX_WAV_DATA:
        result.warnings.append(
            f"session {session_id}: the stereo mix is over 4 GB, too long for a WAV "
            "file; only the per-item files were written."
        )
        return directory, files
    path = directory / STEREO_FILE
    header = wav_header(mix.nbytes, STEREO_RATE_HZ, 2)
    files.append((path, (header, mix.view(np.uint8).reshape(-1).data)))
    result.files.append(path)
    return directory, files


def _export_session(
    session: SessionAudio, directory: Path, result: ExportResult, bar: Progress | None
) -> _Job:
    items = [_ItemFile.of(item) for item in session.items]
    mix = session_stereo(session, STEREO_RATE_HZ)
    return _session_job(session.session_id, items, mix, directory, result, bar)


def _export_built(session: BuiltSession, directory: Path, result: ExportResult) -> _Job:
    items = [_ItemFile.of_parts(i + 1, item) for i, item in enumerate(session.items)]
    mix = built_stereo(session, STEREO_RATE_HZ)
    return _session_job(session.session_id, items, mix, directory, result, None)


def export_capture_audio(
    capture: AudioCapture, out_dir: Path, progress: bool = False
) -> ExportResult:
    """:func:`export_audio` for audio already loaded."""
    result = ExportResult(warnings=list(capture.warnings))
    make_private_dir(out_dir)
    dirs = session_dirs([s.session_id for s in capture.sessions])
    todo = [s for s in capture.sessions if s.items or s.user_stream]
    with _progress(progress, sum(len(s.items) + 1 for s in todo)) as bar, _writer() as writer:
        for session in todo:
            writer.submit(_export_session(session, out_dir / dirs[session.session_id], result, bar))
            if bar is not None:
                bar.advance(bar.task_ids[0])
    return result


def export_audio(
    paths: Sequence[Path],
    out_dir: Path,
    progress: bool = False,
    sessions: Collection[str] | None = None,
) -> ExportResult:
    """Write ``<session>/<NN>-<role>-<item_id>.wav`` for every item that carries audio (samples
    byte for byte as sent: pcm16, or G.711 µ-law/A-law WAV; mp3 as ``.mp3``) and
    ``<session>/session-stereo.wav`` (user left, assistant right, 24 kHz) under ``out_dir``.
    The directory is private (0700) and the files 0600: they hold people's voices. Raises
    :class:`analyzer.reader.CaptureError`.

    Sessions are read, written and forgotten one after the other (see :func:`items._scan`), so
    memory follows the biggest sessions, not the capture; the result is the same as
    :func:`export_capture_audio` of :func:`load_audio`. A big Parquet capture is split in two
    stretches of the file where there are two CPUs, the second exported by a forked process."""
    scan = _scan(list(paths))
    if sessions is not None:
        scan = _only(scan, sessions)
    make_private_dir(out_dir)
    dirs = session_dirs(scan.session_ids)
    with _progress(progress, len(scan.session_ids)) as bar:
        done = _export_scan(scan, out_dir, dirs, bar)
    result = ExportResult(warnings=list(scan.warnings))
    for index in sorted(done):
        result.warnings.extend(done[index][1])
    for index in sorted(sorted(done), key=lambda i: done[i][0]):  # in start order, as loaded
        result.files.extend(done[index][2].files)
        result.warnings.extend(done[index][2].warnings)
    return result


def _only(scan: _Scan, sessions: Collection[str]) -> _Scan:
    """``scan`` with only these sessions (the CLI's filters chose them)."""
    wanted = [i for i, sid in enumerate(scan.session_ids) if sid in sessions]
    if scan.by_row_group is not None:
        return replace(scan, sessions=scan.by_row_group.sessions(wanted), by_row_group=None)
    keep = set(wanted)
    return replace(scan, sessions=((i, s) for i, s in scan.sessions if i in keep))


# per session, by its index in the scan's session ids: (start_s, its own warnings, export's)
_Done = dict[int, tuple[float, list[str], ExportResult]]
# Audio (bytes as sent) a capture must have for a second process to pay: forking and reading
# its stretch of the file cost ~20 ms.
SPLIT_MIN_BYTES = 32 * 2**20


def _export_scan(scan: _Scan, out_dir: Path, dirs: dict[str, str], bar: Progress | None) -> _Done:
    by_row_group = scan.by_row_group
    if by_row_group is None or not can_fork() or by_row_group.audio_bytes() < SPLIT_MIN_BYTES:
        return _export_sessions(scan.sessions, out_dir, dirs, bar)
    mine, theirs = by_row_group.split(2)
    # Two processes, not threads: the work is Python holding the GIL, and the writer thread
    # waits for it after each system call.
    try:
        other = Forked(lambda: _export_sessions(by_row_group.sessions(theirs), out_dir, dirs, None))
    except OSError:  # no process to be had (limits, memory): all in this one
        return _export_sessions(scan.sessions, out_dir, dirs, bar)
    try:
        done = _export_sessions(by_row_group.sessions(mine), out_dir, dirs, bar)
    except BaseException:
        other.cancel()
        raise
    done.update(other.result())
    if bar is not None:
        bar.advance(bar.task_ids[0], len(theirs))
    return done


def _export_sessions(
    sessions: Iterable[tuple[int, BuiltSession]],
    out_dir: Path,
    dirs: dict[str, str],
    bar: Progress | None,
) -> _Done:
    done: _Done = {}
    with _writer() as writer:
        for index, session in sessions:
            part = ExportResult()
            if session.items or len(session.user):
                directory = out_dir / dirs[session.session_id]
                writer.submit(_export_built(session, directory, part))
            done[index] = (session.start_s, session.warnings, part)
            if bar is not None:
                bar.advance(bar.task_ids[0])
    return done
