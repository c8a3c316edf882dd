"""Rebuild a run's Parquet file from its journal (after a crash, or to re-derive columns)."""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.jsonio import loads_json
from analyzer.protocols import AudioPathsOf, audio_paths_for
from analyzer.recording.frames import FrameRecord, apply_text
from analyzer.recording.session import refine_facts
from analyzer.schema import file_metadata

log = logging.getLogger(__name__)


class JournalError(ValueError):
    """The file is not a capture journal."""


@dataclass
class JournalFacts:
    """What a journal says besides its frames: small, so a streaming read keeps it whole."""

    run_id: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_end: dict[str, Any] | None = None
    torn_last_line: bool = False
    bad_lines: list[int] = field(default_factory=list)
    frame_count: int = 0
    # Sessions whose session_end line was read since the consumer last emptied this list: a
    # streaming consumer drops their decoding state before the next frame, as the recorder did
    # when it wrote that line (a 1 GB journal's ~1,000 sessions held ~0.5 MB each till the end).
    ended: list[str] = field(default_factory=list)


@dataclass
class Journal(JournalFacts):
    """A whole journal in memory, for readers of journals; ``convert`` streams its frames."""

    frames: list[FrameRecord] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            yield number, raw, raw.endswith(b"\n")


def frame_from_journal(
    line: dict[str, Any], keep_audio: bool, audio_paths: AudioPathsOf | None = None
) -> FrameRecord:
    """The FrameRecord a journal line stands for, Parquet-only columns derived again."""
    rec = FrameRecord(
        session_id=line["session_id"],
        seq=int(line["seq"]),
        time_s=float(line["time_s"]),
        direction=line["direction"],
        opcode=line["opcode"],
        frame_bytes=int(line["frame_bytes"]),
    )
    if line.get("binary_content_b64") is not None:
        rec.binary_content = base64.b64decode(line["binary_content_b64"])
        rec.problem = line.get("problem")
        return rec
    content = line.get("content")
    if content is not None:
        apply_text(
            rec,
            content,
            keep_audio,
            audio_bytes=line.get("audio_bytes"),
            audio_b64_bytes=line.get("audio_b64_bytes"),
            audio_paths=audio_paths,
        )
    return rec


def iter_journal(path: Path, facts: JournalFacts) -> Iterator[FrameRecord]:
    """The journal's frames one at a time, in file order, while ``facts`` is filled in: complete
    once the frames are exhausted. A torn last line (crash mid-write) is skipped; other bad
    lines are skipped and listed. Raises JournalError, at the end, when nothing in the file
    looks like a capture."""
    keep_audio: dict[str, bool] = {}
    audio_paths: dict[str, AudioPathsOf] = {}
    last_number = 0
    pending_bad: list[tuple[int, bool]] = []
    for number, raw, complete in _lines(path):
        last_number = number
        try:
            line = loads_json(raw)
            if not isinstance(line, dict) or "record" not in line:
                raise ValueError("not a capture record")
        except ValueError:
            pending_bad.append((number, complete))
            continue
        kind = line["record"]
        if kind == "session_start":
            facts.sessions[line["session_id"]] = {k: v for k, v in line.items() if k != "record"}
            facts.run_id = line.get("run_id") or facts.run_id
            keep_audio[line["session_id"]] = bool(line.get("audio_kept", True))
            audio_paths[line["session_id"]] = audio_paths_for(facts.sessions[line["session_id"]])
        elif kind == "frame":
            sid = line["session_id"]
            rec = frame_from_journal(line, keep_audio.get(sid, True), audio_paths.get(sid))
            if sid in facts.sessions:
                refine_facts(facts.sessions[sid], rec)
            facts.frame_count += 1
            yield rec
        elif kind == "session_end":
            session = facts.sessions.setdefault(
                line["session_id"], {"session_id": line["session_id"]}
            )
            session.update({k: v for k, v in line.items() if k not in ("record", "session_id")})
            facts.ended.append(line["session_id"])
        elif kind == "run_end":
            facts.run_end = {k: v for k, v in line.items() if k != "record"}
    for number, complete in pending_bad:
        if number == last_number and not complete:
            facts.torn_last_line = True
        else:
            facts.bad_lines.append(number)
    if not facts.sessions and not facts.frame_count:
        raise JournalError(f"{path} holds no capture records; is it an rt-analyze journal?")


def read_journal(path: Path) -> Journal:
    """Parse a whole journal into memory (see :func:`iter_journal`)."""
    journal = Journal(run_id=path.stem)
    journal.frames.extend(iter_journal(path, journal))
    journal.ended.clear()
    return journal


# A journal without a run_end record written to this recently is taken to be open in a running
# recorder (which writes each frame as it comes) rather than left behind by a crash.
RECORDING_RECENT_S = 60.0
_TAIL_BYTES = 1 << 16


def journal_age_if_recording(path: Path) -> float | None:
    """Seconds since the journal ``path`` was last written, when it looks still being recorded:
    it starts with a capture record, was written less than :data:`RECORDING_RECENT_S` ago and
    its last line is not the run_end record. None otherwise. Reads only its first line and tail."""
    try:
        st = path.stat()
        with open(path, "rb") as f:
            first = f.readline()
            f.seek(max(0, st.st_size - _TAIL_BYTES))
            tail = f.read()
    except OSError:
        return None
    age = max(0.0, time.time() - st.st_mtime)
    if age >= RECORDING_RECENT_S or not _is_record(first):
        return None
    return None if _is_record(tail.rstrip(b"\n").rsplit(b"\n", 1)[-1], "run_end") else age


def _is_record(line: bytes, kind: str | None = None) -> bool:
    """Whether a journal line is a capture record (of ``kind``)."""
    try:
        record = loads_json(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "record" in record and kind in (None, record["record"])


def _parquet_only(frames: Iterator[FrameRecord]) -> Iterator[FrameRecord]:
    """The frames without what only the journal and live trackers read (the whole text, the
    parsed event: ~2.7 times a frame's audio), dropped before the writer holds a batch of
    them to find their speech at once."""
    for rec in frames:
        rec.journal_content = rec.event = None
        yield rec


def convert_journal(
    journal_path: Path, parquet_path: Path | None = None
) -> tuple[Path, JournalFacts]:
    """Write ``RUN.parquet`` (or ``parquet_path``) from ``RUN.jsonl``, or from a Parquet capture
    an earlier recorder wrote (:mod:`analyzer.recording.capture_frames`); returns the path
    written and what the journal (or the capture's footer) said. Frames stream to the Parquet
    writer in row groups, so memory stays bounded whatever the journal's size; their speech is
    found a batch of frames at a time (``writers.VOICE_BATCH``), the events the recorder finds
    frame by frame. The file is written under a temporary name and renamed when complete: a
    journal found unreadable (which is known only at its end) or a crash leaves any earlier
    file at the path as it was."""
    # The writers import pandas for the proxy's sake; readers of journals need neither.
    from analyzer.recording.writers import write_frames

    out = parquet_path or journal_path.with_suffix(".parquet")
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    facts, frames = _source(journal_path)
    try:
        write_frames(
            partial,
            _parquet_only(frames),
            facts.sessions,
            lambda: file_metadata(facts.run_id, list(facts.sessions.values())),
            ended=facts.ended,
        )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out, facts


def _source(path: Path) -> tuple[JournalFacts, Iterator[FrameRecord]]:
    """The run's facts (filled in as its frames are read) and its frames: a journal's, or
    those of a Parquet capture written by an earlier recorder."""
    if path.suffix != ".parquet":
        facts = JournalFacts(run_id=path.stem)
        return facts, iter_journal(path, facts)
    from analyzer.recording.capture_frames import iter_capture, open_capture

    pf, facts = open_capture(path)
    return facts, iter_capture(pf, facts)
