"""Private directories (0700) and files (0600): captures and exports hold people's voices.

Kept free of heavy imports, so that the recorder, the exports and ``rt-analyze audio`` share
them without loading pandas.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for created in [path, *missing]:  # mkdir(parents=True) ignores mode for the parents
        os.chmod(created, PRIVATE_DIR_MODE)


def open_private(path: Path, append: bool = False, keep: bool = False) -> int:
    """A new file descriptor on ``path`` (emptied unless ``append`` or ``keep``), mode 0600
    whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT
    if append:
        flags |= os.O_APPEND
    elif not keep:
        flags |= os.O_TRUNC
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd
