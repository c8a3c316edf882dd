"""Names of runs and of the directories they are written to."""

from __future__ import annotations

import secrets
import time
from pathlib import Path


def new_run_id(now_s: float | None = None) -> str:
    """``rt-YYYYmmddTHHMMSSZ-<random>``: sortable, and unique across proxies."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_s))
    return f"rt-{stamp}-{secrets.token_hex(3)}"


def partition_dir(root: Path, now_s: float, host: str) -> Path:
    """``root/date=YYYY-MM-DD/host=HOST``: hive-style partitions (UTC date of the run's start)."""
    safe_host = "".join(c if c.isalnum() or c in "-._" else "_" for c in host) or "unknown"
    return root / f"date={time.strftime('%Y-%m-%d', time.gmtime(now_s))}" / f"host={safe_host}"
