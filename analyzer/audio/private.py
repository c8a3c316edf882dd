"""The export's private directories (0700) and files (0600), made in as few system calls as
possible."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from analyzer.private_files import (
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    make_private_dir,
    open_private,
)


class PrivatePaths:
    """Makes the export's directories (0700) and files (0600) in as few system calls as it can
    (each is a wait for the GIL in the writer thread, and there are thousands): one where the
    umask leaves a new one private (looked at on the first), else as :func:`make_private_dir`
    and :func:`open_private` do; those also handle what is already there."""

    def __init__(self) -> None:
        self._one_call: dict[int, bool] = {}  # mode -> whether a new path gets it in one call

    def _umask_keeps(self, mode: int, made_mode: Callable[[], int]) -> bool:
        if mode not in self._one_call:
            self._one_call[mode] = stat.S_IMODE(made_mode()) == mode
        return self._one_call[mode]

    def directory(self, path: Path | str) -> None:
        if self._one_call.get(PRIVATE_DIR_MODE, True):
            try:
                os.mkdir(path, PRIVATE_DIR_MODE)
            except FileExistsError:
                pass
            else:
                if self._umask_keeps(PRIVATE_DIR_MODE, lambda: os.stat(path).st_mode):
                    return
        make_private_dir(Path(path))

    def file(self, path: Path | str) -> tuple[int, bool]:
        """A file descriptor on ``path`` to write from its start, and whether the file was
        already there. One already there is not emptied: the caller sizes it (``ftruncate``)
        and writes over it. A re-export writes files of the same sizes; emptying them first
        would free their blocks and allocate new ones, which costs more than the writing on
        a disk mounted with ``discard``."""
        if self._one_call.get(PRIVATE_FILE_MODE, True):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            except FileExistsError:
                pass
            else:
                if not self._umask_keeps(PRIVATE_FILE_MODE, lambda: os.fstat(fd).st_mode):
                    os.fchmod(fd, PRIVATE_FILE_MODE)
                return fd, False
        fd = open_private(Path(path), keep=True)
        return fd, True
