"""Rebuild a run's Parquet file from its journal (after a crash, or to re-derive columns)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.recording.frames import FrameRecord, apply_text
from analyzer.recording.session import refine_facts

log = logging.getLogger(__name__)


class JournalError(ValueError):
    """The file is not a capture journal."""


@dataclass
class Journal:
    run_id: str
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    frames: list[FrameRecord] = field(default_factory=list)
    run_end: dict[str, Any] | None = None
    torn_last_line: bool = False
    bad_lines: list[int] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            yield number, raw, raw.endswith(b"\n")


def frame_from_journal(line: dict[str, Any], keep_audio: bool) -> FrameRecord:
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
        apply_text(rec, content, keep_audio, audio_bytes=line.get("audio_bytes"))
    return rec


def read_journal(path: Path) -> Journal:
    """Parse a journal. A torn last line (crash mid-write) is skipped; other bad lines are
    skipped and listed. Raises JournalError when nothing in it looks like a capture."""
    journal = Journal(run_id=path.stem)
    keep_audio: dict[str, bool] = {}
    last_number = 0
    pending_bad: list[tuple[int, bool]] = []
    for number, raw, complete in _lines(path):
        last_number = number
        try:
            line = json.loads(raw)
            if not isinstance(line, dict) or "record" not in line:
                raise ValueError("not a capture record")
        except ValueError:
            pending_bad.append((number, complete))
            continue
        kind = line["record"]
        if kind == "session_start":
            journal.sessions[line["session_id"]] = {k: v for k, v in line.items() if k != "record"}
            journal.run_id = line.get("run_id") or journal.run_id
            keep_audio[line["session_id"]] = bool(line.get("audio_kept", True))
        elif kind == "frame":
            sid = line["session_id"]
            rec = frame_from_journal(line, keep_audio.get(sid, True))
            if sid in journal.sessions:
                refine_facts(journal.sessions[sid], rec)
            journal.frames.append(rec)
        elif kind == "session_end":
            facts = journal.sessions.setdefault(
                line["session_id"], {"session_id": line["session_id"]}
            )
            facts.update({k: v for k, v in line.items() if k not in ("record", "session_id")})
        elif kind == "run_end":
            journal.run_end = {k: v for k, v in line.items() if k != "record"}
    for number, complete in pending_bad:
        if number == last_number and not complete:
            journal.torn_last_line = True
        else:
            journal.bad_lines.append(number)
    if not journal.sessions and not journal.frames:
        raise JournalError(f"{path} holds no capture records; is it an rt-analyze journal?")
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
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "record" in record and kind in (None, record["record"])


def convert_journal(journal_path: Path, parquet_path: Path | None = None) -> tuple[Path, Journal]:
    """Write ``RUN.parquet`` (or ``parquet_path``) from ``RUN.jsonl``; returns the path written."""
    # The writers import pandas for the proxy's sake; readers of journals need neither.
    from analyzer.recording.writers import write_parquet

    journal = read_journal(journal_path)
    out = parquet_path or journal_path.with_suffix(".parquet")
    write_parquet(out, journal.frames, journal.run_id, list(journal.sessions.values()))
    return out, journal
