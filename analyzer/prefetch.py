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
    where the item would have; stopping early stops the thread at its next item.

    The thread starts an item only once the consumer has taken the one before: with ``ahead``
    1, one item is being used and at most one more exists (a queue of one would allow a third,
    built while the second waits in the queue: a window of frames more of peak memory)."""
    queue: Queue[object] = Queue()
    slots = threading.Semaphore(ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            iterator = iter(items)
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                item = next(iterator, _END)
                queue.put(item)
                if item is _END:
                    return
                del item  # not kept alive here while the consumer uses it
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(_Raised(exc))

    thread = threading.Thread(target=produce, name="rt-prefetch", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not _END:
            slots.release()
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        slots.release()  # unblock a producer waiting for a slot
        thread.join()
