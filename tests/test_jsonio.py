"""Missing values as JSON sees them: pandas' NA and NaT are recognized without importing pandas."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzer.jsonio import is_na, is_pandas_missing, plain


@pytest.mark.parametrize(
    "value",
    [None, math.nan, np.float64("nan"), np.float32("nan"), pd.NA, pd.NaT, 0, 0.0, "", False, 1.5],
)
def test_is_na_is_pandas_isna_of_a_scalar(value: Any) -> None:
    assert is_na(value) == bool(pd.isna(value))


def test_pandas_missing_values_become_null() -> None:
    assert is_pandas_missing(pd.NA) and is_pandas_missing(pd.NaT)
    assert plain({"a": pd.NA, "b": [np.float64("nan"), np.int64(3)]}) == {"a": None, "b": [None, 3]}


def test_asking_whether_a_value_is_missing_does_not_import_pandas() -> None:
    probe = (
        "import sys; from analyzer.jsonio import is_na, is_pandas_missing; "
        "assert not is_pandas_missing(None) and is_na(None) and not is_na(0); "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
