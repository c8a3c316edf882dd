"""Fast JSON in and out (orjson), falling back to the standard library for what orjson refuses:
lone surrogates (a "\\ud800" escape a client or server sent), NaN literals, huge integers."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


_ALREADY_PLAIN = frozenset({str, int, bool, type(None)})


def plain(value: Any) -> Any:
    """``value`` as plain JSON values: NaN/NA -> None, numpy scalars and arrays -> Python,
    tuples -> lists, keys -> str."""
    if type(value) in _ALREADY_PLAIN:  # most values: no conversion (and no isinstance chain)
        return value
    if isinstance(value, float):  # numpy's float64 too
        return None if math.isnan(value) else float(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    # Not imported for it: the proxy's recorder reads JSON here and never loads numpy, and no
    # value can be numpy's before numpy is imported.
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.floating):
            return None if math.isnan(value) else float(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.ndarray):
            return [plain(v) for v in value.tolist()]
    if is_pandas_missing(value):
        return None
    return value


def _missing(value: Any) -> None:
    """orjson's ``default``: pandas' missing values are null; anything else is an error."""
    if is_pandas_missing(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def loads_json(text: str | bytes) -> Any:
    """``json.loads``, several times faster on the frames a capture holds."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps_json(value: Any, indent: bool = False) -> bytes:
    """UTF-8 JSON of :func:`plain` ``value``, compact or indented by two spaces like
    ``json.dumps(value, indent=2, ensure_ascii=False)`` (floats below 1e-4 are written without
    an exponent, e.g. 0.000012; text with a lone surrogate is written in ASCII, with escapes)."""
    options = _OPTIONS | orjson.OPT_INDENT_2 if indent else _OPTIONS
    try:
        return orjson.dumps(value, default=_missing, option=options)
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, numbers out of its range
        # ASCII with \u escapes: the only way to write a lone surrogate as valid JSON.
        return json.dumps(plain(value), indent=2 if indent else None).encode("ascii")


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
