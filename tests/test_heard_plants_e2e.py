"""Faults planted on the local peers' sessions (issue 18), recorded through real mitmdump, each
found on the turn it was planted on, and none on a clean session: an echo (the client's
microphone hears its loudspeaker), a clipping microphone, a mid-reply stall of the server's
audio, and a false barge-in (the server cuts its reply for speech the client never sent)."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from tests.test_heard_e2e import CONFIG, SPEED, report_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def record(
    tmp_path: Path, scenarios: list[str], extra: tuple[str, ...] = (), **plants: Any
) -> dict[str, list[Any]]:
    """Each scenario's session (one client run each) through one proxy (``extra``: its
    options) to a peer server with ``plants`` (PeerConfig fields); their report turns."""
    out = tmp_path / "captures"
    ids: dict[str, str | None] = {}
    with (
        run_server(config=replace(CONFIG, **plants)) as server,
        run_mitmdump(server.port, rt_dir=out, extra_args=extra) as proxy,
    ):
        for name in scenarios:
            result = run_conversation_sync(proxy.url(), dialect="ga", scenario=name, speed=SPEED)
            assert result.errors() == []
            ids[name] = result.session_id
        proxy.stop(signal.SIGINT)
    sessions = {s["provider_session_id"]: s["turns"] for s in report_of(out)["sessions"]}
    return {name: sessions[session_id] for name, session_id in ids.items()}


def column(turns: list[dict[str, Any]], key: str) -> list[Any]:
    return [t[key] for t in turns]


def scored(turns: list[dict[str, Any]]) -> list[float]:
    """The turns' echo scores (a turn whose user speech came before any reply has none)."""
    return [t["echo_score"] for t in turns if t["echo_score"] is not None]


def test_planted_echo_and_clipping_found_and_a_clean_session_clean(tmp_path: Path) -> None:
    found = record(tmp_path, ["plain", "clipping", "echo"])
    clean, clipping, echo = found["plain"], found["clipping"], found["echo"]
    # A clean session: nothing to report.
    assert len(clean) == 2
    assert True not in column(clean, "echo_suspected")
    assert max(scored(clean)) < 0.35  # the peers' voices score 0.1..0.2 against each other
    assert column(clean, "mic_flag") == [None, None]
    assert column(clean, "would_stall") == [False, False]
    assert column(clean, "false_barge_in") == [None, None]
    assert column(clean, "false_turn") == [False, False]
    # The clipping microphone (gain 8): every turn's speech clips, and nothing else.
    assert column(clipping, "mic_flag") == ["clipping", "clipping"]
    assert all(t["levels"]["user_clipped_share"] > 0.01 for t in clipping)
    assert True not in column(clipping, "echo_suspected")
    # The echo: each reply comes back (-10 dB) in the user's audio while it plays.
    assert column(echo, "echo_suspected") == [True, True]
    assert min(scored(echo)) > 0.9 and len(scored(echo)) == 2
    assert column(echo, "mic_flag") == [None, None]
    assert all(t["talk_over_ms"] > 0 for t in echo)


def test_planted_echo_found_with_audio_dropped(tmp_path: Path) -> None:
    """rt_audio=drop: the echo watch saw the samples in the writer, before they were dropped."""
    (echo,) = record(tmp_path, ["echo"], ("--set", "rt_audio=drop")).values()
    (parquet,) = (tmp_path / "captures").glob("*.parquet")
    assert pq.read_table(parquet, columns=["audio"]).column("audio").drop_null().to_pylist() == []
    assert column(echo, "echo_suspected") == [True, True]


def test_planted_stall_found_on_its_reply(tmp_path: Path) -> None:
    """The first reply's audio pauses 400 ms after its first 200 ms (sent at 8x real time:
    175 ms ahead of playback), so playback runs dry; the second reply streams normally."""
    (turns,) = record(tmp_path, ["plain"], stall_ms=400.0).values()
    assert column(turns, "would_stall") == [True, False]
    assert turns[0]["stall_count"] >= 1 and turns[1]["stall_count"] == 0
    assert True not in column(turns, "echo_suspected")
    assert column(turns, "false_barge_in") == [None, None]


def test_planted_false_barge_in_found_on_its_reply(tmp_path: Path) -> None:
    """The server declares speech 500 ms into its first reply and cuts it; the client sent
    nothing then."""
    (turns,) = record(tmp_path, ["plain"], false_barge_in_after_ms=500).values()
    first = turns[0]
    assert first["interrupted"] and first["status_reason"] == "turn_detected"
    assert column(turns, "false_barge_in") == [True, None]
    assert True not in column(turns, "echo_suspected")
    assert column(turns, "mic_flag") == [None, None]
