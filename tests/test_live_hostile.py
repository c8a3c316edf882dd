"""Hostile GPT-Live sessions (``tests/corpus/live`` and generated ones) never crash a command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.protocols.live import KNOWN_EVENTS
from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from tests.test_hostile_input import Frame, assert_handled, commands, corpus_frames, invoke

pytestmark = pytest.mark.timeout(300)

CORPUS = Path(__file__).parent / "corpus" / "live"
PRIMARY_URL = "wss://api.openai.com/v1/live/sessions"
SIDEBAND_URL = "wss://api.openai.com/v1/live/sessions/sess_x/attach"
T0 = 1_700_000_000.0


def record(directory: Path, sessions: dict[str, list[Frame]]) -> RunRecorder:
    run = RunRecorder(directory, run_id="rt-live-hostile")
    for n, (name, frames) in enumerate(sessions.items()):
        start = T0 + n * 100
        url = SIDEBAND_URL if name.startswith("sideband") else PRIMARY_URL
        run.start_session(handshake_facts(name, run.run_id, url, [], [], start, True))
        for seq, (from_client, is_text, content) in enumerate(frames):
            rec = build_frame(name, seq, start + seq * 0.05, from_client, is_text, content)
            assert run.record_frame(rec)
        run.end_session(name, end_s=start + len(frames) * 0.05 + 1, close_code=1000)
    run.close()
    return run


@pytest.mark.parametrize("source", ["parquet", "journal"])
def test_every_command_answers_the_live_corpus_without_a_traceback(
    tmp_path: Path, source: str
) -> None:
    sessions = {p.stem: corpus_frames(p) for p in sorted(CORPUS.glob("*.txt"))}
    assert len(sessions) == 3
    run = record(tmp_path / "capture", sessions)
    capture = run.parquet_path if source == "parquet" else run.journal_path
    for args in commands(capture, tmp_path / "wav"):
        assert_handled(invoke(args), args)
    report = json.loads(invoke(["report", str(run.parquet_path), "--format", "json"]).stdout)
    assert {s["dialect"] for s in report["sessions"]} == {"live"}
    delegation = next(s for s in report["sessions"] if s["session_id"] == "broken_delegation")
    assert delegation["unknown_events"] == {"session.mystery": 1}


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.just("AAAA"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["type", "usage", "item", "seconds"]), st.integers(), max_size=2
    ),
)
_FIELDS = ("audio", "delta", "start_ms", "end_ms", "usage", "event", "item", "session", "error")


@st.composite
def live_event(draw: st.DrawFn) -> tuple[bool, dict[str, Any]]:
    kind = draw(st.one_of(st.sampled_from(sorted(KNOWN_EVENTS)), st.text(max_size=6)))
    event: dict[str, Any] = {"type": kind}
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4, unique=True)):
        event[name] = draw(_VALUES)
    if kind == "response.event" and draw(st.booleans()):
        nested = draw(st.sampled_from(["response.completed", "response.output_item.done"]))
        event["event"] = {
            "type": nested,
            "response": {"usage": draw(_VALUES)},
            "item": draw(_VALUES),
        }
    return draw(st.booleans()), event


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(live_event(), min_size=1, max_size=20))
def test_generated_live_sessions_never_crash_the_analyzer(
    tmp_path: Path, events: list[tuple[bool, dict[str, Any]]]
) -> None:
    frames = [(client, True, json.dumps(e).encode()) for client, e in events]
    directory = tmp_path / f"gen-{abs(hash(json.dumps(events, sort_keys=True, default=str)))}"
    run = record(directory, {"primary": frames, "sideband_x": frames})
    for command in (["report", "--format", "json"], ["turns"], ["conversation"]):
        args = [command[0], str(run.parquet_path), *command[1:]]
        assert_handled(invoke(args), args)
