"""Small statistics and the machine description every result is reported with."""

from __future__ import annotations

import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata

import numpy as np


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def rotated(items: Sequence[str], rep: int) -> list[str]:
    """The variants in a different order each repetition, so drift hits them all alike."""
    k = rep % len(items)
    return [*items[k:], *items[:k]]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "nproc": nproc,
        "cpu": cpu_model(),
        "memory": f"{mem_kb / 1024**2:.0f} GiB",
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "mitmproxy": version("mitmproxy"),
        "websockets": version("websockets"),
        "pyarrow": version("pyarrow"),
        "pandas": version("pandas"),
    }
