"""Run an iterator one item ahead in a thread.

Reading a window of a capture is mostly Arrow (Parquet decoding, sorting, conversion), which
runs without the GIL: done in a thread while the previous window is analyzed, it uses the
second core instead of adding to the wall time.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from queue import Queue
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterator[T], ahead: int = 1) -> Generator[T, None, None]:
    """``items``, produced up to ``ahead`` items in advance by a thread. Exceptions come out
    where the item would have; stopping early stops the thread at its next item."""
    queue: Queue[object] = Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(item)
            queue.put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(_Raised(exc))

    thread = threading.Thread(target=produce, name="rt-prefetch", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put
            while not queue.empty():
                queue.get_nowait()
            thread.join(timeout=0.05)
