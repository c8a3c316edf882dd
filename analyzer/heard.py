"""Each turn as the user hears it, from the speech found in the audio (VOICE_START/VOICE_END,
:mod:`analyzer.voice_events`), whatever the protocol: no server event is trusted for when
someone spoke.

* ``user_speech_end_s``: where the user's speech ended in the audio (capture time): the last
  span of user speech that ended before the turn's first reply audio, unless an earlier turn
  took it (a tool call's follow-up reply is heard after the same speech);
  ``user_speech_start_s``: where that span started.
* ``latency_heard_first_audio_ms``: that -> the reply's first audio at the proxy;
  ``latency_heard_first_voice_ms``: -> its first *voiced* audio (a reply may open silent).
* Barge-in: the first user speech starting while the reply plays (playback simulated at real
  time from its first audio; an interrupted reply to what was played). ``barge_in_s``;
  ``latency_barge_in_stop_ms``: -> the reply's last audio sent (negative: all of it had been
  sent already; the client alone can stop it); ``latency_barge_in_cancel_ms``: -> the end
  of the interrupted reply (the server's cancel, interruption or truncation).
  ``false_barge_in`` (replies the server cut, reason turn_detected): no user speech of
  BARGE_IN_MIN_MS over the reply (noise, echo or a cough took the turn).
  ``talk_over_ms``: user speech overlapping the reply's playback. ``false_turn`` (turns the
  server's VAD declared): under BARGE_IN_MIN_MS of user speech between its speech_started
  (less SPEECH_LOOKBACK_S) and speech_stopped. Both false_* are judged only in sessions where
  some user speech was found (else the user's audio was not there to judge: a sideband, audio
  recorded before this, or a muted microphone).
* ``reply_dead_air_ms``: the longest silence inside the reply's audio, between its spans of
  speech (playback stalls are ``stall_ms``).
* Levels: ``user_rms_dbfs``, ``user_peak_dbfs``, ``user_clipped_share`` of the user's speech
  for this turn, ``reply_rms_dbfs``, ``reply_peak_dbfs`` of the reply's; ``mic_flag``:
  "quiet" (speech below QUIET_DBFS) or "clipping" (over CLIPPING_SHARE of it at full scale).
* Echo (:mod:`analyzer.voice_echo`): ``echo_score``, the highest of the user spans the turn
  heard (its speech, and speech over its reply), ``echo_delay_ms`` that span's delay, and
  ``echo_suspected``: that score is ECHO_SCORE or more (None: no span was scored).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from analyzer.kinds import Kind
from analyzer.turn_binding import Control
from analyzer.voice_echo import ECHO_SCORE

BARGE_IN_MIN_MS = 250.0  # user speech shorter than this over a reply does not explain its cut
QUIET_DBFS = -35.0  # a microphone whose speech is quieter than this is near silent
CLIPPING_SHARE = 0.001  # a microphone with more of its speech at full scale is clipping
# The server's speech_started passes the proxy after the audio it heard speech in (its VAD
# needs some of it): user speech this long before it still counts as what it heard.
SPEECH_LOOKBACK_S = 0.5

HEARD_LATENCY_COLUMNS: tuple[str, ...] = (
    "latency_heard_first_audio_ms",
    "latency_heard_first_voice_ms",
    "latency_barge_in_stop_ms",
    "latency_barge_in_cancel_ms",
)
HEARD_FLOAT_COLUMNS: tuple[str, ...] = (
    "user_speech_start_s",
    "user_speech_end_s",
    "first_voice_s",
    "barge_in_s",
    *HEARD_LATENCY_COLUMNS,
    "talk_over_ms",
    "reply_dead_air_ms",
    "user_rms_dbfs",
    "user_peak_dbfs",
    "user_clipped_share",
    "reply_rms_dbfs",
    "reply_peak_dbfs",
    "echo_score",
    "echo_delay_ms",
)
HEARD_COLUMNS: tuple[str, ...] = (
    *HEARD_FLOAT_COLUMNS,
    "false_barge_in",
    "false_turn",
    "mic_flag",
    "echo_suspected",
)

_NAN = float("nan")
_FIELDS = ("kind", "role", "reply_id", "stream_ms", "at_s", "time_s", "audio_ms")
_LEVELS = ("rms_dbfs", "peak_dbfs", "clipped_share", "echo_score", "echo_delay_ms")
_NUMBERS = ("stream_ms", "at_s", "time_s", "audio_ms", *_LEVELS)


@dataclass
class Span:
    """A span of speech: capture times of its start and end, its length and levels."""

    start_s: float
    end_s: float
    ms: float
    levels: tuple[float, float, float]  # rms, peak (dBFS), clipped share
    start_ms: float = _NAN  # on its stream's clock
    end_ms: float = _NAN
    echo: tuple[float, float] = (_NAN, _NAN)  # echo score, delay ms (analyzer.voice_echo)


@dataclass
class Voices:
    """A session's speech: the user's spans, and each reply's."""

    user: list[Span] = field(default_factory=list)
    replies: dict[str, list[Span]] = field(default_factory=dict)
    first_voice: dict[str, float] = field(default_factory=dict)  # reply id -> first start


def session_voices(events: pa.Table) -> dict[str, Voices]:
    """Each session's spans of speech, from its VOICE_START / VOICE_END events."""
    found = Control.of(events, (Kind.VOICE_START, Kind.VOICE_END), (*_FIELDS[1:], *_LEVELS))
    c = found.columns
    roles, reply_ids = c["role"], c["reply_id"]
    num = {name: [_NAN if v is None else float(v) for v in c[name]] for name in _NUMBERS}
    when = [t if math.isnan(at) else at for t, at in zip(num["time_s"], num["at_s"], strict=True)]
    out: dict[str, Voices] = {}
    for session_id, lo, hi in found.sessions:
        voices = out.setdefault(session_id, Voices())
        started: dict[Any, float] = {}
        for i in range(lo, hi):
            at, role, reply_id = when[i], roles[i], reply_ids[i]
            if c["kind"][i] == Kind.VOICE_START:
                started[(role, reply_id)] = at
                if role == "assistant" and reply_id is not None:
                    voices.first_voice.setdefault(reply_id, at)
                continue
            ms, end_ms = num["audio_ms"][i], num["stream_ms"][i]
            span = Span(
                started.pop((role, reply_id), at),
                at,
                ms,
                (num["rms_dbfs"][i], num["peak_dbfs"][i], num["clipped_share"][i]),
                end_ms - ms,
                end_ms,
                (num["echo_score"][i], num["echo_delay_ms"][i]),
            )
            if role == "user":
                voices.user.append(span)
            elif reply_id is not None:
                voices.replies.setdefault(reply_id, []).append(span)
    return out


# The turn columns the heard columns are computed from.
HEARD_INPUTS: tuple[str, ...] = (
    "session_id",
    "trigger",
    "response_id",
    "status_reason",
    "interrupted",
    "played_ms",
    "speech_started_s",
    "speech_stopped_s",
    "first_audio_s",
    "last_audio_s",
    "reply_audio_ms",
    "response_done_s",
)


def turn_heard(row: Mapping[str, Any], voices: Voices, claimed: set[int]) -> dict[str, Any]:
    """One turn's heard columns (:func:`heard_columns` of a one-turn session); ``claimed``: the
    user spans earlier turns took."""
    turn = {c: [row.get(c)] for c in HEARD_INPUTS}
    return {c: v[0] for c, v in heard_columns(turn, {None: voices}, claimed).items()}


def heard_columns(
    turns: Mapping[str, Sequence[Any]],
    voices: Mapping[Any, Voices],
    claimed: set[int] | None = None,
) -> dict[str, list[Any]]:
    """:data:`HEARD_COLUMNS` of turns (their :data:`HEARD_INPUTS` columns; sessions one after
    the other, each one's turns in order), given each session's speech: every turn paired with
    every user span of its session at once, in numpy; ``claimed``: user spans (numbered over
    the sessions in order of first turn) earlier turns took."""
    n = len(turns["session_id"])
    out: dict[str, list[Any]] = {c: [_NAN] * n for c in HEARD_FLOAT_COLUMNS}
    out.update({c: [None] * n for c in HEARD_COLUMNS[len(HEARD_FLOAT_COLUMNS) :]})
    sids = turns["session_id"]
    user: list[Span] = []
    first: dict[Any, tuple[int, int]] = {}
    for sid in dict.fromkeys(sids):
        spoken = voices[sid].user if sid in voices else []
        first[sid] = (len(user), len(spoken))
        user.extend(spoken)
    lo = np.array([first[sid][0] for sid in sids], dtype=np.intp)
    count = np.array([first[sid][1] for sid in sids], dtype=np.intp)
    # Pairs (turn t, user span j of its session).
    t = np.repeat(np.arange(n), count)
    j = np.arange(len(t)) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
    bounds = np.concatenate([[0], np.cumsum(count)]).tolist()
    start = np.array([s.start_s for s in user], dtype=float)[j]
    end = np.array([s.end_s for s in user], dtype=float)[j]

    def number(column: str) -> np.ndarray:
        return np.array(turns[column], dtype=float)  # None -> NaN

    def sums(terms: np.ndarray, mask: np.ndarray) -> list[Any]:
        """Per turn, the sum of its pairs' ``terms`` where ``mask`` (in order, as ``sum``)."""
        values = np.where(mask, terms, np.nan).tolist()
        return [sum(v for v in values[a:b] if v == v) for a, b in itertools.pairwise(bounds)]

    # False turns: under BARGE_IN_MIN_MS of user speech where the server's VAD heard a turn.
    started, stopped = number("speech_started_s"), number("speech_stopped_s")
    vad = np.array([trigger == "vad" for trigger in turns["trigger"]], dtype=bool)
    judged_vad = vad & ~np.isnan(started) & ~np.isnan(stopped) & (count > 0)
    spoken = np.minimum(end, stopped[t]) - np.maximum(start, started[t] - SPEECH_LOOKBACK_S)
    for i, total in enumerate(sums(np.maximum(0.0, spoken), judged_vad[t])):
        if judged_vad[i]:
            out["false_turn"][i] = total * 1000.0 < BARGE_IN_MIN_MS
    first_audio = number("first_audio_s")
    heard = ~np.isnan(first_audio)
    # The user's speech a turn heard: the last span ended before its first audio, if no earlier
    # turn took it.
    last = np.full(n, -1, dtype=np.intp)
    before = end <= first_audio[t]
    np.maximum.at(last, t[before], j[before])
    taken = set() if claimed is None else claimed
    claim = np.full(n, -1, dtype=np.intp)
    for i in np.flatnonzero(heard & (last >= 0)).tolist():
        if int(last[i]) not in taken:
            taken.add(int(last[i]))
            claim[i] = last[i]
    # Playback: from the first audio, an interrupted reply's to what was played, else all of it
    # (and at least until its last audio).
    interrupted = np.array([bool(v) for v in turns["interrupted"]], dtype=bool)
    played, length = number("played_ms"), number("reply_audio_ms")
    length = np.where(interrupted & ~np.isnan(played), played, length)
    played_end = np.maximum(
        first_audio + np.where(np.isnan(length), 0.0, length / 1000.0), first_audio
    )
    last_audio = number("last_audio_s")
    late = ~np.isnan(last_audio) & ~interrupted
    played_end = np.where(late, np.maximum(played_end, last_audio), played_end)
    over = (end > first_audio[t]) & (start < played_end[t])
    talk = sums(np.minimum(end, played_end[t]) - np.maximum(start, first_audio[t]), over)
    barge = over & (start >= first_audio[t])
    barge_at = np.full(n, -1, dtype=np.intp)
    found, at = np.unique(t[barge], return_index=True)
    barge_at[found] = j[barge][at]
    ms = np.array([s.ms for s in user], dtype=float)[j]
    over_ms = sums(ms, over)
    scored = any(not math.isnan(s.echo[0]) for s in user)
    done = number("response_done_s")
    for i in np.flatnonzero(heard).tolist():
        sid, reply_id, fa = sids[i], turns["response_id"][i], float(first_audio[i])
        mine = voices[sid] if sid in voices else Voices()
        judged: list[Span] = []
        if claim[i] >= 0:
            span = user[claim[i]]
            out["user_speech_start_s"][i] = span.start_s
            out["user_speech_end_s"][i] = span.end_s
            out["latency_heard_first_audio_ms"][i] = _ms(fa, span.end_s)
            rms, peak, clipped = span.levels
            out["user_rms_dbfs"][i], out["user_peak_dbfs"][i] = rms, peak
            out["user_clipped_share"][i] = clipped
            out["mic_flag"][i] = _mic_flag(span)
            judged.append(span)
        first_voice = mine.first_voice.get(reply_id, _NAN) if reply_id is not None else _NAN
        out["first_voice_s"][i] = first_voice
        out["latency_heard_first_voice_ms"][i] = _ms(first_voice, out["user_speech_end_s"][i])
        reply = mine.replies.get(reply_id, []) if reply_id is not None else []
        for column, value in _reply_levels(reply).items():
            out[column][i] = value
        out["talk_over_ms"][i] = round(talk[i] * 1000.0, 3)
        if barge_at[i] >= 0:
            barge_s = user[barge_at[i]].start_s
            out["barge_in_s"][i] = barge_s
            out["latency_barge_in_stop_ms"][i] = _ms(float(last_audio[i]), barge_s)
            if interrupted[i]:
                out["latency_barge_in_cancel_ms"][i] = _ms(float(done[i]), barge_s)
        if interrupted[i] and turns["status_reason"][i] == "turn_detected" and count[i]:
            out["false_barge_in"][i] = over_ms[i] < BARGE_IN_MIN_MS
        if scored:
            pairs = range(bounds[i], bounds[i + 1])
            judged += [user[int(j[p])] for p in pairs if over[p]]
            for column, value in _echo(judged).items():
                out[column][i] = value
    return out


def _echo(spans: Sequence[Span]) -> dict[str, Any]:
    """The most echo-like of the user spans a turn heard (unscored spans: no reply before)."""
    scored = [s for s in spans if not math.isnan(s.echo[0])]
    if not scored:
        return {}
    best = max(scored, key=lambda s: s.echo[0])
    return {
        "echo_score": best.echo[0],
        "echo_delay_ms": best.echo[1],
        "echo_suspected": best.echo[0] >= ECHO_SCORE,
    }


def _reply_levels(spans: Sequence[Span]) -> dict[str, float]:
    """The reply's levels over its spans (RMS weighted by length) and its longest silence."""
    if not spans:
        return {}
    weights = [s.ms for s in spans]
    power = sum(w * 10 ** (s.levels[0] / 10) for w, s in zip(weights, spans, strict=True))
    total = sum(weights)
    gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(spans)]
    return {
        "reply_rms_dbfs": round(10 * math.log10(power / total), 2) if total > 0 else _NAN,
        "reply_peak_dbfs": max(s.levels[1] for s in spans),
        "reply_dead_air_ms": round(max(gaps), 3) if gaps else 0.0,
    }


def _mic_flag(span: Span) -> str | None:
    rms, _, clipped = span.levels
    if clipped > CLIPPING_SHARE:
        return "clipping"
    if rms < QUIET_DBFS:
        return "quiet"
    return None


def _flag(value: Any) -> bool | None:
    """A yes/no column's value; None (or NaN, from a table) when it does not apply."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(value)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value is not None else _NAN


def _ms(end_s: float, start_s: float) -> float:
    return _NAN if math.isnan(end_s) or math.isnan(start_s) else round((end_s - start_s) * 1000, 3)


def heard_turns(column: Callable[[str], Sequence[Any]]) -> dict[str, list[Any]]:
    """The report's heard keys of turns (their latencies are in ``latency_ms``), a list each,
    from ``column(name)`` of their rows."""

    def nums(name: str) -> list[float | None]:
        return [
            (None if v != v else v) if type(v) is float else _num_or_none(v) for v in column(name)
        ]

    return {
        **{c: nums(c) for c in ("user_speech_start_s", "user_speech_end_s", "first_voice_s")},
        "barge_in_s": nums("barge_in_s"),
        **{c: list(map(_flag, column(c))) for c in ("false_barge_in", "false_turn")},
        **{c: nums(c) for c in ("talk_over_ms", "reply_dead_air_ms")},
        "levels": [
            dict(zip(_LEVEL_KEYS, values, strict=True))
            for values in zip(*(nums(c) for c in _LEVEL_KEYS), strict=True)
        ],
        "mic_flag": [v if isinstance(v, str) else None for v in column("mic_flag")],
        "echo_suspected": list(map(_flag, column("echo_suspected"))),
        **{c: nums(c) for c in ("echo_score", "echo_delay_ms")},
    }


_LEVEL_KEYS = (
    "user_rms_dbfs",
    "user_peak_dbfs",
    "user_clipped_share",
    "reply_rms_dbfs",
    "reply_peak_dbfs",
)


def _num_or_none(value: Any) -> float | None:
    number = _num(value)
    return None if math.isnan(number) else number


def heard_notes(turn: Mapping[str, Any]) -> str:
    """What the terminal report adds to a turn's "interrupted" cell: the barge-in as heard
    and a microphone flag (report turn dict in)."""
    notes = ""
    stop = turn["latency_ms"].get("barge_in_stop")
    if stop is not None:
        notes += f", barge-in stop {stop:.0f} ms"
    if turn.get("false_barge_in"):
        notes += ", FALSE barge-in (no user speech)"
    if turn.get("false_turn"):
        notes += ", FALSE turn (no user speech)"
    if turn.get("mic_flag"):
        notes += f", mic {turn['mic_flag']}"
    if turn.get("echo_suspected"):
        notes += ", echo?"
    return notes
