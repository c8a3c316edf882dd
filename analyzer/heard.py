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

import pyarrow as pa

from analyzer.events import session_event_rows
from analyzer.kinds import Kind
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
    out: dict[str, Voices] = {}
    kinds = (Kind.VOICE_START, Kind.VOICE_END)
    for session_id, rows in session_event_rows(events, kinds, (*_FIELDS[1:], *_LEVELS)):
        voices = out.setdefault(session_id, Voices())
        started: dict[Any, float] = {}
        for row in rows:
            at = _num(row["at_s"])
            at = _num(row["time_s"]) if math.isnan(at) else at
            key = (row["role"], row["reply_id"])
            if row["kind"] == Kind.VOICE_START:
                started[key] = at
                if row["role"] == "assistant" and row["reply_id"] is not None:
                    voices.first_voice.setdefault(row["reply_id"], at)
                continue
            ms = _num(row["audio_ms"])
            end_ms = _num(row["stream_ms"])
            span = Span(
                started.pop(key, at),
                at,
                ms,
                (_num(row["rms_dbfs"]), _num(row["peak_dbfs"]), _num(row["clipped_share"])),
                end_ms - ms,
                end_ms,
                (_num(row["echo_score"]), _num(row["echo_delay_ms"])),
            )
            if row["role"] == "user":
                voices.user.append(span)
            elif row["reply_id"] is not None:
                voices.replies.setdefault(row["reply_id"], []).append(span)
    return out


def add_heard(events: pa.Table, turns: Mapping[str, Sequence[dict[str, Any]]]) -> None:
    """Fill :data:`HEARD_COLUMNS` of every turn row (rows of ``turns_from_events``)."""
    found = session_voices(events)
    for session_id, rows in turns.items():
        voices = found.get(session_id, Voices())
        claimed: set[int] = set()
        for row in rows:
            row.update(turn_heard(row, voices, claimed))


def turn_heard(row: Mapping[str, Any], voices: Voices, claimed: set[int]) -> dict[str, Any]:
    """One turn's heard columns; ``claimed``: the user spans earlier turns took."""
    out: dict[str, Any] = dict.fromkeys(HEARD_FLOAT_COLUMNS, _NAN)
    out["false_barge_in"] = None
    out["false_turn"] = _false_turn(row, voices.user)
    out["mic_flag"] = None
    out["echo_suspected"] = None
    first_audio = _num(row.get("first_audio_s"))
    if math.isnan(first_audio):
        return out
    reply_id = row.get("response_id")
    before = [i for i, s in enumerate(voices.user) if s.end_s <= first_audio]
    judged: list[Span] = []  # the user speech this turn heard: for echo
    if before and before[-1] not in claimed:
        claimed.add(before[-1])
        spoken = voices.user[before[-1]]
        out["user_speech_start_s"] = spoken.start_s
        out["user_speech_end_s"] = spoken.end_s
        out["latency_heard_first_audio_ms"] = _ms(first_audio, spoken.end_s)
        out["user_rms_dbfs"], out["user_peak_dbfs"], out["user_clipped_share"] = spoken.levels
        out["mic_flag"] = _mic_flag(spoken)
        judged.append(spoken)
    first_voice = voices.first_voice.get(reply_id, _NAN) if reply_id is not None else _NAN
    out["first_voice_s"] = first_voice
    out["latency_heard_first_voice_ms"] = _ms(first_voice, out["user_speech_end_s"])
    reply = voices.replies.get(reply_id, []) if reply_id is not None else []
    out.update(_reply_levels(reply))
    out.update(_barge_in(row, voices.user, first_audio))
    end = _played_end(row, first_audio)
    judged += [s for s in voices.user if s.end_s > first_audio and s.start_s < end]
    out.update(_echo(judged))
    return out


def _barge_in(row: Mapping[str, Any], user: Sequence[Span], first_audio: float) -> dict[str, Any]:
    """Barge-in reaction, false barge-in and talk-over of a reply played from ``first_audio``."""
    end = _played_end(row, first_audio)
    last_audio = _num(row.get("last_audio_s"))
    over = [s for s in user if s.end_s > first_audio and s.start_s < end]
    talk_over = sum(min(s.end_s, end) - max(s.start_s, first_audio) for s in over) * 1000.0
    out: dict[str, Any] = {"talk_over_ms": round(talk_over, 3)}
    barge = next((s for s in over if s.start_s >= first_audio), None)
    if barge is not None:
        out["barge_in_s"] = barge.start_s
        out["latency_barge_in_stop_ms"] = _ms(last_audio, barge.start_s)
        if row.get("interrupted"):
            out["latency_barge_in_cancel_ms"] = _ms(_num(row.get("response_done_s")), barge.start_s)
    if row.get("interrupted") and row.get("status_reason") == "turn_detected" and user:
        spoken = sum(s.ms for s in over if not math.isnan(s.ms))
        out["false_barge_in"] = spoken < BARGE_IN_MIN_MS
    return out


def _played_end(row: Mapping[str, Any], first_audio: float) -> float:
    """When the reply's playback ends (simulated at real time from ``first_audio``; an
    interrupted reply's at what was played)."""
    played = _num(row.get("played_ms"))
    length = played if row.get("interrupted") and not math.isnan(played) else _NAN
    if math.isnan(length):
        length = _num(row.get("reply_audio_ms"))
    end = max(first_audio + (0.0 if math.isnan(length) else length / 1000.0), first_audio)
    last_audio = _num(row.get("last_audio_s"))
    if not math.isnan(last_audio) and not row.get("interrupted"):
        end = max(end, last_audio)
    return end


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


def _false_turn(row: Mapping[str, Any], user: Sequence[Span]) -> bool | None:
    """A turn the server's VAD declared (speech_started .. speech_stopped) while the user's
    audio holds under BARGE_IN_MIN_MS of speech there; None for other turns."""
    started, stopped = _num(row.get("speech_started_s")), _num(row.get("speech_stopped_s"))
    if row.get("trigger") != "vad" or math.isnan(started) or math.isnan(stopped) or not user:
        return None  # (no speech in the whole session: its audio was not seen, or is mute)
    begin = started - SPEECH_LOOKBACK_S
    spoken = sum(max(0.0, min(s.end_s, stopped) - max(s.start_s, begin)) for s in user)
    return spoken * 1000.0 < BARGE_IN_MIN_MS


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


def heard_turns(column: Callable[[str], list[Any]]) -> dict[str, list[Any]]:
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
