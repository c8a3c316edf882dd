"""The per-session summaries of a window's sessions (latency, streaming, tokens, cost), all
computed at once from one block of turn columns (:mod:`analyzer.summaries`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzer.latency import LATENCY_METRICS, STREAMING_INPUTS
from analyzer.pricing import Prices
from analyzer.sizes import cost_dict
from analyzer.summaries import (
    NO_STREAMING,
    TurnBlock,
    latency_summaries,
    reply_costs_usd,
    streaming_summaries,
    token_summaries,
)
from analyzer.turns import TOKEN_COLUMNS

# The turn columns the summaries read.
SUMMARY_INPUTS: tuple[str, ...] = (*LATENCY_METRICS, *TOKEN_COLUMNS, *STREAMING_INPUTS)

_NO_LATENCY: dict[str, dict[str, Any]] = {
    m: {"count": 0, "p50": None, "p90": None, "p99": None, "max": None} for m in LATENCY_METRICS
}


@dataclass
class WindowSummaries:
    """Each session's summaries; a session without turns has the empty ones."""

    block: TurnBlock = field(default_factory=lambda: TurnBlock({}, np.zeros(1, dtype=np.intp)))
    group: dict[str, int] = field(default_factory=dict)  # session id -> group in ``block``
    latency: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    streaming: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    # Every session's reply cost at some prices: a window's sessions mostly share one model,
    # so the costs are computed once for all of them.
    _costs_at: dict[Prices, list[float | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, turn_rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> WindowSummaries:
        """The summaries of every session's turn rows (dicts with :data:`SUMMARY_INPUTS`)."""
        sessions = [sid for sid, rows in turn_rows.items() if rows]
        block = TurnBlock.of_groups([turn_rows[sid] for sid in sessions], SUMMARY_INPUTS)
        return cls(
            block,
            {sid: g for g, sid in enumerate(sessions)},
            latency_summaries(block, LATENCY_METRICS),
            streaming_summaries(block),
            token_summaries(block),
        )

    def latency_of(self, session_id: str) -> dict[str, dict[str, Any]]:
        g = self.group.get(session_id)
        return _NO_LATENCY if g is None else self.latency[g]

    def streaming_of(self, session_id: str) -> dict[str, Any]:
        g = self.group.get(session_id)
        return dict(NO_STREAMING) if g is None else self.streaming[g]

    def tokens_of(self, session_id: str) -> dict[str, Any]:
        g = self.group.get(session_id)
        if g is None:
            return {"responses": 0, **dict.fromkeys(TOKEN_COLUMNS)}
        return self.tokens[g]

    def cost_of(
        self, session_id: str, model: str | None, prices: Mapping[str, Prices] | None
    ) -> dict[str, Any]:
        """:func:`analyzer.sizes.session_cost` of the session's turns."""
        g = self.group.get(session_id)
        return cost_dict(model, prices, lambda table: None if g is None else self._costs(table)[g])

    def _costs(self, prices: Prices) -> list[float | None]:
        if prices not in self._costs_at:
            self._costs_at[prices] = reply_costs_usd(self.block, [prices] * self.block.groups)
        return self._costs_at[prices]
