"""A progress bar on stderr for work that takes more than a moment (hidden when not a terminal)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")

# Set to anything non-empty to hide every progress bar (e.g. in CI logs captured from a pty).
NO_PROGRESS_ENV = "RT_NO_PROGRESS"


def progress_enabled(enabled: bool | None = None) -> bool:
    """Whether to draw a bar: ``enabled`` if given, else only when stderr is a terminal and
    ``RT_NO_PROGRESS`` is not set."""
    if enabled is not None:
        return enabled
    if os.environ.get(NO_PROGRESS_ENV):
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def track(
    items: Iterable[T],
    description: str,
    total: int | None = None,
    enabled: bool | None = None,
) -> Iterator[T]:
    """Yield ``items``, advancing a transient bar on stderr after each one.

    ``total`` defaults to ``len(items)`` when it has one. With ``enabled`` None the bar shows only
    on a terminal (see :func:`progress_enabled`); nothing is ever written to stdout.
    """
    if not progress_enabled(enabled):
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
