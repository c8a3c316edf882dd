"""Each session of a capture or a window of a dataset analyzed: its conversation, turns, sizes
and summaries, from the event table (the report, exports and plots read these)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzer.conversation import Conversation, conversations
from analyzer.events import event_table, frames_to_arrow
from analyzer.identity import provider_session_ids
from analyzer.jsonio import plain
from analyzer.protocols.realtime_events import dialect_of_event
from analyzer.reader import Capture, Sessions
from analyzer.session_summary import WindowSummaries
from analyzer.session_usage import session_audio_seconds
from analyzer.sizes import WindowSizes, size_table
from analyzer.transcription import session_setups
from analyzer.turns import turn_table, turns_from_events


@dataclass
class SessionAnalysis:
    """Everything computed for one session. Turns and sizes are kept as rows (a report of
    thousands of sessions cannot afford pandas tables per session); ``turns`` and ``sizes``
    give them as tables when asked."""

    session_id: str
    facts: dict[str, Any]
    dialect: str | None
    turn_rows: list[dict[str, Any]]  # TURN_COLUMNS
    conversation: Conversation
    window_sizes: WindowSizes = field(default_factory=WindowSizes.empty)  # its window's sizes
    setup: dict[str, Any] = field(default_factory=dict)  # kind, transcription_model
    summaries: WindowSummaries = field(default_factory=WindowSummaries)  # its window's

    @cached_property
    def size_rows(self) -> list[dict[str, Any]]:
        """BY_EVENT_COLUMNS rows, as :func:`analyzer.sizes.sizes_by_event` gives them."""
        return self.window_sizes.rows(self.session_id)

    @property
    def size_sums(self) -> list[tuple[str, str, list[int]]]:
        """(direction, event type, SIZE_COLUMNS) of each of :attr:`size_rows`."""
        return self.window_sizes.by_event(self.session_id)

    def size_totals(self) -> dict[str, Any]:
        """:func:`analyzer.sizes.size_totals` of :attr:`size_rows`."""
        return self.window_sizes.totals(self.session_id)

    @cached_property
    def turns(self) -> pd.DataFrame:
        """The turn table (:func:`analyzer.turns.build_turns`)."""
        return turn_table(self.turn_rows)

    @cached_property
    def sizes(self) -> pd.DataFrame:
        """:func:`analyzer.sizes.sizes_by_event` of the session."""
        return size_table(self.size_rows)


def infer_dialect(frames: pd.DataFrame) -> str | None:
    """'beta' or 'ga' from the event types seen (the first dialect-only type wins), else None."""
    if frames.empty:
        return None
    for event_type in frames["event_type"].dropna().drop_duplicates():
        dialect = dialect_of_event(str(event_type))
        if dialect is not None:
            return dialect
    return None


def analyze_session(session_frames: pd.DataFrame, facts: Mapping[Any, Any]) -> SessionAnalysis:
    """Conversation, turns and sizes of one session (pure)."""
    capture = Capture(session_frames, pd.DataFrame([dict(facts)]))
    (analysis,) = analyze_capture(capture)
    return analysis


def analyze_capture(capture: Capture) -> Iterator[SessionAnalysis]:
    """:func:`analyze_session` for each session of a capture, in start order. Each pandas
    operation runs once over the whole capture rather than once per session; what is left per
    session is plain Python over its few rows."""
    frames = _sorted_frames(capture.frames)
    if frames.empty:
        return (_without_frames(facts) for facts in _clean_facts(capture.sessions))
    return _analyses(frames_to_arrow(frames), capture.sessions)


def analyze_window(table: pa.Table, sessions: Sessions) -> Iterator[SessionAnalysis]:
    """:func:`analyze_capture` of a window of frames in Arrow, already sorted by session, then
    seq (``Dataset.iter_windows``), and its sessions: no pandas table of the frames is built."""
    if not table.num_rows:
        return (_without_frames(facts) for facts in _clean_facts(sessions))
    return _analyses(table, sessions)


def _clean_facts(sessions: Sessions) -> list[dict[str, Any]]:
    """Each session's facts as plain JSON values. A table's are taken out column by column:
    ``to_dict`` takes each Arrow-backed string out on its own (~10x slower)."""
    if isinstance(sessions, list):
        return [{str(k): plain(v) for k, v in row.items()} for row in sessions]
    names = [str(c) for c in sessions.columns]
    columns = [sessions[c].tolist() for c in sessions.columns]
    return [
        {name: plain(value) for name, value in zip(names, row, strict=True)}
        for row in zip(*columns, strict=True)
    ]


def _problems(table: pa.Table) -> dict[str, dict[str, int]]:
    """Frames the recorder could not fully understand, by session and reason."""
    if "problem" not in table.column_names:
        return {}
    found = table.filter(pc.is_valid(table.column("problem"))).select(["session_id", "problem"])
    counts: dict[str, dict[str, int]] = {}
    for session_id, problem in zip(*found.to_pydict().values(), strict=True):
        mine = counts.setdefault(str(session_id), {})
        mine[problem] = mine.get(problem, 0) + 1
    return {sid: dict(sorted(c.items())) for sid, c in counts.items()}


def _analyses(table: pa.Table, sessions: Sessions) -> Iterator[SessionAnalysis]:
    clean = _clean_facts(sessions)
    facts_of = {str(f.get("session_id")): f for f in clean}
    events = event_table(table, facts_of)
    found = conversations(events, _problems(table))
    item_rows = {sid: c.item_rows for sid, c in found.items()}
    turn_rows = turns_from_events(events, item_rows)
    setups = session_setups(events)
    provider_ids = provider_session_ids(table, facts_of)
    for sid, seconds in session_audio_seconds(events).items():  # GPT-Live: billed by duration
        setups.setdefault(sid, {})["audio_seconds"] = seconds
    sizes = WindowSizes.of(table)
    summaries = WindowSummaries.of(turn_rows)
    dialects = _dialects(table, [sid for sid, f in facts_of.items() if not f.get("dialect")])
    for facts in clean:
        sid = str(facts.get("session_id"))
        if sid not in sizes.ranges:
            yield _without_frames(facts)
            continue
        conversation = found.get(sid, Conversation())
        yield SessionAnalysis(
            session_id=sid,
            facts={
                **facts,
                "provider_session_id": facts.get("provider_session_id") or provider_ids.get(sid),
            },
            dialect=facts.get("dialect") or dialects.get(sid),
            turn_rows=turn_rows.get(sid, []),
            conversation=conversation,
            window_sizes=sizes,
            setup=setups.get(sid, {}),
            summaries=summaries,
        )


def _without_frames(facts: dict[str, Any]) -> SessionAnalysis:
    """A session known from its facts only (no frame of it was read)."""
    return SessionAnalysis(
        str(facts.get("session_id")), facts, facts.get("dialect"), [], Conversation()
    )


def _sorted_frames(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` sorted by session, then seq (stable), with a default index."""
    if frames.empty:
        return frames
    sids = frames["session_id"].astype(object).to_numpy()
    seqs = frames["seq"].to_numpy()
    same = sids[1:] == sids[:-1]
    try:
        ordered = bool(np.all(same | (sids[1:] > sids[:-1])))
    except TypeError:  # ids of mixed types: let pandas sort them
        ordered = False
    ordered = ordered and bool(np.all(~same | (seqs[1:] >= seqs[:-1])))
    if not ordered:
        frames = frames.sort_values(["session_id", "seq"], kind="stable")
    index = frames.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        frames = frames.reset_index(drop=True)
    return _for_analysis(frames)


# Compared and filtered dozens of times per analysis: as categories, each comparison is one
# over small integer codes instead of over a million strings.
_CATEGORY_COLUMNS = ("direction", "event_type")


def _for_analysis(frames: pd.DataFrame) -> pd.DataFrame:
    """``frames`` with the dtypes the analysis runs fastest on: categories for the columns it
    compares, and Python strings (object) rather than Arrow-backed ones for those it walks in
    Python (each Arrow-backed element costs ~1 us to take out)."""
    convert: dict[str, Any] = {
        c: "category"
        for c in _CATEGORY_COLUMNS
        if c in frames and not isinstance(frames[c].dtype, pd.CategoricalDtype)
    }
    for column, dtype in frames.dtypes.items():
        if isinstance(dtype, pd.StringDtype) and column not in convert:
            convert[str(column)] = object
    return frames.astype(convert) if convert else frames


def _dialects(table: pa.Table, sessions: list[str]) -> dict[str, str]:
    """:func:`infer_dialect` of each of ``sessions`` that has one: the dialect of the first of
    its event types (in arrival order) that tells. For sessions whose facts do not say
    (recorders since session 7 take it from the handshake)."""
    if not sessions:
        return {}
    table = table.filter(
        pc.is_in(pc.cast(table.column("session_id"), pa.string()), pa.array(sessions, pa.string()))
    )
    typed = table.select(["session_id", "event_type", "seq"]).filter(
        pc.is_valid(table.column("event_type"))
    )
    firsts = (
        pa.table(
            {
                "session_id": pc.cast(typed.column("session_id"), pa.string()),
                "event_type": pc.cast(typed.column("event_type"), pa.string()),
                "seq": typed.column("seq"),
            }
        )
        .group_by(["session_id", "event_type"], use_threads=False)
        .aggregate([("seq", "min")])
        .sort_by([("session_id", "ascending"), ("seq_min", "ascending")])
    )
    found: dict[str, str] = {}
    for session_id, event_type in zip(
        firsts.column("session_id").to_pylist(),
        firsts.column("event_type").to_pylist(),
        strict=True,
    ):
        if session_id not in found:
            dialect = dialect_of_event(event_type)
            if dialect is not None:
                found[session_id] = dialect
    return found


def all_turns(analyses: list[SessionAnalysis]) -> pd.DataFrame:
    """The turn tables of all sessions, one after the other."""
    return turn_table([row for a in analyses for row in a.turn_rows])
