"""One recording run: its journal, its Parquet file, the facts of its sessions and its counts."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.private_files import make_private_dir
from analyzer.protocols import AudioPathsOf, audio_paths_for
from analyzer.recording.frames import FrameRecord
from analyzer.recording.live import LiveTurnLog
from analyzer.recording.naming import new_run_id
from analyzer.recording.normalize import SessionDecoders
from analyzer.recording.session import refine_facts
from analyzer.recording.writers import JournalWriter, ParquetSink, journal_bytes
from analyzer.schema import file_metadata

log = logging.getLogger(__name__)

# batch_frames: journal lines held back at most this many bytes before they are written.
JOURNAL_BATCH_BYTES = 256 * 1024


@dataclass
class RunCounts:
    sessions: int = 0
    frames_recorded: int = 0
    frames_not_recorded: int = 0  # lost to write errors (disk full, directory gone...)
    frames_with_problems: int = 0
    write_errors: int = 0
    last_error: str | None = None
    by_problem: dict[str, int] = field(default_factory=dict)


class RunRecorder:
    """Owns the files of one run; files are created when the first session starts.

    Each frame's journal line is written at once, unless ``batch_frames``: then frames are held
    until :meth:`flush` (or JOURNAL_BATCH_BYTES) and their lines written with one ``write``. The
    writer process flushes whenever it has no more input waiting, so a batch only forms while
    frames queue up, and nothing it has read waits for a write when it is idle.
    """

    def __init__(self, directory: Path, run_id: str | None = None, batch_frames: bool = False):
        self.directory = directory
        self.run_id = run_id or new_run_id()
        self.batch_frames = batch_frames
        self.sessions: dict[str, dict[str, Any]] = {}
        self.counts = RunCounts()
        self.closed = False
        self._journal: JournalWriter | None = None
        self._parquet: ParquetSink | None = None
        self._held_lines: list[bytes] = []
        self._held_frames: list[FrameRecord] = []
        self._held_bytes = 0
        self._decoders = SessionDecoders(self.sessions)
        self._audio_paths: dict[str, AudioPathsOf] = {}
        # The rt_live_log option: a line logged per reply, from the events decoded here.
        self.turn_lines: LiveTurnLog | None = None

    def log_turns(self, on: bool) -> None:
        """Log a line per reply (the ``rt_live_log`` option) from now on, or stop."""
        if on != (self.turn_lines is not None):
            self.turn_lines = LiveTurnLog() if on else None

    @property
    def journal_path(self) -> Path:
        return self.directory / f"{self.run_id}.jsonl"

    @property
    def parquet_path(self) -> Path:
        return self.directory / f"{self.run_id}.parquet"

    def _open(self) -> None:
        if self._journal is None:
            make_private_dir(self.directory)
            self._journal = JournalWriter(self.journal_path)
            self._parquet = ParquetSink(self.parquet_path)
            log.info("rt-analyze: recording to %s (.jsonl, .parquet)", self.directory / self.run_id)

    def _journal_write(self, record: dict[str, Any]) -> bool:
        """Write one journal record (after the frames held before it)."""
        self.flush()
        line = journal_bytes(record)
        return self._journal_write_lines(line) == len(line)

    def _journal_write_lines(self, lines: bytes) -> int:
        """Write journal lines; how many bytes of them were written. On an OS error say so
        loudly, count it, and go on."""
        try:
            self._open()
            assert self._journal is not None
            self._journal.write_lines(lines)
            return len(lines)
        except OSError as exc:
            self.counts.write_errors += 1
            self.counts.last_error = f"{type(exc).__name__}: {exc}"
            if self.counts.write_errors == 1 or self.counts.write_errors % 1000 == 0:
                log.error(
                    "rt-analyze: cannot write the capture in %s (%s); traffic still flows but is "
                    "NOT being recorded (%d write errors so far)",
                    self.directory,
                    exc,
                    self.counts.write_errors,
                )
            return int(getattr(exc, "bytes_written", 0))

    def start_session(self, facts: dict[str, Any]) -> None:
        if self.closed:
            return
        self.sessions[facts["session_id"]] = facts
        self._decoders.start(facts)
        self._audio_paths[facts["session_id"]] = audio_paths_for(facts)
        self.counts.sessions += 1
        self._journal_write({"record": "session_start", **facts})

    def audio_paths(self, session_id: str) -> AudioPathsOf | None:
        """Where the protocol of a session started here carries audio (for ``build_frame``)."""
        return self._audio_paths.get(session_id)

    def record_frame(self, rec: FrameRecord) -> bool:
        """Journal the frame now and queue it for Parquet. False when it could not be recorded."""
        if self.closed:
            self.counts.frames_not_recorded += 1
            return False
        facts = self.sessions.get(rec.session_id)
        if facts is not None:
            refine_facts(facts, rec)
        line = journal_bytes(rec.journal_line())
        if self.batch_frames:
            self._held_lines.append(line)
            self._held_frames.append(rec)
            self._held_bytes += len(line)
            if self._held_bytes >= JOURNAL_BATCH_BYTES:
                self.flush()
            return True
        if self._journal_write_lines(line) < len(line):
            self.counts.frames_not_recorded += 1
            return False
        self._recorded(rec)
        return True

    def flush(self) -> None:
        """Write the frames held by ``batch_frames``: their journal lines, then to Parquet (a
        frame whose line could not be written is not recorded, as without batching)."""
        if not self._held_frames:
            return
        lines, frames = self._held_lines, self._held_frames
        self._held_lines, self._held_frames, self._held_bytes = [], [], 0
        left = self._journal_write_lines(b"".join(lines))
        for line, rec in zip(lines, frames, strict=True):
            left -= len(line)
            if left >= 0:
                self._recorded(rec)
            else:  # the disk failed before (or within) its line
                self.counts.frames_not_recorded += 1

    def _recorded(self, rec: FrameRecord) -> None:
        assert self._parquet is not None
        rec.events = self._decoders.events(rec)
        self._parquet.append(rec)
        if self.turn_lines is not None and (line := self.turn_lines.observe(rec)):
            log.info(line)
        self.counts.frames_recorded += 1
        if rec.problem:
            self.counts.frames_with_problems += 1
            self.counts.by_problem[rec.problem] = self.counts.by_problem.get(rec.problem, 0) + 1

    def end_session(self, session_id: str, **end_facts: Any) -> None:
        facts = self.sessions.get(session_id)
        if facts is None or self.closed or facts.get("end_s") is not None:
            return
        # Frames held for batching belong before the end: decoded by the session's decoder
        # (with its state), journaled before its session_end line.
        self.flush()
        facts.update(end_facts)
        self._decoders.end(session_id)
        self._audio_paths.pop(session_id, None)
        if self.turn_lines is not None:
            self.turn_lines.forget(session_id)
        learned = {"model": facts.get("model"), "dialect": facts.get("dialect")}
        self._journal_write(
            {"record": "session_end", "session_id": session_id, **learned, **end_facts}
        )

    def summary(self) -> dict[str, Any]:
        c = self.counts
        return {
            "run_id": self.run_id,
            "sessions": c.sessions,
            "frames_recorded": c.frames_recorded,
            "frames_not_recorded": c.frames_not_recorded,
            "frames_with_problems": c.frames_with_problems,
            "problems": dict(c.by_problem),
            "write_errors": c.write_errors,
            "last_error": c.last_error,
        }

    def close(self, end_open_sessions_reason: str = "proxy shut down") -> dict[str, Any]:
        """End sessions still open, write the run summary and the Parquet footer."""
        if self.closed:
            return self.summary()
        self.flush()
        now = time.time()
        for session_id, facts in self.sessions.items():
            if facts.get("end_s") is None:
                self.end_session(session_id, end_s=now, close_reason=end_open_sessions_reason)
        summary = self.summary()
        if self._journal is not None:
            self._journal_write({"record": "run_end", "time_s": now, **summary})
            self._journal.close()
        if self._parquet is not None:
            try:
                self._parquet.close(file_metadata(self.run_id, list(self.sessions.values())))
            except OSError as exc:
                log.error("rt-analyze: could not finish %s: %s", self.parquet_path, exc)
            self.counts.frames_not_recorded += self._parquet.rows_failed
        self.closed = True
        if self._journal is not None:
            log.info(
                "rt-analyze: run %s closed: %d sessions, %d frames recorded, %d not recorded",
                self.run_id,
                summary["sessions"],
                summary["frames_recorded"],
                self.counts.frames_not_recorded,
            )
        return summary
