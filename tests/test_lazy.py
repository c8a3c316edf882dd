"""A module imported when first used (what keeps pandas out of the report and the proxy)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analyzer.lazy import LazyModule, is_frame, is_na, is_pandas_missing, is_series


def test_the_module_is_imported_at_the_first_attribute_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rt_lazy_probe.py").write_text("IMPORTS = [1]\nvalue = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rt_lazy_probe", raising=False)
    probe = LazyModule("rt_lazy_probe")
    assert "rt_lazy_probe" not in sys.modules
    assert probe.value == 42
    assert "rt_lazy_probe" in sys.modules
    assert probe.IMPORTS is sys.modules["rt_lazy_probe"].IMPORTS  # the module, imported once
    assert probe.value == 42
    with pytest.raises(AttributeError):
        _ = probe.missing


def test_pandas_values_are_recognized() -> None:
    assert is_frame(pd.DataFrame()) and not is_frame([{"a": 1}])
    assert is_series(pd.Series(dtype=float)) and not is_series([1.0])
    assert is_pandas_missing(pd.NA) and is_pandas_missing(pd.NaT)
    assert not any(is_pandas_missing(v) for v in (None, math.nan, 0, ""))


@pytest.mark.parametrize(
    "value",
    [None, math.nan, np.float64("nan"), np.float32("nan"), pd.NA, pd.NaT, 0, 0.0, "", False, 1.5],
)
def test_is_na_is_pandas_isna_of_a_scalar(value: Any) -> None:
    assert is_na(value) == bool(pd.isna(value))


def test_asking_whether_a_value_is_pandas_does_not_import_it() -> None:
    probe = (
        "import sys; from analyzer.lazy import is_frame, is_pandas_missing, is_series; "
        "assert not (is_frame([]) or is_series(()) or is_pandas_missing(None)); "
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
