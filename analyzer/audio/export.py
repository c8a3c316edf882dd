"""Write a capture's audio to files: one per conversation item, one stereo mix per session."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.audio.items import scan
from analyzer.audio.model import DECODABLE, AudioCapture, ItemAudio, SessionAudio
from analyzer.audio.private import PrivatePaths
from analyzer.audio.timeline import STEREO_RATE_HZ, session_stereo
from analyzer.audio.wav import wav_header, wav_padding
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


_IOV_MAX = 1024  # buffers one writev takes (Linux's IOV_MAX)


def _write(paths: PrivatePaths, path: Path, parts: _Parts) -> None:
    """One private file from its parts, without joining them (an existing file is
    overwritten in place and cut to size: see PrivatePaths.file)."""
    fd, existed = paths.file(path)
    try:
        views = [memoryview(part).cast("B") for part in parts if len(part)]
        if existed:
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


def _item_name(item: ItemAudio, width: int) -> str:
    return f"{item.index:0{width}d}-{item.role}-{_safe(item.item_id)}.{item.extension}"


def _item_parts(item: ItemAudio) -> _Parts:
    """The file: a WAV holding the samples byte for byte, or the samples as they are."""
    if item.format.encoding not in DECODABLE:
        return item.parts or (item.raw,)
    data = item.parts or (item.raw,)
    size, fmt = sum(len(part) for part in data), item.format
    return (wav_header(size, fmt.sample_rate, 1, fmt.encoding), *data, wav_padding(size))


def _export_session(
    paths: PrivatePaths, session: SessionAudio, directory: Path, result: ExportResult
) -> None:
    """Write the session's files; their paths and warnings go to ``result``."""
    paths.directory(directory)
    width = max(2, len(str(len(session.items))))  # so the files sort in conversation order
    for item in session.items:
        path = directory / _item_name(item, width)
        _write(paths, path, _item_parts(item))
        result.files.append(path)
        if item.format.encoding not in DECODABLE:
            result.warnings.append(
                f"item {item.item_id}: {item.format.encoding} audio is written as is and left "
                f"out of {STEREO_FILE}."
            )
    mix = session_stereo(session, STEREO_RATE_HZ)
    if not len(mix):
        return  # nothing it could hold (mp3 only)
    if mix.nbytes > _MAX_WAV_DATA:
        result.warnings.append(
            f"session {session.session_id}: the stereo mix is over 4 GB, too long for a WAV "
            "file; only the per-item files were written."
        )
        return
    path = directory / STEREO_FILE
    _write(paths, path, (wav_header(mix.nbytes, STEREO_RATE_HZ, 2), mix.reshape(-1).data))
    result.files.append(path)


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


def _export(
    sessions: Iterable[SessionAudio],
    ids: Sequence[str],
    out_dir: Path,
    progress: bool,
    warnings: list[str] | None,
) -> ExportResult:
    """Write every session with audio; files in session start order. Warnings: ``warnings``
    (None: the sessions' own), then the export's."""
    make_private_dir(out_dir)
    dirs = session_dirs(ids)
    paths = PrivatePaths()
    done: list[tuple[float, list[str], ExportResult]] = []
    with _progress(progress, len(ids)) as bar:
        for session in sessions:
            part = ExportResult()
            if session.has_audio:
                _export_session(paths, session, out_dir / dirs[session.session_id], part)
            done.append((session.start_s, session.warnings, part))
            if bar is not None:
                bar.advance(bar.task_ids[0])
    result = ExportResult(warnings=warnings or [])
    if warnings is None:
        for _, own, _ in done:
            result.warnings.extend(own)
    for _, _, part in sorted(done, key=lambda d: d[0]):
        result.files.extend(part.files)
        result.warnings.extend(part.warnings)
    return result


def export_capture_audio(
    capture: AudioCapture, out_dir: Path, progress: bool = False
) -> ExportResult:
    """:func:`export_audio` for audio already loaded."""
    ids = [s.session_id for s in capture.sessions]
    return _export(capture.sessions, ids, out_dir, progress, list(capture.warnings))


def export_audio(
    paths: Sequence[Path],
    out_dir: Path,
    progress: bool = False,
    sessions: Collection[str] | None = None,
) -> ExportResult:
    """Write ``<session>/<NN>-<role>-<item_id>.wav`` for every item that carries audio (samples
    byte for byte as sent: pcm16, or G.711 µ-law/A-law WAV; mp3 as ``.mp3``) and
    ``<session>/session-stereo.wav`` (user left, reply right, 24 kHz) under ``out_dir``, for
    every protocol. The directory is private (0700) and the files 0600: they hold people's
    voices. Raises :class:`analyzer.reader.CaptureError`.

    Sessions are read, written and forgotten one after the other (see
    :mod:`analyzer.audio.source`), so memory follows the biggest sessions, not the capture;
    the files are those :func:`export_capture_audio` of :func:`load_audio` writes. With
    ``sessions``, only those sessions (the CLI's filters chose them)."""
    capture, found = scan(list(paths), join=False, sessions=sessions)
    result = _export(found, capture.session_ids, out_dir, progress, None)
    return ExportResult(result.files, [*capture.warnings, *result.warnings])
