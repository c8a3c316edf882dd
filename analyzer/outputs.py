"""Where a command may write: never over a file it reads, a capture or a journal (unless the
user says ``--force``), and never two of its outputs to one file.

A recording cannot be made again: one mistyped ``-o`` must not replace it. Every command that
writes checks its output paths here before it reads anything, so a refusal costs nothing.
Kept free of heavy imports (``rt-analyze audio`` and ``convert`` load no pandas).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from analyzer.schema import parse_file_metadata

PARQUET_MAGIC = b"PAR1"


class OutputError(Exception):
    """An output path would destroy data; the message names the file and the fix."""


def _identity(path: Path) -> tuple[int, int] | Path:
    """What makes two paths the same file: device and inode when it exists (hard links, symlinks,
    ``./x`` and ``x``), else the absolute path with symlinks resolved."""
    try:
        st = os.stat(path)
    except OSError:
        return path.resolve()
    return st.st_dev, st.st_ino


def precious_kind(path: Path) -> str | None:
    """What ``path`` holds that a recorder wrote and nothing can rebuild: ``"a journal"`` (an
    existing ``.jsonl`` file) or ``"an rt-analyze capture"`` (a Parquet file whose footer holds
    our metadata); None for anything else, missing files included.

    A Parquet file left without its footer by a killed recorder is not one: everything in it is
    in the journal beside it, which is what ``convert`` rebuilds it from."""
    if not path.is_file():
        return None
    if path.suffix == ".jsonl":
        return "a journal"
    try:
        with path.open("rb") as f:
            if f.read(4) != PARQUET_MAGIC:
                return None
    except OSError:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(path).metadata
    except (pa.ArrowInvalid, OSError):
        return None
    return "an rt-analyze capture" if parse_file_metadata(metadata) is not None else None


def check_outputs(
    outputs: Mapping[str, Path | None], reads: Iterable[Path] = (), force: bool = False
) -> None:
    """Raise :class:`OutputError` when two ``outputs`` (option name -> path, None when not
    asked) are one file, or, unless ``force``, when one is a file the command ``reads`` or a
    capture or journal."""
    asked = [(option, path) for option, path in outputs.items() if path is not None]
    seen: dict[tuple[int, int] | Path, str] = {}
    for option, path in asked:
        key = _identity(path)
        if key in seen:
            raise OutputError(
                f"{seen[key]} and {option} both write {path}, so the second would replace the "
                "first; give each its own file."
            )
        seen[key] = option
    if force:
        return
    read = {_identity(p) for p in reads}
    for option, path in asked:
        if _identity(path) in read:
            raise OutputError(
                f"{option} {path} is a file this command reads; write to another file "
                "(or pass --force to overwrite it)."
            )
        kind = precious_kind(path)
        if kind is not None:
            raise OutputError(
                f"{option} {path} is {kind}, which cannot be recorded again; write to another "
                "file (or pass --force to overwrite it)."
            )


def check_output_dir(option: str, path: Path) -> None:
    """Raise :class:`OutputError` unless ``path`` is a directory or can be created as one
    (writable): checked before the captures are read, not after."""
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{option} {path} is an existing file, not a directory; pass a directory (it is "
            "created if missing)."
        )
    from analyzer.private_files import make_private_dir

    try:
        make_private_dir(path)
    except OSError as exc:
        raise OutputError(
            f"cannot create the directory {path} ({exc.strerror or exc}); pass {option} a "
            "directory you can write to."
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {path}; pass {option} a directory you can write to.")
