"""The proxy's side of recording in a process of its own: start the writer process
(:mod:`analyzer.recording.worker`) and hand it each frame over a pipe, a few µs a frame.

Messages: ``<u32 length><u8 kind><body>``, ``length`` counting kind and body.

- ``S`` session start: JSON ``{"handle": n, "facts": {...}}``
- ``F`` frame: ``<u32 handle><u64 seq><f64 time_s><u8 flags>`` then the frame's bytes
- ``E`` session end: JSON ``{"handle": n, "end": {...}}``
- ``C`` close: JSON ``{"faults": n}``; the run is closed, its summary logged, the process exits.

This module runs inside mitmdump: the standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import select
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
