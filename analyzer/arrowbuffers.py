"""Arrow arrays to numpy and back, for the kinds captures hold, from their buffers.

pyarrow's own conversions (``to_numpy``, ``pa.array``, ``pa.scalar``) import pandas on first
use (~0.3 s and ~36 MB), which ``rt-analyze audio`` and ``rt-analyze report`` have no other
need for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

NUMBER_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
    pa.uint16(): np.uint16,
    pa.uint32(): np.uint32,
    pa.uint64(): np.uint64,
    pa.float32(): np.float32,
    pa.float64(): np.float64,
}


def int64_array(values: npt.ArrayLike) -> pa.Array:
    """An Arrow int64 array of ``values`` (over them when they are contiguous int64 already)."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def string_scalar(text: str | None) -> pa.Scalar:
    """An Arrow string scalar (null for None)."""
    if text is None:
        return pa.nulls(1, pa.string())[0]
    return string_array([text])[0]


def string_array(texts: Sequence[str]) -> pa.Array:
    """An Arrow string array of ``texts``."""
    data = [text.encode() for text in texts]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers)


def index_array(indices: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.intp]:
    """Dictionary indices as numbers, null as -1."""
    return number_array(indices, fill=-1).astype(np.intp, copy=False)


def valid(array: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Which values are not null."""
    if isinstance(array, pa.ChunkedArray):
        parts = [valid(chunk) for chunk in array.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)
    if not array.null_count:
        return np.ones(len(array), dtype=np.bool_)
    if array.type == pa.null():
        return np.zeros(len(array), dtype=np.bool_)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(np.bool_)


def number_array(
    column: pa.Array | pa.ChunkedArray, fill: float | None = None
) -> npt.NDArray[np.generic]:
    """A numeric column's values (integers or floats), nulls as ``fill`` (None: NaN, as floats,
    as ``to_numpy`` has them)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    dtype = np.dtype(NUMBER_TYPES[column.type])
    parts = [_numbers(chunk, dtype, fill) for chunk in chunks]
    if not parts:
        return np.zeros(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _numbers(
    array: pa.Array, dtype: np.dtype[np.generic], fill: float | None
) -> npt.NDArray[np.generic]:
    data = array.buffers()[1]
    if data is None:  # all null (or empty)
        values = np.zeros(len(array), dtype=dtype)
    else:
        values = np.frombuffer(data, dtype=dtype)[array.offset : array.offset + len(array)]
    if not array.null_count:
        return values
    return np.where(valid(array), values, np.nan if fill is None else fill)
