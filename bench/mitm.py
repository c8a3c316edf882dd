"""mitmdump (from this venv, via :mod:`analyzer.peer.harness`) in each of the variants compared,
with what the bench reads about the process: ``/proc/PID/status`` and its CPU time."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from analyzer.peer.harness import MitmdumpHandle, run_mitmdump

# addon: -s addon/capture.py; none: plain mitmdump; dump: mitmdump's own flow file (-w FILE);
# noop: -s bench/noop_addon.py, a websocket_message hook doing nothing (mitmproxy's cost of any
# recording addon).
VARIANTS = ("addon", "none", "dump", "noop")
NOOP_ADDON = Path(__file__).with_name("noop_addon.py")


@dataclass
class Proxy:
    variant: str
    handle: MitmdumpHandle
    work_dir: Path

    @property
    def port(self) -> int:
        return self.handle.port

    @property
    def pid(self) -> int:
        return self.handle.process.pid

    def status_kb(self) -> dict[str, int]:
        """VmRSS, VmHWM... of the mitmdump process, in kB."""
        out: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Vm"):
                    name, value = line.split(":", 1)
                    out[name] = int(value.split()[0])
        return out

    def cpu_s(self) -> float:
        """User + system CPU seconds the proxy has used so far (all its threads)."""
        return _cpu_s(self.pid)

    def children_cpu_s(self) -> float:
        """CPU seconds of the proxy's live child processes so far (the addon's writer)."""
        total = 0.0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    with contextlib.suppress(OSError):
                        total += _cpu_s(int(child))
        return total


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def mitmdump(variant: str, upstream_port: int, work_dir: Path) -> Iterator[Proxy]:
    """A running reverse proxy to ``upstream_port``; stopped with SIGINT (killed if it hangs).

    ``flow_detail=0`` (the harness's default): mitmdump does not print a line per message, so
    what is compared is the proxying itself, and the bench process does not spend CPU reading it.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
    work_dir.mkdir(parents=True, exist_ok=True)
    extra = {"dump": ["-w", str(work_dir / "flows.mitm")], "noop": ["-s", str(NOOP_ADDON)]}
    with run_mitmdump(
        upstream_port,
        addon=variant == "addon",
        rt_dir=work_dir / "captures",
        confdir=work_dir / "conf",
        extra_args=extra.get(variant, []),
        stop_timeout_s=60,
    ) as handle:
        yield Proxy(variant, handle, work_dir)
