"""Write a capture's audio to files: one per conversation item, one stereo mix per session."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from analyzer.audio.items import DECODABLE, AudioCapture, ItemAudio, SessionAudio, _scan
from analyzer.audio.timeline import STEREO_RATE_HZ, session_stereo
from analyzer.audio.wav import wav_header, wav_padding
from analyzer.recording.writers import make_private_dir, open_private

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
    return {
        sid: prefix if prefixes.count(prefix) == 1 else _safe(sid)
        for sid, prefix in zip(session_ids, prefixes, strict=True)
    }


_Job = tuple[Path, list[tuple[Path, tuple[bytes | memoryview, ...]]]]
# Sessions whose files may wait for the writer thread at once (their audio stays in memory).
_QUEUED_SESSIONS = 4


def _write(path: Path, *parts: bytes | memoryview) -> None:
    with os.fdopen(open_private(path), "wb") as f:
        for part in parts:
            f.write(part)


def _write_session(job: _Job) -> None:
    directory, files = job
    make_private_dir(directory)
    for path, parts in files:
        _write(path, *parts)


class _Writer:
    """Writes each session's files in a thread while the next session is assembled (creating
    and writing files mostly waits on the kernel, without the GIL)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: deque[Future[None]] = deque()

    def submit(self, job: _Job) -> None:
        self._pending.append(self._pool.submit(_write_session, job))
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
    with Progress(console=Console(stderr=True), transient=True) as bar:
        bar.add_task("Writing audio", total=total)
        yield bar


def _item_parts(item: ItemAudio) -> tuple[bytes | memoryview, ...]:
    """:meth:`ItemAudio.file_bytes` in pieces, so the samples are not copied once more."""
    if item.format.encoding in DECODABLE:
        size = len(item.raw)
        header = wav_header(size, item.format.sample_rate, 1, item.format.encoding)
        return (header, item.raw, wav_padding(size))
    return (item.raw,)


def _export_session(
    session: SessionAudio, directory: Path, result: ExportResult, bar: Progress | None
) -> _Job:
    """The session's files (written by the caller); warnings and paths go to ``result``."""
    files: list[tuple[Path, tuple[bytes | memoryview, ...]]] = []
    width = max(2, len(str(len(session.items))))  # so the files sort in conversation order
    for item in session.items:
        name = f"{item.index:0{width}d}-{item.role}-{_safe(item.item_id)}.{item.extension}"
        path = directory / name
        files.append((path, _item_parts(item)))
        result.files.append(path)
        if bar is not None:
            bar.advance(bar.task_ids[0])
        if item.format.encoding not in DECODABLE:
            result.warnings.append(
                f"item {item.item_id}: {item.format.encoding} audio is written as is and left "
                f"out of {STEREO_FILE}."
            )
    mix = session_stereo(session, STEREO_RATE_HZ)
    if not len(mix):
        return directory, files  # nothing it could hold (mp3 only)
    if mix.nbytes > _MAX_WAV_DATA:
        result.warnings.append(
            f"session {session.session_id}: the stereo mix is over 4 GB, too long for a WAV "
            "file; only the per-item files were written."
        )
        return directory, files
    path = directory / STEREO_FILE
    header = wav_header(mix.nbytes, STEREO_RATE_HZ, 2)
    files.append((path, (header, mix.view(np.uint8).reshape(-1).data)))
    result.files.append(path)
    return directory, files


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


def export_audio(paths: Sequence[Path], out_dir: Path, progress: bool = False) -> ExportResult:
    """Write ``<session>/<NN>-<role>-<item_id>.wav`` for every item that carries audio (samples
    byte for byte as sent: pcm16, or G.711 µ-law/A-law WAV; mp3 as ``.mp3``) and
    ``<session>/session-stereo.wav`` (user left, assistant right, 24 kHz) under ``out_dir``.
    The directory is private (0700) and the files 0600: they hold people's voices. Raises
    :class:`analyzer.reader.CaptureError`.

    Sessions are read, written and forgotten one after the other (see :func:`items._scan`), so
    memory follows the biggest sessions, not the capture; the result is the same as
    :func:`export_capture_audio` of :func:`load_audio`."""
    scan = _scan(list(paths))
    make_private_dir(out_dir)
    dirs = session_dirs(scan.session_ids)
    # per session, by its index in scan.session_ids: (start_s, its own warnings, export's)
    done: dict[int, tuple[float, list[str], ExportResult]] = {}
    with _progress(progress, len(scan.session_ids)) as bar, _writer() as writer:
        for index, session in scan.sessions:
            part = ExportResult()
            if session.items or session.user_stream:
                directory = out_dir / dirs[session.session_id]
                writer.submit(_export_session(session, directory, part, None))
            done[index] = (session.start_s, session.warnings, part)
            if bar is not None:
                bar.advance(bar.task_ids[0])
    result = ExportResult(warnings=list(scan.warnings))
    for index in sorted(done):
        result.warnings.extend(done[index][1])
    for index in sorted(sorted(done), key=lambda i: done[i][0]):  # in start order, as loaded
        result.files.extend(done[index][2].files)
        result.warnings.extend(done[index][2].warnings)
    return result
