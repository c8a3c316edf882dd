"""Who a session is to the provider, and when things happened, as people read them.

The recorder names a session by its own id; the provider's support asks for theirs (``sess_...``
in ``session.created`` / GPT-Live's ``session.started``, Gemini's ``setupComplete.sessionId``
where the server sends one). The recorder keeps it in the session's facts
(:func:`analyzer.recording.session.refine_facts`); for captures recorded before it did, it is
read from the frames' text when the report reads them. Times are ISO 8601 in UTC to the
millisecond.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.recording.session import SESSION_EVENTS, provider_session_id


def iso_ms(epoch_s: Any) -> str | None:
    """``2026-11-23T21:15:36.123Z`` (UTC, to the millisecond); None when unknown."""
    if epoch_s is None or (isinstance(epoch_s, float) and math.isnan(epoch_s)):
        return None
    moment = dt.datetime.fromtimestamp(float(epoch_s), dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def provider_session_ids(table: pa.Table, facts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Recorder session id -> the provider's session id, from a window of frames (``facts``
    by session id pick each session's protocol)."""
    if not {"event_type", "content", "direction", "session_id"} <= set(table.column_names):
        return {}
    if table["content"].null_count == table.num_rows:  # not read: the events are recorded
        return {}
    mask = pc.and_(
        pc.is_in(table["event_type"], value_set=pa.array(sorted(SESSION_EVENTS))),
        pc.equal(table["direction"], "server"),
    )
    found = table.filter(mask).select(["session_id", "content"]).to_pylist()
    ids: dict[str, str] = {}
    for row in found:
        sid = str(row["session_id"])
        if sid not in ids:
            provider_id = _session_id(facts.get(sid, {}), row["content"])
            if provider_id is not None:
                ids[sid] = provider_id
    return ids


def _session_id(facts: Mapping[str, Any], content: Any) -> str | None:
    try:
        event = json.loads(content) if isinstance(content, str | bytes) else None
    except ValueError:
        return None
    return provider_session_id(facts, event)
