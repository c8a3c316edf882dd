"""The collector's thresholds are raised for a report and put back after, even on errors."""

import gc

import pytest

from analyzer.collector import BULK_THRESHOLDS, bulk_allocation


def test_thresholds_raised_inside_and_restored_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), bulk_allocation():
        assert gc.get_threshold() == BULK_THRESHOLDS
        raise RuntimeError("analysis failed")
    assert gc.get_threshold() == before


def test_cycles_are_still_collected_inside() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with bulk_allocation():
        for _ in range(3):
            Node()
        assert gc.collect() >= 3
