"""The CLI's process picks its allocators before pyarrow is imported (analyzer/allocators.py)."""

from __future__ import annotations

import os
import subprocess
import sys

_POOL = "import analyzer.cli, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _pool(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _POOL], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_cli_makes_the_c_allocator_arrows_default_pool() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert _pool(env) == "system"


def test_a_pool_the_user_chose_is_kept() -> None:
    assert _pool({**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}) == "jemalloc"
