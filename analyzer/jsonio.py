"""Fast JSON in and out (orjson), falling back to the standard library for what orjson refuses:
lone surrogates (a "\\ud800" escape a client or server sent), NaN literals, huge integers."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads_json(text: str | bytes) -> Any:
    """``json.loads``, several times faster on the frames a capture holds."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def dumps_json(value: Any, indent: bool = False) -> bytes:
    """UTF-8 JSON of plain values, compact or indented by two spaces like
    ``json.dumps(value, indent=2, ensure_ascii=False)`` (floats below 1e-4 are written without
    an exponent, e.g. 0.000012; text with a lone surrogate is written in ASCII, with escapes)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, numbers out of its range
        # ASCII with \u escapes: the only way to write a lone surrogate as valid JSON.
        return json.dumps(value, indent=2 if indent else None).encode("ascii")
