"""When filters match no session: an error that says what the captures hold instead.

An empty table after ``--session nosuch`` looks like an answer ("no turns were slow"); it is a
typo. The sessions that are there are listed so the next try can be right.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analyzer.dataset import Dataset, with_filters
from analyzer.filters import Filters

# Session ids listed in the message before "..." (ids are 36 characters).
SHOWN_SESSIONS = 5


class NoMatch(Exception):
    """Filters ruled out every session; the message lists what there was."""


def iso_time(epoch_s: Any) -> str | None:
    """``2025-11-23T21:15:30Z`` of epoch seconds (UTC, to the second); None when unknown."""
    if epoch_s is None or (isinstance(epoch_s, float) and math.isnan(epoch_s)):
        return None
    moment = dt.datetime.fromtimestamp(float(epoch_s), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _counted(values: Iterable[Any]) -> str:
    counts = Counter("?" if v is None or v != v else str(v) for v in values)
    return ", ".join(f"{value} ({n})" for value, n in counts.most_common())


def held_sessions(rows: Sequence[Mapping[Any, Any]]) -> str:
    """What sessions the captures hold, in one clause: ids, models, dialects, proxy hosts and
    when they started."""
    if not rows:
        return "the captures hold no session at all"
    rows = sorted(rows, key=lambda r: iso_time(r.get("start_s")) or "")
    ids = [str(r["session_id"]) for r in rows]
    shown = ", ".join(ids[:SHOWN_SESSIONS]) + (", ..." if len(ids) > SHOWN_SESSIONS else "")
    starts = sorted(t for t in (iso_time(r.get("start_s")) for r in rows) if t is not None)
    parts = [
        f"the captures hold {len(rows)} session(s): {shown}",
        f"models {_counted(r.get('model') for r in rows)}",
        f"dialects {_counted(r.get('dialect') for r in rows)}",
    ]
    hosts = [r.get("proxy_host") for r in rows if r.get("proxy_host")]
    if hosts:
        parts.append(f"proxy hosts {_counted(hosts)}")
    if starts:
        parts.append(f"started {starts[0]}" + (f" to {starts[-1]}" if len(starts) > 1 else ""))
    return "; ".join(parts)


def filters_text(filters: Filters) -> str:
    """The filters as the options that set them (``--model x --session y``)."""
    words: list[str] = []
    if filters.since_s is not None:
        words.append(f"--since {iso_time(filters.since_s)}")
    if filters.until_s is not None:
        words.append(f"--until {iso_time(filters.until_s)}")
    for option, values in (
        ("--host", filters.hosts),
        ("--model", filters.models),
        ("--dialect", filters.dialects),
        ("--session", filters.sessions),
    ):
        words.extend(f"{option} {_short(v)}" for v in values)
    return " ".join(words)


def _short(value: str, width: int = 40) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def no_match_message(dataset: Dataset, side: str = "") -> str:
    """One sentence: the dataset's filters match no session, and what it holds instead."""
    everything = with_filters(dataset, Filters())
    rows = everything.sessions().to_dict("records")
    return f"{side}{filters_text(dataset.filters)} matches no session; {held_sessions(rows)}."


def require_matches(dataset: Dataset, found: int | None = None, side: str = "") -> None:
    """Raise :class:`NoMatch` when the dataset has filters and the last pass over it read no
    session (or ``found``, a count the caller has, is 0). ``side`` prefixes the message."""
    if not dataset.filters.active:
        return
    count = len(dataset.read_from) if found is None else found
    if count == 0:
        raise NoMatch(no_match_message(dataset, side))
