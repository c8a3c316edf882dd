"""The frames of a Parquet capture as its recorder saw them, for ``rt-analyze convert``: a file
written by an earlier recorder (format 1, or events older than today's) is rewritten in the
current format from its frames, exactly as its journal would be, so every later command reads
its recorded events instead of decoding the frames again each time (a 1 GB format-1 report:
~23 s; the same capture converted: ~3 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analyzer.protocols import AudioPathsOf, audio_paths_for
from analyzer.recording.convert import JournalError, JournalFacts, frame_from_journal
from analyzer.recording.frames import FrameRecord, restore_frame_text
from analyzer.recording.session import refine_facts
from analyzer.schema import events_are_current, parse_file_metadata

# What a frame's journal line is rebuilt from (every column but the events a newer recorder
# derives; ``audio_cuts`` only in files that have it).
_COLUMNS = (
    "session_id",
    "seq",
    "time_s",
    "direction",
    "opcode",
    "frame_bytes",
    "audio_b64_bytes",
    "audio_bytes",
    "problem",
    "content",
    "binary_content",
    "audio_offset",
    "audio",
    "audio_cuts",
)
_READ_BYTES = 1 << 20
# Frames converted at once: their audio is in memory together (~1 MB of PCM a thousand frames).
_BATCH_ROWS = 1024


def open_capture(path: Path) -> tuple[pq.ParquetFile, JournalFacts]:
    """The capture and its run's facts from its footer; raises JournalError for files that
    are not Parquet captures or that need no conversion."""
    try:
        # Without pre-buffering, which keeps every row group read until the reader is closed
        # (converting a 1 GB capture grew to 1.2 GB of RSS), and reading a column 1 MiB at a
        # time rather than a row group's whole chunk (Arrow's peak 35 -> 8 MB).
        pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BYTES)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise JournalError(f"{path} is not a readable Parquet file ({exc}).") from exc
    meta = parse_file_metadata(pf.metadata.metadata)
    if meta is None:
        raise JournalError(f"{path} is not an rt-analyze capture (its footer has no run facts).")
    if events_are_current(pf.schema_arrow):
        raise JournalError(
            f"{path} is in the current format already: analyze it as it is (rt-analyze report "
            f"{path}); convert rebuilds a capture from a .jsonl journal or an older .parquet."
        )
    sessions = {str(s["session_id"]): dict(s) for s in meta.get("sessions", [])}
    return pf, JournalFacts(run_id=str(meta.get("run_id") or path.stem), sessions=sessions)


def iter_capture(pf: pq.ParquetFile, facts: JournalFacts) -> Iterator[FrameRecord]:
    """The capture's frames in file order (the order the recorder wrote them, as its journal
    did), each session named in ``facts.ended`` after its last frame, as a journal's
    ``session_end`` line follows it."""
    names = pf.schema_arrow.names
    columns = [c for c in _COLUMNS if c in names]
    last_row = _last_rows(pf)
    keep_audio = {sid: bool(f.get("audio_kept", True)) for sid, f in facts.sessions.items()}
    paths: dict[str, AudioPathsOf] = {}
    row = 0
    for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        for line in batch.to_pylist():
            sid = str(line["session_id"])
            if sid not in paths:
                paths[sid] = audio_paths_for(facts.sessions.get(sid, {"session_id": sid}))
            rec = _frame(line, keep_audio.get(sid, True), paths[sid])
            if sid in facts.sessions:  # facts an earlier recorder did not keep (provider ids)
                refine_facts(facts.sessions[sid], rec)
            facts.frame_count += 1
            yield rec
            if last_row.get(sid) == row:
                facts.ended.append(sid)
                del paths[sid]
            row += 1


def _last_rows(pf: pq.ParquetFile) -> dict[str, int]:
    """Each session's last row in the file (read from the session id column alone)."""
    ids = pf.read(columns=["session_id"]).column("session_id")
    codes = ids.cast(pa.string()).combine_chunks().dictionary_encode()
    order = np.asarray(codes.indices)
    last = np.full(len(codes.dictionary), -1, dtype=np.int64)
    np.maximum.at(last, order, np.arange(len(order)))
    return dict(zip(codes.dictionary.to_pylist(), last.tolist(), strict=True))


def _frame(line: dict[str, Any], keep_audio: bool, audio_paths: AudioPathsOf) -> FrameRecord:
    """A Parquet row as the journal line the recorder wrote beside it, read as convert reads
    journal lines."""
    binary = line.pop("binary_content", None)
    if binary is not None:  # its journal line holds the bytes (in base64) and nothing else
        rec = frame_from_journal({**line, "content": None}, keep_audio, audio_paths)
        rec.binary_content, rec.problem = binary, line.get("problem")
        return rec
    content = line.get("content")
    if content is not None:
        line["content"] = restore_frame_text(
            content, line.get("audio_offset"), line.get("audio"), line.get("audio_cuts")
        )
    return frame_from_journal(line, keep_audio, audio_paths)
