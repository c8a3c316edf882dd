"""Recording in a process of its own, so the proxy's event loop only hands frames over.

The capture addon starts ``python -m analyzer.recording.worker --dir D --run-id R`` with its
stdin a pipe and writes length-prefixed messages to it (:class:`WriterProcess`, a few µs a
frame). This process parses the frames and runs the usual :class:`RunRecorder` (journal +
Parquet, its ``rt:`` line per reply), and prints its log lines to the stdout it shares with
mitmdump, in mitmdump's ``[HH:MM:SS.mmm] `` format, one ``write`` a line.

Messages: ``<u32 length><u8 kind><body>``, ``length`` counting kind and body.

- ``S`` session start: JSON ``{"handle": n, "facts": {...}}``
- ``F`` frame: ``<u32 handle><u64 seq><f64 time_s><u8 flags>`` then the frame's bytes
- ``E`` session end: JSON ``{"handle": n, "end": {...}}``
- ``C`` close: JSON ``{"faults": n}``; the run is closed, its summary logged, the process exits.

End of input without ``C`` (the proxy was killed) closes the run all the same: everything the
proxy handed over is written and the journal and Parquet file are complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import IO

from analyzer.recording.pipe import (
    FRAME_BODY_OFFSET,
    FRAME_FIELDS,
    FROM_CLIENT,
    GATHER_S,
    IS_TEXT,
    KEEP_AUDIO,
    KIND_CLOSE,
    KIND_END,
    KIND_FRAME,
    KIND_SESSION,
    LENGTH,
    LIVE_LOG,
    PIPE_SIZE,
    PROXY_VANISHED,
    QUEUE_BATCHES,
    READ_BYTES,
    WRITER_NICENESS,
)

log = logging.getLogger("rt_analyze.capture")


# --- the writer's side ---------------------------------------------------------------------


class LineHandler(logging.Handler):
    """mitmdump's ``[HH:MM:SS.mmm] message`` lines on our stdout, one ``write`` each, so they
    do not tear among mitmdump's own lines on the stream both share."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            line = f"[{stamp}.{int(record.msecs):03d}] {text}\n".encode(errors="replace")
            view = memoryview(line)
            while view:
                view = view[os.write(1, view) :]
        except Exception:
            pass  # nowhere to say it


def read_batches(stream: IO[bytes], gather_s: float = 0.0) -> Iterator[list[tuple[int, bytes]]]:
    """(kind, body) of the complete messages of ``stream``, as many at a time as one read
    brings; stops at end of input or a message cut short. After a read that emptied the pipe,
    waits ``gather_s`` for more to gather before reading again."""
    pending = bytearray()
    while chunk := stream.read1(READ_BYTES):  # type: ignore[attr-defined]
        pending += chunk
        messages: list[tuple[int, bytes]] = []
        at = 0
        while len(pending) - at >= LENGTH.size:
            (length,) = LENGTH.unpack_from(pending, at)
            if length == 0:  # not something the proxy writes: stop as at a message cut short
                if messages:
                    yield messages
                return
            end = at + LENGTH.size + length
            if end > len(pending):
                break
            body = bytes(pending[at + LENGTH.size : end])
            messages.append((body[0], body))
            at = end
        del pending[:at]
        if messages:
            yield messages
        if gather_s and len(chunk) < READ_BYTES:
            time.sleep(gather_s)


class ReadAhead:
    """The messages of ``stream`` in batches, read by a thread of their own: the pipe is drained
    while the recorder is still importing pyarrow, or busy with a slow disk (up to
    QUEUE_BATCHES reads). :meth:`waiting` says whether more input is already here."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._queue: Queue[list[tuple[int, bytes]] | None] = Queue(QUEUE_BATCHES)
        threading.Thread(
            target=self._pump, args=(stream,), name="rt-writer-read", daemon=True
        ).start()

    def _pump(self, stream: IO[bytes]) -> None:
        try:
            for batch in read_batches(stream, GATHER_S):
                self._queue.put(batch)
        finally:
            self._queue.put(None)

    def __iter__(self) -> Iterator[list[tuple[int, bytes]]]:
        while (batch := self._queue.get()) is not None:
            yield batch

    def waiting(self) -> bool:
        return not self._queue.empty()


class _Serve:
    """What :func:`serve` keeps between messages."""

    def __init__(self, directory: Path, run_id: str) -> None:
        from analyzer.recording.frames import build_frame
        from analyzer.recording.run import RunRecorder

        self.build_frame = build_frame
        # Frames read together are journaled with one write: see RunRecorder.
        self.recorder = RunRecorder(directory, run_id=run_id, batch_frames=True)
        self.sessions: dict[int, str] = {}
        self.faults: int | None = None  # set by the proxy's close

    def handle(self, kind: int, body: bytes) -> bool:
        """Record one message; False once the proxy has said close."""
        if kind == KIND_FRAME:
            handle, seq, time_s, flags = FRAME_FIELDS.unpack_from(body, 1)
            rec = self.build_frame(
                self.sessions[handle],
                seq,
                time_s,
                bool(flags & FROM_CLIENT),
                bool(flags & IS_TEXT),
                body[FRAME_BODY_OFFSET:],
                keep_audio=bool(flags & KEEP_AUDIO),
                audio_paths=self.recorder.audio_paths(self.sessions[handle]),
            )
            self.recorder.log_turns(bool(flags & LIVE_LOG))
            self.recorder.record_frame(rec)
        elif kind == KIND_SESSION:
            payload = json.loads(body[1:])
            self.sessions[payload["handle"]] = payload["facts"]["session_id"]
            self.recorder.start_session(payload["facts"])
        elif kind == KIND_END:
            payload = json.loads(body[1:])
            session_id = self.sessions[payload["handle"]]
            self.recorder.end_session(session_id, **payload["end"])
        elif kind == KIND_CLOSE:
            self.faults = int(json.loads(body[1:])["faults"])
            return False
        else:
            raise ValueError(f"unknown message kind {kind!r}")
        return True


def serve(stream: IO[bytes], directory: Path, run_id: str) -> int:
    """Record what the proxy hands over until it says close or goes away."""
    messages = ReadAhead(stream)
    state = _Serve(directory, run_id)
    recorder = state.recorder
    try:
        for batch in messages:
            if not all(state.handle(kind, body) for kind, body in batch):
                break
            if not messages.waiting():
                recorder.flush()
    except Exception:
        log.exception("rt-analyze: the writer process of run %s failed; closing the run", run_id)
    faults = state.faults
    if faults is None and recorder.sessions:
        log.error(
            "rt-analyze: the proxy went away without closing run %s; the writer closed it", run_id
        )
    summary = recorder.close(
        end_open_sessions_reason="proxy shut down" if faults is not None else PROXY_VANISHED
    )
    if summary["frames_not_recorded"] or faults:
        log.error(
            "rt-analyze: %d frames NOT recorded and %d addon faults in run %s",
            summary["frames_not_recorded"],
            faults or 0,
            summary["run_id"],
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the proxy closes
    # the run (or goes away), and we finish writing it in either case.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # When CPU is short the proxy's traffic comes first: this process reads ahead into its
    # queue and catches up when the proxy is idle.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICENESS)
    handler = LineHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        root.setLevel(args.log_level.upper())
    except ValueError:
        root.setLevel(logging.INFO)
    with os.fdopen(0, "rb", buffering=PIPE_SIZE) as stream:
        return serve(stream, args.dir, args.run_id)


if __name__ == "__main__":
    sys.exit(main())
