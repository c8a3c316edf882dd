"""Recording in a process of its own, so the proxy's event loop only hands frames over.

The capture addon starts ``python -m analyzer.recording.worker --dir D --run-id R`` with its
stdin a pipe and writes length-prefixed messages to it (:class:`WriterProcess`, a few µs a
frame). This process parses the frames and runs the usual :class:`RunRecorder` (journal +
Parquet) and :class:`LiveTurnLog`, and prints its log lines to the stdout it shares with
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
import errno
import fcntl
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import IO, Any

log = logging.getLogger("rt_analyze.capture")

LENGTH = struct.Struct("<I")
FRAME = struct.Struct("<IBIQdB")  # length, kind, handle, seq, time_s, flags
FRAME_FIELDS = struct.Struct("<IQdB")  # handle, seq, time_s, flags: after the kind byte
FRAME_BODY_OFFSET = FRAME.size - LENGTH.size  # where the content starts in a frame's body
KIND_SESSION, KIND_FRAME, KIND_END, KIND_CLOSE = b"S"[0], b"F"[0], b"E"[0], b"C"[0]
FROM_CLIENT, IS_TEXT, KEEP_AUDIO, LIVE_LOG = 1, 2, 4, 8

PIPE_SIZE = 1024 * 1024
STALL_TIMEOUT_S = 5.0  # a writer that takes nothing for this long is given up on
CLOSE_TIMEOUT_S = 10.0
READ_BYTES = 256 * 1024
# A reader blocked on the pipe is woken by each frame the proxy writes, and the wake-up costs
# the proxy's CPU: the writer reads at most every GATHER_S instead (the pipe holds 1 MiB).
GATHER_S = 0.01
QUEUE_BATCHES = 512  # reads held ahead of the writing (<= 128 MB): the pipe stays empty meanwhile
PROXY_VANISHED = "proxy exited without closing the run"
WRITER_NICENESS = 10


# --- the proxy's side ----------------------------------------------------------------------


class WriterProcess:
    """The proxy's handle on a writer process. Never raises into the proxy: when the process
    is gone or stops reading, :attr:`broken` is set, the reason logged once, and every call
    returns False from then on (the caller records inline instead)."""

    def __init__(
        self,
        directory: Path,
        run_id: str,
        log_level: str = "info",
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self.directory = directory
        self.run_id = run_id
        self.log_level = log_level
        self.stall_timeout_s = stall_timeout_s
        self.broken = False
        self.closed = False
        self.frames_handed_over = 0
        self.stalls = 0  # writes that had to wait for the process to read
        self.max_stall_s = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._next_handle = 0

    @property
    def started(self) -> bool:
        return self.process is not None

    def start(self) -> bool:
        if self.process is not None:
            return not self.broken
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        args = [sys.executable, "-m", "analyzer.recording.worker"]
        args += ["--dir", str(self.directory), "--run-id", self.run_id]
        args += ["--log-level", self.log_level]
        try:
            self.process = subprocess.Popen(args, stdin=subprocess.PIPE, env=env)
        except OSError as exc:
            self._break(f"cannot start it: {exc}")
            return False
        assert self.process.stdin is not None
        self._fd = self.process.stdin.fileno()
        with contextlib.suppress(OSError):  # a smaller pipe only means backpressure sooner
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        os.set_blocking(self._fd, False)
        return True

    def start_session(self, facts: dict[str, Any]) -> int | None:
        """Hand a session's facts over; its handle for :meth:`frame`, None when broken."""
        if not self.start():
            return None
        handle = self._next_handle
        self._next_handle += 1
        if self._send(KIND_SESSION, {"handle": handle, "facts": facts}):
            return handle
        return None

    def frame(
        self,
        handle: int,
        seq: int,
        time_s: float,
        flags: int,
        content: bytes,
    ) -> bool:
        """The hot path: one header and the frame's bytes into the pipe."""
        if self.broken or self.closed:
            return False
        header = FRAME.pack(
            FRAME_BODY_OFFSET + len(content), KIND_FRAME, handle, seq, time_s, flags
        )
        try:
            written = os.writev(self._fd, (header, content))
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._break(self._why(exc))
            return False
        if written < len(header) + len(content) and not self._write_rest(
            (header + content)[written:]
        ):
            return False
        self.frames_handed_over += 1
        return True

    def end_session(self, handle: int, **end: Any) -> bool:
        return self._send(KIND_END, {"handle": handle, "end": end})

    def close(self, faults: int = 0, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Ask the process to close the run and wait for it (bounded). True when it finished."""
        if self.closed:
            return True
        sent = self._send(KIND_CLOSE, {"faults": faults}) if self.started else True
        self.closed = True
        self._close_pipe()
        if self.process is None:
            return True
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.error(
                "rt-analyze: the writer process of run %s is still finishing after %.0f s; "
                "it goes on in the background (pid %d)",
                self.run_id,
                timeout_s,
                self.process.pid,
            )
            return False
        if code != 0 and sent:
            log.error("rt-analyze: the writer process of run %s exited with %s", self.run_id, code)
        return sent and code == 0

    def _send(self, kind: int, payload: dict[str, Any]) -> bool:
        if self.broken or self.closed:
            return False
        body = json.dumps(payload, separators=(",", ":")).encode()
        data = LENGTH.pack(1 + len(body)) + bytes((kind,)) + body
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            self._break(self._why(exc))
            return False
        return written == len(data) or self._write_rest(data[written:])

    def _write_rest(self, data: bytes) -> bool:
        """Backpressure: wait (bounded) until the process has read enough to take ``data``."""
        self.stalls += 1
        started = time.monotonic()
        deadline = started + self.stall_timeout_s
        view = memoryview(data)
        try:
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._break(f"it took nothing for {self.stall_timeout_s:.0f} s")
                    return False
                _, writable, _ = select.select([], [self._fd], [], left)
                if writable:
                    with contextlib.suppress(BlockingIOError):
                        view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._break(self._why(exc))
            return False
        finally:
            self.max_stall_s = max(self.max_stall_s, time.monotonic() - started)
        return True

    def _why(self, exc: OSError) -> str:
        code = self.process.poll() if self.process is not None else None
        if exc.errno == errno.EPIPE or code is not None:
            return f"it exited (code {code})"
        return f"{type(exc).__name__}: {exc}"

    def _break(self, reason: str) -> None:
        """Give the process up, once: what it has read it still writes and closes properly
        (a message cut short is dropped by it, and the caller records that frame itself)."""
        if self.broken:
            return
        self.broken = True
        self._close_pipe()
        log.error(
            "rt-analyze: the writer process of run %s failed (%s) after %d frames were handed "
            "over; frames it had not written yet are lost; recording goes on inside the proxy",
            self.run_id,
            reason,
            self.frames_handed_over,
        )

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._fd = -1


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
        from analyzer.recording.live import LiveTurnLog
        from analyzer.recording.run import RunRecorder

        self.build_frame = build_frame
        # Frames read together are journaled with one write: see RunRecorder.
        self.recorder = RunRecorder(directory, run_id=run_id, batch_frames=True)
        self.turns = LiveTurnLog()
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
            self.recorder.record_frame(rec)
            if flags & LIVE_LOG:
                line = self.turns.observe(rec)
                if line:
                    log.info(line)
        elif kind == KIND_SESSION:
            payload = json.loads(body[1:])
            self.sessions[payload["handle"]] = payload["facts"]["session_id"]
            self.turns.start(payload["facts"])
            self.recorder.start_session(payload["facts"])
        elif kind == KIND_END:
            payload = json.loads(body[1:])
            session_id = self.sessions[payload["handle"]]
            self.recorder.end_session(session_id, **payload["end"])
            self.turns.forget(session_id)
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
