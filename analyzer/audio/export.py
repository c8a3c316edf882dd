"""Write a capture's audio to files: one per conversation item, one stereo mix per session."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from analyzer.audio.items import DECODABLE, AudioCapture, SessionAudio, load_audio
from analyzer.audio.timeline import STEREO_RATE_HZ, session_stereo
from analyzer.audio.wav import wav_header
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


def _write(path: Path, *parts: bytes | memoryview) -> None:
    with os.fdopen(open_private(path), "wb") as f:
        for part in parts:
            f.write(part)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    with Progress(console=Console(stderr=True), transient=True) as bar:
        bar.add_task("Writing audio", total=total)
        yield bar


def _export_session(
    session: SessionAudio, directory: Path, result: ExportResult, bar: Progress | None
) -> None:
    make_private_dir(directory)
    width = max(2, len(str(len(session.items))))  # so the files sort in conversation order
    for item in session.items:
        name = f"{item.index:0{width}d}-{item.role}-{_safe(item.item_id)}.{item.extension}"
        path = directory / name
        _write(path, item.file_bytes())
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
        return  # nothing it could hold (mp3 only)
    if mix.nbytes > _MAX_WAV_DATA:
        result.warnings.append(
            f"session {session.session_id}: the stereo mix is over 4 GB, too long for a WAV "
            "file; only the per-item files were written."
        )
        return
    path = directory / STEREO_FILE
    _write(path, wav_header(mix.nbytes, STEREO_RATE_HZ, 2), mix.view(np.uint8).reshape(-1).data)
    result.files.append(path)


def export_capture_audio(
    capture: AudioCapture, out_dir: Path, progress: bool = False
) -> ExportResult:
    """:func:`export_audio` for audio already loaded."""
    result = ExportResult(warnings=list(capture.warnings))
    make_private_dir(out_dir)
    dirs = session_dirs([s.session_id for s in capture.sessions])
    todo = [s for s in capture.sessions if s.items or s.user_stream]
    with _progress(progress, sum(len(s.items) + 1 for s in todo)) as bar:
        for session in todo:
            _export_session(session, out_dir / dirs[session.session_id], result, bar)
            if bar is not None:
                bar.advance(bar.task_ids[0])
    return result


def export_audio(paths: Sequence[Path], out_dir: Path, progress: bool = False) -> ExportResult:
    """Write ``<session>/<NN>-<role>-<item_id>.wav`` for every item that carries audio (samples
    byte for byte as sent: pcm16, or G.711 µ-law/A-law WAV; mp3 as ``.mp3``) and
    ``<session>/session-stereo.wav`` (user left, assistant right, 24 kHz) under ``out_dir``.
    The directory is private (0700) and the files 0600: they hold people's voices. Raises
    :class:`analyzer.reader.CaptureError`."""
    return export_capture_audio(load_audio(list(paths)), out_dir, progress)
