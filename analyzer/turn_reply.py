"""What each reply did, from the normalized events: when it was created and ended, its status
and usage, the items it output, and how its audio streamed."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.groups import Groups
from analyzer.kinds import TOKEN_FIELDS, Kind
from analyzer.turn_binding import Control

# Arrival jitter below this is float noise, not a gap in playback.
_STALL_TOLERANCE_MS = 1e-3
_NAN = float("nan")
_REPLY_KINDS = frozenset({Kind.REPLY_START, Kind.REPLY_END, Kind.REPLY_ITEM})


def _number(value: Any) -> float:
    return _NAN if value is None else float(value)


def reply_usage(events: pa.Table) -> list[dict[str, float]]:
    """The token counts (:data:`TOKEN_FIELDS`, NaN when not said) of each REPLY_END, in order."""
    ends = events.select(TOKEN_FIELDS).filter(pc.equal(events.column("kind"), Kind.REPLY_END.value))
    columns = [ends.column(c).to_pylist() for c in TOKEN_FIELDS]
    return [
        dict(zip(TOKEN_FIELDS, map(_number, values), strict=True))
        for values in zip(*columns, strict=True)
    ]


def reply_facts(control: Control, usage: Sequence[dict[str, float]]) -> dict[Any, dict[str, Any]]:
    """Per (session, reply id) of a window's control events (with REPLY_END; ``usage``: each
    REPLY_END's :func:`reply_usage`, in order): created/done times, status, usage, its
    assistant message item and the tools it called."""
    c = control.columns
    sids, kinds, reply_ids, stages = c["session_id"], c["kind"], c["reply_id"], c["stage"]
    item_kinds, item_ids, call_ids, names = c["item_kind"], c["item_id"], c["call_id"], c["name"]
    facts: dict[Any, dict[str, Any]] = {}
    ends = iter(usage)
    for i, kind in enumerate(kinds):
        if kind not in _REPLY_KINDS:
            continue
        used = next(ends) if kind == Kind.REPLY_END else None
        reply_id = reply_ids[i]
        if reply_id is None:
            continue
        fact = facts.setdefault((sids[i], reply_id), {"output_items": [], "done_items": []})
        if kind == Kind.REPLY_START:
            if c["reason"][i] == "created":
                fact.setdefault("response_created_s", c["time_s"][i])
        elif kind == Kind.REPLY_END:
            at_s = c["at_s"][i]  # an end the adapter timed earlier than its frame
            fact["response_done_s"] = c["time_s"][i] if at_s is None or at_s != at_s else at_s
            fact["status"] = c["status"][i]
            fact["status_reason"] = c["reason"][i]
            fact["usage"] = used
            fact["done_items"] = []
        elif stages[i] == "final":
            fact["done_items"].append(i)
        else:
            fact["output_items"].append(i)
    for fact in facts.values():
        items = fact["done_items"] or fact["output_items"]
        fact["assistant_item_id"] = next(
            (
                item_ids[i]
                for i in fact["output_items"] + items
                if item_kinds[i] == "message" and item_ids[i] is not None
            ),
            None,
        )
        found: list[str] = []
        seen: set[str] = set()
        for i in items:
            if item_kinds[i] == "function_call":
                key = str(call_ids[i] or item_ids[i] or len(found))
                if key not in seen and names[i] is not None:
                    seen.add(key)
                    found.append(names[i])
        fact["function_calls"] = found
    return facts


def _fill_replies(audio: pa.Table, events: pa.Table) -> pa.Table:
    """Audio chunks that name no reply belong to the latest reply started before them; chunks
    before any reply are left out."""
    replies = audio.column("reply_id").to_pylist()
    if None not in replies:
        return audio
    is_start = pc.equal(events.column("kind"), Kind.REPLY_START.value)
    starts = events.select(["session_id", "seq", "reply_id"]).filter(is_start)
    by_session: dict[str, tuple[list[int], list[str]]] = {}
    seen: set[tuple[str, str]] = set()
    for session_id, seq, reply_id in zip(
        *(starts.column(c).to_pylist() for c in ("session_id", "seq", "reply_id")), strict=True
    ):
        if (session_id, reply_id) not in seen:
            seen.add((session_id, reply_id))
            seqs, ids = by_session.setdefault(session_id, ([], []))
            seqs.append(seq)
            ids.append(reply_id)
    sessions = audio.column("session_id").to_pylist()
    seqs = audio.column("seq").to_pylist()
    for i, reply_id in enumerate(replies):
        if reply_id is None:
            found = by_session.get(sessions[i], ([], []))
            at = bisect_right(found[0], seqs[i]) - 1
            replies[i] = found[1][at] if at >= 0 else None
    filled = audio.set_column(
        audio.schema.get_field_index("reply_id"), "reply_id", pa.array(replies, pa.string())
    )
    return filled.filter(pc.is_valid(filled.column("reply_id")))


def _delta_items(events: pa.Table) -> dict[tuple[str, str], str]:
    """Each reply's item, as its first audio or transcript chunk names it."""
    kinds = pa.array([Kind.REPLY_AUDIO.value, Kind.REPLY_TRANSCRIPT_DELTA.value])
    mask = pc.and_(
        pc.is_in(events.column("kind"), kinds),
        pc.and_(pc.is_valid(events.column("reply_id")), pc.is_valid(events.column("item_id"))),
    )
    chunks = events.select(["session_id", "reply_id", "item_id"]).filter(mask)
    # In order (one thread): "first" is the first chunk of each reply.
    firsts = chunks.group_by(["session_id", "reply_id"], use_threads=False).aggregate(
        [("item_id", "first")]
    )
    return dict(
        zip(
            zip(
                firsts.column("session_id").to_pylist(),
                firsts.column("reply_id").to_pylist(),
                strict=True,
            ),
            firsts.column("item_id_first").to_pylist(),
            strict=True,
        )
    )


def reply_audio_stats(events: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (session, reply): first/last chunk time, chunks, bytes, play time, streaming health,
    and the reply's item.

    Playback that starts when the first chunk arrives ends the i-th chunk at
    ``C_i + max_{j<=i}(t_j - C_{j-1})`` (C = cumulative play time), so chunk i arrives after
    the buffer ran dry exactly when ``t_i - C_{i-1}`` sets a new maximum; the excess is the
    stall.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {
        key: {"item_id": item} for key, item in _delta_items(events).items()
    }
    columns = ["session_id", "seq", "time_s", "reply_id", "audio_bytes", "audio_ms"]
    audio = events.select(columns).filter(pc.equal(events.column("kind"), Kind.REPLY_AUDIO.value))
    audio = _fill_replies(audio, events) if audio.num_rows else audio
    if not audio.num_rows:
        return found
    keys = pc.binary_join_element_wise(audio.column("session_id"), audio.column("reply_id"), "\0")
    groups = Groups.of(np.asarray(pc.dictionary_encode(keys).combine_chunks().indices))
    audio_bytes = np.nan_to_num(
        audio.column("audio_bytes").to_numpy(zero_copy_only=False).astype(float)
    )
    ms = audio.column("audio_ms").to_numpy(zero_copy_only=False).astype(float)
    time_s = audio.column("time_s").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        first = groups.min(time_s)
        x = (time_s - groups.spread(first)) * 1000.0 - groups.cumsum_before(ms)
        previous_max = groups.previous_max(x)
        gap = np.where(np.isnan(previous_max), 0.0, x - previous_max)
        stall = gap > _STALL_TOLERANCE_MS
        last = groups.max(time_s)
        chunks = groups.sizes()
        unknown = groups.any(np.isnan(ms))
        reply_ms = np.where(unknown, np.nan, groups.sum(np.where(np.isnan(ms), 0.0, ms)))
        stream_ratio = np.round(reply_ms / ((last - first) * 1000.0 + reply_ms / chunks), 3)
        stall_count = groups.sum(stall.astype(np.int64))
        stall_ms = np.round(groups.sum(np.where(stall, gap, 0.0)), 3)
    representative = pa.array(groups.order[groups.starts])
    sessions = audio.column("session_id").take(representative).to_pylist()
    replies = audio.column("reply_id").take(representative).to_pylist()
    total_bytes = groups.sum(audio_bytes)
    reply_ms = np.round(reply_ms, 3)
    for g in range(len(sessions)):
        is_unknown = bool(unknown[g])
        count = int(stall_count[g])
        stats = found.setdefault((sessions[g], replies[g]), {})
        stats.update(
            first_audio_s=float(first[g]),
            last_audio_s=float(last[g]),
            reply_audio_deltas=int(chunks[g]),
            reply_audio_bytes=float(total_bytes[g]),
            reply_audio_ms=float(reply_ms[g]),
            stream_ratio=float(stream_ratio[g]),
            would_stall=None if is_unknown else count > 0,
            stall_count=_NAN if is_unknown else float(count),
            stall_ms=_NAN if is_unknown else float(stall_ms[g]),
        )
    return found


def silence_timeline(control: Control, lo: int, hi: int) -> tuple[list[int], list[float]]:
    """(seqs, silence windows) of the VAD settings the server confirmed, in order (a session's
    rows ``lo`` to ``hi`` of ``control``)."""
    c = control.columns
    seqs: list[int] = [-1]
    values: list[float] = [_NAN]
    for i in range(lo, hi):
        server = c["kind"][i] == Kind.CONFIG and c["direction"][i] == "server"
        if server and c["turn_detection"][i] is not None:
            seqs.append(c["seq"][i])
            values.append(_number(c["silence_ms"][i]))
    return seqs, values


def value_at(timeline: tuple[list[int], list[float]], seq: int) -> float:
    """The value in force at ``seq`` (the last one set at or before it)."""
    seqs, values = timeline
    return values[max(0, bisect_right(seqs, seq) - 1)]
