"""The numpy grouping the report uses gives what pandas' groupby gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.groups import Groups

rows = st.lists(
    st.tuples(st.integers(0, 4), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(rows)
def test_grouped_reductions_equal_pandas(data: list[tuple[int, float]]) -> None:
    keys = np.array([k for k, _ in data], dtype=np.int64)
    values = np.array([v for _, v in data])
    groups = Groups.of(keys)
    expected = pd.Series(values).groupby(keys, sort=False)
    assert groups.keys.tolist() == list(dict.fromkeys(keys.tolist()))  # first-appearance order
    assert groups.min(values).tolist() == expected.min().tolist()
    assert groups.max(values).tolist() == expected.max().tolist()
    assert groups.sizes().tolist() == expected.size().tolist()
    np.testing.assert_allclose(groups.sum(values), expected.sum().to_numpy(), rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(groups.cumsum(values), expected.cumsum(), rtol=1e-12, atol=1e-6)
    previous_max = expected.cummax().groupby(keys, sort=False).shift(1)
    assert np.array_equal(groups.previous_max(values), previous_max.to_numpy(), equal_nan=True)


def test_previous_max_skips_missing_values() -> None:
    values = np.array([3.0, np.nan, 1.0, 5.0, 2.0])
    groups = Groups.of(np.array([1, 1, 1, 2, 2]))
    got = groups.previous_max(values)
    assert np.array_equal(got, [np.nan, 3.0, 3.0, np.nan, 5.0], equal_nan=True)
