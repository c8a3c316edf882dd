"""A module imported on first use of one of its attributes.

Most of the library works with pandas tables, but ``rt-analyze report`` and ``rt-analyze
audio`` do not touch pandas on their paths, and importing it costs ~0.3 s and ~36 MB: a third
of the report's run on a small capture. Modules name pandas as usual (``pd.DataFrame``); it is
imported when a line that needs it first runs. ``sys.modules`` is left alone until then (code
that asks whether pandas is loaded, as pyarrow's does, gets the truth).

A module names it so (mypy sees pandas; not in an ``else:`` branch, which mypyc compiles as
unreachable)::

    if TYPE_CHECKING:
        import pandas as pd
    pd = LazyModule("pandas")
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from typing_extensions import TypeIs

if TYPE_CHECKING:
    import pandas as pd


class LazyModule(ModuleType):
    """Stands for the module ``name`` until an attribute of it is asked for. A module itself,
    so that code compiled with mypyc, which checks a module's type, takes it as one."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        # Only called for what is not in the instance yet: each attribute is looked up in the
        # module once, then kept here (``pd.NA`` in a loop costs what a module attribute does).
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        value = getattr(module, attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def is_frame(value: object) -> TypeIs[pd.DataFrame]:
    """Whether ``value`` is a pandas table, without importing pandas (none exists before)."""
    module = sys.modules.get("pandas")
    return module is not None and isinstance(value, module.DataFrame)


def is_series(value: object) -> TypeIs[pd.Series]:
    """Whether ``value`` is a pandas column, without importing pandas."""
    module = sys.modules.get("pandas")
    return module is not None and isinstance(value, module.Series)


def is_pandas_missing(value: object) -> bool:
    """Whether ``value`` is pandas' NA or NaT (none exists before pandas is imported)."""
    module = sys.modules.get("pandas")
    return module is not None and (value is module.NA or value is module.NaT)


def is_na(value: object) -> bool:
    """``pd.isna`` of a scalar without importing pandas (or numpy): None, NaN (numpy's too),
    pandas' NA and NaT."""
    if value is None or is_pandas_missing(value):
        return True
    numpy = sys.modules.get("numpy")
    floating = isinstance(value, float) or (numpy is not None and isinstance(value, numpy.floating))
    return floating and bool(value != value)
