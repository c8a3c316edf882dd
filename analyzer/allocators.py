"""The memory allocators of the ``rt-analyze`` command's process (imported by the CLI before
pyarrow; the library itself leaves its users' allocators alone).

Measured on the report of a 1 GB capture (peak RSS, bench/README.md): Arrow's C++ default pool,
chosen once when pyarrow is imported, is mimalloc, which keeps what a window of frames used
for the next one (``pa.set_memory_pool`` in the CLI changes only the pool pyarrow's Python calls
use): the C allocator instead, -27 MB. glibc gives each thread that allocates under contention
an arena of its own (Arrow's decoding threads, the prefetching thread), and freed memory stays
in each: two arenas, -16 MB more. Neither cost measurable CPU.
"""

from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt parameter (malloc.h).
_M_ARENA_MAX = -8


def lean_allocators() -> None:
    """Arrow's C++ pool the C allocator (unless the user chose one), glibc's arenas two."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to set
        pass


lean_allocators()
