"""prefetched(): the same items in the same order, errors where they happened, early stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from analyzer.prefetch import prefetched


def test_items_come_out_in_order_and_complete() -> None:
    assert list(prefetched(iter(range(100)))) == list(range(100))
    assert list(prefetched(iter([]))) == []


def test_an_error_of_the_producer_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("truncated file")

    got = []
    with pytest.raises(ValueError, match="truncated file"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_thread() -> None:
    produced = []

    def items() -> Iterator[int]:
        for n in range(1000):
            produced.append(n)
            yield n

    stream = prefetched(items())
    assert next(stream) == 0
    stream.close()
    assert not any(t.name == "rt-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10  # it ran at most a few items ahead


def test_the_thread_starts_an_item_only_once_the_one_before_is_taken() -> None:
    """At most one item exists beyond the one in use (a window of frames is ~25 MB)."""
    produced: list[int] = []
    two_made = threading.Event()

    def items() -> Iterator[int]:
        for n in range(10):
            produced.append(n)
            if n == 1:
                two_made.set()
            yield n

    stream = prefetched(items())
    assert next(stream) == 0
    assert two_made.wait(timeout=5)
    time.sleep(0.2)  # time for a third item, were it allowed
    assert produced == [0, 1]
    assert next(stream) == 1
    assert list(stream) == list(range(2, 10))
