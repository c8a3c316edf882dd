"""Which sessions a dataset command keeps: by time, proxy host, model, dialect, session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.reader import (
    CaptureError,
)
from analyzer.windows import number


def parse_time(text: str) -> float:
    """Epoch seconds from ``2025-01-31``, ``2025-01-31T12:00``, ISO with offset, or a number.
    Times without an offset are UTC."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CaptureError(
            f"cannot read the time {text!r}; write a date (2025-01-31), an ISO time "
            "(2025-01-31T12:00:00Z) or epoch seconds."
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Filters:
    """Which sessions a dataset holds. Empty tuples / None mean "any".

    ``since_s`` / ``until_s`` bound the session's start (``since_s <= start_s < until_s``);
    ``hosts`` are proxy hosts (the ``host=`` partition); ``sessions`` are ids or id prefixes.
    Model and dialect are matched against the session facts the recorder stored.
    """

    since_s: float | None = None
    until_s: float | None = None
    hosts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self != Filters()

    def keeps_partitions(self, partitions: Mapping[str, str]) -> bool:
        """False when a file's partitions rule out every session in it."""
        if self.hosts and partitions.get("host") not in self.hosts:
            return False
        day = partitions.get("date")
        if self.until_s is not None and day is not None:
            try:
                run_day = dt.date.fromisoformat(day)
            except ValueError:
                return True
            # The partition is the UTC day the run started; its sessions start that day or later.
            if run_day > dt.datetime.fromtimestamp(self.until_s, dt.UTC).date():
                return False
        return True

    def keeps(self, facts: Mapping[str, Any]) -> bool:
        """Whether a session (its facts, with ``proxy_host``) is in the dataset. An unknown
        start time passes the time filter here; :meth:`keeps` runs again once it is known."""
        start = number(facts.get("start_s"))
        if start is not None:
            if self.since_s is not None and start < self.since_s:
                return False
            if self.until_s is not None and start >= self.until_s:
                return False
        if self.hosts and facts.get("proxy_host") not in self.hosts:
            return False
        if self.models and facts.get("model") not in self.models:
            return False
        if self.dialects and facts.get("dialect") not in self.dialects:
            return False
        sid = str(facts.get("session_id"))
        return not self.sessions or any(sid.startswith(s) for s in self.sessions)
