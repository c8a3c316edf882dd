"""A whole dataset analyzed run file by run file, in bounded memory: turns, sizes, the report."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa

from analyzer.analysis import SessionAnalysis, analyze_window
from analyzer.collector import bulk_allocation
from analyzer.dataset import Dataset
from analyzer.jsonio import dumps_json, loads_json
from analyzer.latency import float_list
from analyzer.prefetch import prefetched
from analyzer.pricing import Prices
from analyzer.report import (
    SUMMARY_TURN_COLUMNS,
    jsonable,
    session_dict,
    session_dicts,
    summary_of,
)
from analyzer.schema import (
    REPORT_COLUMNS,
)
from analyzer.sizes import (
    BY_EVENT_COLUMNS,
    SIZE_COLUMNS,
    SIZE_INPUT_COLUMNS,
    column_sums,
    sizes_of_frames,
)
from analyzer.turns import turn_table

# Turn-table columns that tell runs and machines apart; prepended by :func:`dataset_turns`.
DATASET_TURN_KEYS: tuple[str, ...] = ("run_id", "date", "proxy_host")


def iter_analyses(dataset: Dataset) -> Iterator[SessionAnalysis]:
    """:func:`analyzer.analysis.analyze_session` of every session, one run file at a time."""
    for table, sessions in dataset.iter_windows(REPORT_COLUMNS):
        yield from analyze_window(table, sessions)


def with_dataset_keys(turns: pd.DataFrame, facts: Mapping[str, Any]) -> pd.DataFrame:
    """A session's turn table as a dataset's: preceded by :data:`DATASET_TURN_KEYS` and
    followed by the provider's session id (every engine and export gives these columns)."""
    keyed = turns.copy()
    for position, key in enumerate(DATASET_TURN_KEYS):
        keyed.insert(position, key, _texts([facts.get(key)] * len(keyed), keyed.index))
    keyed["provider_session_id"] = _texts(  # analyzer.identity
        [facts.get("provider_session_id")] * len(keyed), keyed.index
    )
    return keyed


def _texts(values: list[Any], index: pd.Index | None = None) -> pd.Series:
    """A text column of the turn table: objects (str or None), as its other text columns."""
    return pd.Series(values, index=index, dtype=object)


@dataclass
class DatasetTurns:
    """The turn rows of many sessions with their :data:`DATASET_TURN_KEYS` (and provider session
    id), made one table at the end: a table per session and their concatenation took ~10x the
    report's time on a 1 GB capture of 1,757 sessions."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, list[Any]] = field(
        default_factory=lambda: {k: [] for k in (*DATASET_TURN_KEYS, "provider_session_id")}
    )

    def add(self, analysis: SessionAnalysis) -> None:
        self.rows.extend(analysis.turn_rows)
        for key, values in self.keys.items():
            values.extend([analysis.facts.get(key)] * len(analysis.turn_rows))

    def table(self) -> pd.DataFrame:
        """The turn table (:data:`analyzer.turns.TURN_COLUMNS`), preceded by the keys and
        followed by ``provider_session_id``, as :func:`with_dataset_keys` makes it."""
        table = turn_table(self.rows)
        for position, key in enumerate(DATASET_TURN_KEYS):
            table.insert(position, key, _texts(self.keys[key]))
        table["provider_session_id"] = _texts(self.keys["provider_session_id"])
        return table


def dataset_turns(dataset: Dataset) -> pd.DataFrame:
    """The turn table of every session (:data:`analyzer.turns.TURN_COLUMNS`), preceded by
    ``run_id``, ``date`` and ``proxy_host`` so that sessions of different runs never clash."""
    turns = DatasetTurns()
    for analysis in iter_analyses(dataset):
        turns.add(analysis)
    return turns.table()


def dataset_sizes(dataset: Dataset) -> pd.DataFrame:
    """:func:`analyzer.sizes.sizes_by_event` of the whole dataset, aggregated in Arrow one run
    file at a time from the size columns only."""
    parts = [sizes_of_frames(table) for _, table, _ in dataset.iter_tables(SIZE_INPUT_COLUMNS)]
    if not parts:
        return pd.DataFrame(columns=list(BY_EVENT_COLUMNS)).astype(
            {c: "int64" for c in SIZE_COLUMNS}
        )
    result = pa.concat_tables(parts).to_pandas()
    result = result.sort_values(["session_id", "direction", "event_type"], kind="stable")
    for column in SIZE_COLUMNS:
        result[column] = result[column].astype("int64")
    return result[list(BY_EVENT_COLUMNS)].reset_index(drop=True)


# How ReportParts keeps each session's JSON (pyarrow's codecs: no extra dependency).
_CODEC = pa.Codec("lz4")
# What ReportParts takes of a turn row and of a size row.
_summary_columns = itemgetter(*SUMMARY_TURN_COLUMNS)
_size_columns = itemgetter("direction", "event_type", *SIZE_COLUMNS)

# Turns gathered before they are merged into one block: a pandas DataFrame per session would
# cost kilobytes of overhead, and Python values cost ~10x a block's memory.
_MERGE_EVERY = 2_000
# Size rows gathered before they are summed: summing a column at a time is ~3x faster than
# adding row by row.
_MERGE_SIZES_EVERY = 20_000


def _turn_block(rows: Sequence[tuple[Any, ...]]) -> dict[str, np.ndarray]:
    """Turn rows of ``SUMMARY_TURN_COLUMNS`` as arrays: floats (NaN when missing), except
    ``interrupted`` (bools) and ``would_stall`` (True, False or None)."""
    block: dict[str, np.ndarray] = {}
    for name, values in zip(SUMMARY_TURN_COLUMNS, zip(*rows, strict=True), strict=True):
        if name == "interrupted":
            block[name] = np.array([bool(v) for v in values], dtype=bool)
        elif name == "would_stall":
            block[name] = np.empty(len(values), dtype=object)
            block[name][:] = values
        else:
            block[name] = np.array(float_list(values), dtype=float)
    return block


@dataclass
class ReportParts:
    """What a report keeps of sessions already analyzed: each session's report as compact JSON,
    the turn columns the summary needs (merged into blocks) and the size aggregates (rolled up
    over sessions as they come). Memory grows with the report, not the dataset."""

    # Each session's report as the indented JSON the report file holds, LZ4-compressed (with
    # its size): ~10 kB of JSON a session would make the report of a fleet of 100,000 sessions
    # hold 1 GB. Kept as written, so writing the report decodes nothing; LZ4 is ~6x faster
    # than zlib, for ~1.4x the bytes.
    sessions: list[tuple[int, bytes]] = field(default_factory=list)
    # Per session: what ``summarize`` reads of it (start, cost, dialect, errors), kept apart so
    # the summary can be written without decoding every session again.
    briefs: list[dict[str, Any]] = field(default_factory=list)
    # The summary's turn columns (``SUMMARY_TURN_COLUMNS``) in blocks of arrays.
    turns: list[dict[str, np.ndarray]] = field(default_factory=list)
    sizes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    _pending_turns: list[tuple[Any, ...]] = field(default_factory=list)  # SUMMARY_TURN_COLUMNS
    # Size rows by (direction, event type) not yet added into ``sizes``.
    _pending_sizes: dict[tuple[str, str], list[Sequence[Any]]] = field(default_factory=dict)
    _pending_size_rows: int = 0

    def add(
        self,
        session: dict[str, Any] | str,
        turns: Sequence[Mapping[str, Any]],
        sizes: Sequence[Mapping[str, Any]] = (),
        size_sums: Sequence[tuple[str, str, Sequence[int]]] = (),
    ) -> None:
        """One session: its report dict (or its JSON), turn rows and size rows, or
        instead of size rows their (direction, event type, SIZE_COLUMNS) sums."""
        data = session if isinstance(session, dict) else loads_json(session)
        text = dumps_json(data, indent=True)
        self.sessions.append((len(text), _CODEC.compress(text, asbytes=True)))
        self.briefs.append(
            {
                "start_s": data.get("start_s"),
                "cost": {"usd": (data.get("cost") or {}).get("usd")},
                "kind": data.get("kind"),
                "transcription_cost": {"usd": (data.get("transcription_cost") or {}).get("usd")},
                "dialect": data.get("dialect"),
                "errors": [None] * len(data.get("errors") or []),
            }
        )
        # The summary's columns only: the rows themselves hold transcripts and ids.
        self._pending_turns.extend(map(_summary_columns, turns))
        pending = self._pending_sizes
        for direction, event_type, *values in map(_size_columns, sizes):
            pending.setdefault((str(direction), str(event_type)), []).append(values)
        for direction, event_type, sums in size_sums:
            pending.setdefault((direction, event_type), []).append(sums)
        self._pending_size_rows += len(sizes) + len(size_sums)
        if self._pending_size_rows >= _MERGE_SIZES_EVERY:
            self._merge_sizes()
        if len(self._pending_turns) >= _MERGE_EVERY:
            self._merge()

    def _merge_sizes(self) -> None:
        for key, sums in column_sums(self._pending_sizes).items():
            if key in self.sizes:
                sums = [a + b for a, b in zip(self.sizes[key], sums, strict=True)]
            self.sizes[key] = sums
        self._pending_sizes, self._pending_size_rows = {}, 0

    def _merge(self) -> None:
        self._merge_sizes()
        if self._pending_turns:
            self.turns.append(_turn_block(self._pending_turns))
            self._pending_turns = []

    def _session_text(self, i: int) -> bytes:
        size, packed = self.sessions[i]
        text: bytes = _CODEC.decompress(packed, decompressed_size=size, asbytes=True)
        return text

    def _session(self, i: int) -> Any:
        return loads_json(self._session_text(i))

    def _order(self) -> list[int]:
        starts = [b["start_s"] for b in self.briefs]
        return sorted(range(len(starts)), key=lambda i: (starts[i] is None, starts[i] or 0.0))

    def summary(self, sources: Sequence[Path], warnings: Sequence[str]) -> dict[str, Any]:
        """The report's ``summary``."""
        self._merge()
        turns = {
            c: np.concatenate([block[c] for block in self.turns])
            if self.turns
            else np.zeros(0, dtype=bool if c == "interrupted" else float)
            for c in SUMMARY_TURN_COLUMNS
        }
        size_rows = [
            {"direction": d, "event_type": t, **dict(zip(SIZE_COLUMNS, sums, strict=True))}
            for (d, t), sums in self.sizes.items()
        ]
        summary: dict[str, Any] = jsonable(
            summary_of(turns, size_rows, self.briefs, sources, warnings)
        )
        return summary

    def write_json(self, out: TextIO, sources: Sequence[Path], warnings: Sequence[str]) -> None:
        """Write the report as ``json.dumps(report, indent=2, ensure_ascii=False)`` would (but
        floats below 1e-4 without an exponent), one session at a time: a fleet's report can be
        bigger than memory as Python objects."""
        pad = "  "
        out.write("{\n" + pad + '"sessions": [')
        order = self._order()
        for n, i in enumerate(order):
            # Indented JSON has no empty lines and no raw newline inside strings.
            text = self._session_text(i).replace(b"\n", b"\n" + pad.encode() * 2).decode()
            out.write(("," if n else "") + "\n" + pad * 2 + text)
        out.write(("\n" + pad if order else "") + "],\n" + pad + '"summary": ')
        summary = dumps_json(self.summary(sources, warnings), indent=True).decode()
        out.write(summary.replace("\n", "\n" + pad) + "\n}")

    def report(self, sources: Sequence[Path], warnings: Sequence[str]) -> dict[str, Any]:
        """``{"sessions": [...] (in start order), "summary": {...}}`` as ``build_report``."""
        summary = self.summary(sources, warnings)
        sessions = [self._session(i) for i in self._order()]
        return {"sessions": sessions, "summary": summary}


def session_report(
    analysis: SessionAnalysis,
    prices: Mapping[str, Prices] | None = None,
    session: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`analyzer.report.session_dict` (``session``, if already built) plus the
    session's ``date`` and ``proxy_host``."""
    session = session_dict(analysis, prices) if session is None else session
    session["date"] = analysis.facts.get("date")
    session["proxy_host"] = analysis.facts.get("proxy_host")
    return session


def report_parts(dataset: Dataset, prices: Mapping[str, Prices] | None = None) -> ReportParts:
    """Analyze the dataset run file by run file, keeping only what the report needs."""
    parts = ReportParts()
    with bulk_allocation():
        for table, sessions in prefetched(dataset.iter_windows(REPORT_COLUMNS)):
            analyses = list(analyze_window(table, sessions))
            for analysis, session in zip(analyses, session_dicts(analyses, prices), strict=True):
                parts.add(
                    session_report(analysis, prices, session),
                    analysis.turn_rows,
                    size_sums=analysis.size_sums,
                )
    return parts


def dataset_report(dataset: Dataset, prices: Mapping[str, Prices] | None = None) -> dict[str, Any]:
    """The report of ``rt-analyze report`` (:func:`analyzer.report.build_report`'s shape, each
    session with ``date`` and ``proxy_host``), computed run file by run file in bounded memory:
    only per-session results, turn rows and size aggregates are kept. For fleets whose report
    itself is big, :meth:`ReportParts.write_json` of :func:`report_parts` writes it streaming."""
    return report_parts(dataset, prices).report(dataset.files_read, dataset.warnings)
