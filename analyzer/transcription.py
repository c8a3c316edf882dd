"""Speech-to-text, from the normalized events: what each session is for and which model
transcribes it, and per user input its transcript deltas, usage and log probabilities."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analyzer.kinds import Kind
from analyzer.turn_binding import Control

# Turn columns about the transcription of the user's input (see :func:`transcription_columns`).
USAGE_COLUMNS: dict[str, str] = {  # turn column -> event field
    "transcription_input_tokens": "input_tokens",
    "transcription_output_tokens": "output_tokens",
    "transcription_total_tokens": "total_tokens",
    "transcription_input_text_tokens": "input_text_tokens",
    "transcription_input_audio_tokens": "input_audio_tokens",
    "transcription_audio_seconds": "audio_seconds",
}
TRANSCRIPTION_COLUMNS: tuple[str, ...] = (
    "transcription_model",
    "transcription_first_delta_s",
    "transcription_deltas",
    *USAGE_COLUMNS,
    "transcription_logprobs",
    "transcription_logprob_mean",
)
FLOAT_COLUMNS: tuple[str, ...] = tuple(
    c for c in TRANSCRIPTION_COLUMNS if c not in ("transcription_model",)
)
_NAN = float("nan")
_FIELDS = ("session_id", "kind", "time_s", "item_id", "logprob_count", "logprob_mean")


def _number(value: Any) -> float:
    return _NAN if value is None else float(value)


def item_transcriptions(events: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (session, user item): when its first transcript delta came, how many came, the
    usage of its final transcript, and its log probabilities (those of the final transcript,
    else of its deltas: count and mean)."""
    kinds = pa.array([Kind.USER_TRANSCRIPT_DELTA.value, Kind.USER_TRANSCRIPT.value])
    mask = pc.and_(pc.is_in(events.column("kind"), kinds), pc.is_valid(events.column("item_id")))
    fields = [*_FIELDS, *dict.fromkeys(USAGE_COLUMNS.values())]
    rows = events.select(fields).filter(mask).to_pylist()
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["session_id"], row["item_id"])
        fact = found.setdefault(
            key, {"first_delta_s": _NAN, "deltas": 0, "delta_logprobs": [0, 0.0], "final": None}
        )
        if row["kind"] == Kind.USER_TRANSCRIPT_DELTA:
            if fact["deltas"] == 0:
                fact["first_delta_s"] = row["time_s"]
            fact["deltas"] += 1
            count = row["logprob_count"] or 0
            if count and row["logprob_mean"] is not None:
                fact["delta_logprobs"][0] += count
                fact["delta_logprobs"][1] += count * row["logprob_mean"]
        elif fact["final"] is None:
            fact["final"] = row
    return found


def transcription_columns(fact: Mapping[str, Any] | None, model: str | None) -> dict[str, Any]:
    """A turn's :data:`TRANSCRIPTION_COLUMNS` from its item's :func:`item_transcriptions`."""
    out: dict[str, Any] = dict.fromkeys(FLOAT_COLUMNS, _NAN)
    out["transcription_model"] = model
    if fact is None:
        out["transcription_deltas"] = 0.0
        return out
    out["transcription_first_delta_s"] = fact["first_delta_s"]
    out["transcription_deltas"] = float(fact["deltas"])
    final = fact["final"]
    if final is not None:
        for column, source in USAGE_COLUMNS.items():
            out[column] = _number(final[source])
    count, total = fact["delta_logprobs"]
    if final is not None and final["logprob_count"] is not None:
        out["transcription_logprobs"] = float(final["logprob_count"])
        out["transcription_logprob_mean"] = _number(final["logprob_mean"])
    elif count:
        out["transcription_logprobs"] = float(count)
        out["transcription_logprob_mean"] = round(total / count, 6)
    return out


def model_timeline(control: Control, lo: int, hi: int) -> tuple[list[int], list[str | None]]:
    """(seqs, models) of the transcription models a session's configs name, in order (its rows
    ``lo`` to ``hi`` of ``control``)."""
    c = control.columns
    seqs: list[int] = [-1]
    models: list[str | None] = [None]
    for i in range(lo, hi):
        if c["kind"][i] == Kind.CONFIG and c["transcription_model"][i] is not None:
            seqs.append(c["seq"][i])
            models.append(c["transcription_model"][i])
    return seqs, models


def model_at(timeline: tuple[list[int], list[str | None]], seq: int) -> str | None:
    """The transcription model in force at ``seq``."""
    seqs, models = timeline
    return models[max(0, bisect_right(seqs, seq) - 1)]


def session_setups(events: pa.Table) -> dict[str, dict[str, Any]]:
    """Per session: ``kind`` (:data:`analyzer.schema.SESSION_KINDS`: the last its configs
    state, else ``conversation``) and the last ``transcription_model`` they name."""
    fields = ("seq", "session_kind", "transcription_model")
    configs = Control.of(events, [Kind.CONFIG.value], fields)
    stated = configs.columns["session_kind"]
    return {
        session_id: {
            "kind": next((k for k in reversed(stated[lo:hi]) if k is not None), "conversation"),
            "transcription_model": model_timeline(configs, lo, hi)[1][-1],
        }
        for session_id, lo, hi in configs.sessions
    }


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
