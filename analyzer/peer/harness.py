"""Start and stop the real processes (peer server, mitmdump) for tests, the demo and benchmarks.

Everything listens on loopback, and every wait is bounded: a process that does not start, or
does not stop when asked, is killed and reported with its output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from analyzer.peer.record import Timeline, read_timeline
from analyzer.peer.server import PeerConfig
from analyzer.peer.tls import TlsFiles

REPO_ROOT = Path(__file__).resolve().parents[2]
# The packaged addon (what `rt-analyze record` loads), so this works from an installed package.
ADDON_PATH = Path(__file__).resolve().parents[1] / "recording" / "addon.py"
SERVER_READY = re.compile(r"^listening on wss?://[^:]+:(\d+)$")
# "reverse proxy to http://... listening at 127.0.0.1:PORT." / "HTTP(S) proxy listening at ..."
MITMDUMP_READY = re.compile(r"listening at \S*?:(\d+)\.?\s*$")


class HarnessError(RuntimeError):
    """A process did not start or stop as expected; the message carries its output."""


def mitmdump_path() -> Path:
    """The mitmdump of the running venv (not whatever is first on PATH)."""
    return Path(sys.executable).parent / "mitmdump"


class ManagedProcess:
    """A child process whose combined output is read by a thread, so its pipe never fills."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            cwd=cwd,
            env=env,
        )
        self._lines: list[str] = []
        self._changed = threading.Condition()
        assert self.popen.stdout is not None
        self._reader = threading.Thread(
            target=self._pump, args=(self.popen.stdout,), name=f"{name}-output", daemon=True
        )
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self._lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def output(self) -> str:
        return "\n".join(self.lines())

    def wait_for_line(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        """The first output line matching ``pattern``; raises if the process dies or is late."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    match = pattern.search(line)
                    if match:
                        return match
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.popen.poll() is not None and not self._reader.is_alive()
                ):
                    break
                self._changed.wait(min(remaining, 0.1))
        state = "timed out" if self.popen.poll() is None else f"exited {self.popen.returncode}"
        self.stop(signal.SIGKILL, timeout_s=5)
        raise HarnessError(f"{self.name} did not get ready ({state}). Output:\n{self.output()}")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int | None:
        """Send ``sig`` and wait; kill if it outlives ``timeout_s``. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._reader.join(5)
        return self.popen.returncode


@dataclass
class ServerHandle:
    process: ManagedProcess
    port: int
    record_path: Path | None
    tls: TlsFiles | None = None

    def url(self, path: str = "/v1/realtime", host: str = "127.0.0.1") -> str:
        scheme = "ws" if self.tls is None else "wss"
        return f"{scheme}://{host}:{self.port}{path}"

    def read_record(self) -> Timeline:
        if self.record_path is None:
            raise HarnessError("the server was started without a record path")
        return read_timeline(self.record_path)


@contextmanager
def run_server(
    *,
    record_path: Path | None = None,
    config: PeerConfig | None = None,
    tls: TlsFiles | None = None,
    startup_timeout_s: float = 15.0,
    stop_timeout_s: float = 10.0,
    **overrides: float,
) -> Iterator[ServerHandle]:
    """The peer server in a subprocess (over ``wss://`` with ``tls``). ``overrides`` are
    :class:`PeerConfig` fields."""
    settings = {**asdict(config or PeerConfig()), **overrides}
    args = [sys.executable, "-m", "analyzer.peer.server", "--host", "127.0.0.1", "--port", "0"]
    for name, value in settings.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    if record_path is not None:
        args += ["--record", str(record_path)]
    if tls is not None:
        args += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    process = ManagedProcess("peer server", args, cwd=REPO_ROOT)
    try:
        port = int(process.wait_for_line(SERVER_READY, startup_timeout_s).group(1))
        yield ServerHandle(process, port, record_path, tls)
    finally:
        process.stop(signal.SIGTERM, stop_timeout_s)


@dataclass
class MitmdumpHandle:
    process: ManagedProcess
    port: int
    confdir: Path
    rt_dir: Path | None

    @property
    def ca_file(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def url(self, path: str = "/v1/realtime") -> str:
        """A ``ws://`` URL through this proxy (reverse mode)."""
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def proxy_url(self) -> str:
        """This proxy as an HTTP proxy (regular mode)."""
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.process.output()

    def rt_lines(self) -> list[str]:
        """The addon's per-turn log lines (``rt: session ... turn N: ...``)."""
        return [line[line.index("rt: ") :] for line in self.process.lines() if "rt: " in line]

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 15.0) -> int | None:
        return self.process.stop(sig, timeout_s)


@contextmanager
def run_mitmdump(
    upstream_port: int | None = None,
    *,
    mode: str | None = None,
    addon: bool = True,
    addon_path: Path = ADDON_PATH,
    rt_dir: Path | None = None,
    confdir: Path | None = None,
    extra_args: Sequence[str] = (),
    flow_detail: int | None = 0,
    startup_timeout_s: float = 30.0,
    stop_timeout_s: float = 15.0,
) -> Iterator[MitmdumpHandle]:
    """mitmdump from this venv on a free loopback port; reverse proxy to ``upstream_port``
    unless ``mode`` says otherwise (e.g. ``"regular"``). Stopped with SIGINT on exit.

    ``flow_detail=0`` (the default here) keeps mitmdump from printing a line per WebSocket
    message, which would also print URLs with their query keys; None leaves mitmdump's default.
    """
    if mode is None:
        if upstream_port is None:
            raise ValueError("give upstream_port (reverse mode) or mode")
        mode = f"reverse:http://127.0.0.1:{upstream_port}"
    with ExitStack() as stack:
        if confdir is None:
            confdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rt-mitm-")))
        args = [
            str(mitmdump_path()),
            "--set",
            f"confdir={confdir}",
            "--listen-host",
            "127.0.0.1",
            "-p",
            "0",
            "--mode",
            mode,
        ]
        if addon:
            if rt_dir is None:
                rt_dir = confdir / "captures"
            args += ["-s", str(addon_path), "--set", f"rt_dir={rt_dir}"]
        if flow_detail is not None:
            args += ["--set", f"flow_detail={flow_detail}"]
        args += list(extra_args)
        process = ManagedProcess("mitmdump", args, cwd=REPO_ROOT)
        try:
            port = int(process.wait_for_line(MITMDUMP_READY, startup_timeout_s).group(1))
            yield MitmdumpHandle(process, port, confdir, rt_dir if addon else None)
        finally:
            process.stop(signal.SIGINT, stop_timeout_s)
