"""Capture files under paths, directories and globs, with the hive partitions in their paths."""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.reader import (
    CaptureError,
)

_PARTITION_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class RunFile:
    """One capture file of a dataset and the ``key=value`` partitions in its path."""

    path: Path
    partitions: dict[str, str] = field(default_factory=dict)

    @property
    def proxy_host(self) -> str | None:
        return self.partitions.get("host")

    @property
    def date(self) -> str | None:
        return self.partitions.get("date")


def partitions_of(path: Path) -> dict[str, str]:
    """The hive partitions (``key=value`` directories) in ``path``, innermost last."""
    found: dict[str, str] = {}
    for part in path.parent.parts:
        match = _PARTITION_PART.match(part)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _expand(spec: Path | str) -> list[Path]:
    text = str(spec)
    if any(c in text for c in _GLOB_CHARS) and not Path(text).exists():
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        if not matches:
            raise CaptureError(
                f"no files match {text}; check the pattern (quote it for the shell)."
            )
        return matches
    path = Path(text)
    if not path.exists():
        raise CaptureError(
            f"{path} does not exist; pass a .parquet, a .jsonl, a directory or a glob."
        )
    return [path]


def discover(paths: Sequence[Path | str]) -> list[RunFile]:
    """The capture files under ``paths`` (files, directories, globs), each once: Parquet files,
    plus journals with no Parquet file beside them, sorted by path."""
    candidates: set[Path] = set()
    for spec in paths:
        for path in _expand(spec):
            if path.is_dir():
                candidates.update(path.rglob("*.parquet"))
                candidates.update(path.rglob("*.jsonl"))
            elif path.suffix in (".parquet", ".jsonl"):
                candidates.add(path)
            else:
                raise CaptureError(f"{path} is neither a .parquet capture nor a .jsonl journal.")
    resolved = {p.resolve(): p for p in sorted(candidates)}
    stems = {p.with_suffix("") for p in resolved if p.suffix == ".parquet"}
    files = [
        RunFile(path, partitions_of(path))
        for real, path in sorted(resolved.items())
        if real.suffix == ".parquet" or real.with_suffix("") not in stems
    ]
    if not files:
        raise CaptureError(
            "no .parquet or .jsonl capture files found in " + ", ".join(map(str, paths))
        )
    return files
