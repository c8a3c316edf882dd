"""Latency as the user hears it (issue 18), on local-peer sessions recorded through real
mitmdump: where the user's speech ends in the audio and how long until the reply is heard,
checked against what the peers themselves sent (the client's audio, the server's timeline)."""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main as cli
from analyzer.peer.client import run_conversation_sync
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync
from analyzer.peer.record import read_timeline
from analyzer.peer.server import PeerConfig
from analyzer.reader import read_capture
from analyzer.report import build_report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONFIG = PeerConfig(
    first_response_delay_ms=120, first_audio_delay_ms=90, transcription_delay_ms=60, audio_pace=8.0
)
# The client's pace: ~100 appends/s, which the proxy forwards as they come (at 8x, 400/s, it
# queues them by tens of ms on a loaded 2-core machine: its receive times lag the sends).
SPEED = 2.0
END_TOLERANCE_MS = 20  # heard end of speech vs when its last voiced chunk passed the proxy
# A frame's wait in the proxy at worst (seen: 120 ms with 4x more runnable tasks than cores).
PROXY_LAG_MS = 150
SILENCE_SPLIT_MS = 150  # the peer's utterances pause < 100 ms inside, 600 ms between turns


def report_of(out: Path) -> dict[str, Any]:
    """``rt-analyze report --format json``: the recorded events, the audio column never read."""
    answer = CliRunner().invoke(cli, ["report", str(out), "--format", "json"])
    assert answer.exit_code == 0, answer.output
    report: dict[str, Any] = json.loads(answer.stdout)
    return report


def _client_audio(frame: dict[str, Any]) -> bytes | None:
    """The PCM16 a peer client sent in one frame (Realtime, GPT-Live or Gemini), or None."""
    text = frame.get("text", frame.get("data"))
    if not isinstance(text, str | bytes):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    audio = event.get("audio") if isinstance(event, dict) else None
    if isinstance(event, dict) and isinstance(event.get("realtime_input"), dict):
        audio = (event["realtime_input"].get("audio") or {}).get("data")
    if not isinstance(audio, str):
        return None
    return base64.b64decode(audio.replace("-", "+").replace("_", "/"))


def client_chunks(frames: list[dict[str, Any]]) -> list[tuple[float, bytes]]:
    """(send time, PCM16) of every audio chunk the client sent, in order."""
    out = []
    for frame in frames:
        audio = _client_audio(frame) if frame["direction"] == "client" else None
        if audio is not None:
            out.append((float(frame["time_s"]), audio))
    return out


def capture_chunk_times(out: Path) -> list[float]:
    """When each chunk of user audio passed the proxy (the capture's frames holding one)."""
    (parquet,) = out.glob("*.parquet")
    rows = pq.read_table(parquet, columns=["seq", "time_s", "events"]).to_pylist()
    rows.sort(key=lambda r: r["seq"])
    return [r["time_s"] for r in rows if any(e["kind"] == "user_audio" for e in r["events"])]


def capture_time(out: Path, event_type: str, response_id: str) -> float:
    """When the last frame of ``event_type`` for ``response_id`` passed the proxy."""
    (parquet,) = out.glob("*.parquet")
    rows = pq.read_table(parquet, columns=["time_s", "event_type", "response_id"]).to_pylist()
    return max(
        r["time_s"]
        for r in rows
        if r["event_type"] == event_type and r["response_id"] == response_id
    )


def first_reply_audio(out: Path, reply_id: str) -> float:
    """When the first chunk of a reply's audio passed the proxy (from the recorded events)."""
    (parquet,) = out.glob("*.parquet")
    rows = pq.read_table(parquet, columns=["time_s", "events"]).to_pylist()
    return min(
        r["time_s"]
        for r in rows
        if any(e["kind"] == "reply_audio" and e["reply_id"] == reply_id for e in r["events"])
    )


def speech_edges(chunks: list[tuple[float, bytes]], rate_hz: int) -> list[tuple[int, int]]:
    """(first, last) chunk index of each utterance: its first and last chunk holding a
    non-zero sample (the peer's silences are exact zeros). The truth, found without the
    analyzer's detector."""
    edges: list[tuple[int, int]] = []
    first: int | None = None
    last = 0
    zeros = 0
    for index, (_, audio) in enumerate(chunks):
        if any(audio):
            first, last, zeros = index if first is None else first, index, 0
            continue
        zeros += len(audio) // 2
        if first is not None and zeros * 1000 >= SILENCE_SPLIT_MS * rate_hz:
            edges.append((first, last))
            first = None
    return edges


def test_realtime_heard_latency_matches_the_peers(tmp_path: Path) -> None:
    """Speech ends where the client's audio ends it; heard latency = the server's first audio
    after it; the barge-in reaction against the server's last delta of the cut reply. The
    same capture without its recorded events (as format 1) gives the same answers, its speech
    found at read time in the ``audio`` column."""
    report = _check_realtime(tmp_path, [])
    (parquet,) = (tmp_path / "captures").glob("*.parquet")
    old = tmp_path / "old"
    old.mkdir()
    table = pq.read_table(parquet)
    footer = pq.read_metadata(parquet).metadata
    without_events = table.drop_columns(["events"]).replace_schema_metadata(footer)
    pq.write_table(without_events, old / parquet.name)
    assert report_of(old)["sessions"][0]["turns"] == report["sessions"][0]["turns"]


def test_realtime_heard_latency_with_audio_dropped(tmp_path: Path) -> None:
    """rt_audio=drop: no sample is written, speech was found before they were dropped."""
    report = _check_realtime(tmp_path, ["--set", "rt_audio=drop"])
    assert report["sessions"][0]["audio_kept"] is False
    (parquet,) = (tmp_path / "captures").glob("*.parquet")
    assert pq.read_table(parquet, columns=["audio"]).column("audio").null_count > 0
    assert pq.read_table(parquet, columns=["audio"]).column("audio").drop_null().to_pylist() == []


def _check_realtime(tmp_path: Path, extra: list[str]) -> dict[str, Any]:
    out = tmp_path / "captures"
    with (
        run_server(config=CONFIG, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out, extra_args=extra) as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect="ga", scenario="default", speed=SPEED)
        proxy.stop(signal.SIGINT)
    assert result.errors() == []
    record = server.read_record()
    truth_turns = record.turns()
    report = report_of(out)
    (session,) = report["sessions"]
    turns = session["turns"]
    chunks = client_chunks(result.frames)
    passed = capture_chunk_times(out)
    assert len(passed) == len(chunks)
    edges = speech_edges(chunks, 24000)
    assert len(edges) == 4 == len(result.turns)
    ends = [passed[last] for _, last in edges]  # the last voiced chunk, at the proxy
    # Turn 3 is the weather question's tool call: its reply has no audio; the user hears the
    # follow-up reply (turn 4), after the same speech.
    heard = [t for t in turns if t["user_speech_end_s"] is not None]
    assert [t["index"] for t in heard] == [1, 2, 4, 5]
    lag: list[float] = []
    for turn, end_s, (_, last) in zip(heard, ends, edges, strict=True):
        assert turn["user_speech_end_s"] == pytest.approx(end_s, abs=END_TOLERANCE_MS / 1000)
        # ... and when the client sent it (the proxy's forwarding delay: ~1 ms when idle)
        lag.append((turn["user_speech_end_s"] - chunks[last][0]) * 1000)
    assert max(lag) <= PROXY_LAG_MS, lag  # typically ~1 ms; tens of ms on a loaded machine
    off: list[float] = []  # measured - the peers' timeline, ms
    for turn, truth in zip(turns, truth_turns, strict=True):
        if turn["user_speech_end_s"] is None:
            assert turn["latency_ms"]["heard_first_audio"] is None
            continue
        end_s = ends[heard.index(turn)]
        at_proxy = (first_reply_audio(out, turn["response_id"]) - end_s) * 1000
        assert turn["latency_ms"]["heard_first_audio"] == pytest.approx(at_proxy, abs=1)
        off.append(
            turn["latency_ms"]["heard_first_audio"] - (truth["first_audio_at_s"] - end_s) * 1000
        )
        # The assets open voiced: the first audio is the first voice.
        assert turn["latency_ms"]["heard_first_voice"] == turn["latency_ms"]["heard_first_audio"]
        assert turn["levels"]["user_rms_dbfs"] == pytest.approx(-21, abs=2)
        assert turn["mic_flag"] is None
    # Turn 1 is cut by turn 2's speech (server VAD): a true barge-in.
    first = turns[0]
    assert first["interrupted"] and first["false_barge_in"] is False
    barge_truth = passed[edges[1][0]]
    assert first["barge_in_s"] == pytest.approx(barge_truth, abs=END_TOLERANCE_MS / 1000)
    # Its reactions, against when the frames passed the proxy (the capture's own times).
    last_delta = capture_time(out, "response.output_audio.delta", first["response_id"])
    cancelled = capture_time(out, "response.done", first["response_id"])
    assert first["latency_ms"]["barge_in_stop"] == pytest.approx(
        (last_delta - barge_truth) * 1000, abs=END_TOLERANCE_MS
    )
    assert first["latency_ms"]["barge_in_cancel"] == pytest.approx(
        (cancelled - barge_truth) * 1000, abs=END_TOLERANCE_MS
    )
    assert [t["false_barge_in"] for t in turns[1:]] == [None] * 4
    # Every turn the server's VAD declared holds the user's speech (a clean session).
    assert [t["false_turn"] for t in turns] == [False, False, False, None, False]
    # Heard latency vs the peers' own timeline: the proxy's receive times vs the server's send
    # times, typically a few ms apart; on a loaded 2-core machine a frame may queue in the proxy.
    assert max(abs(o) for o in off) <= PROXY_LAG_MS, off
    summary = report["summary"]["latency_ms"]["heard_first_audio"]
    assert summary["count"] == 4 and summary["p50"] is not None
    # The library's pandas path (notebooks, read_capture) keeps the recorded events alike.
    assert build_report(read_capture(out))["sessions"][0]["turns"] == turns
    return report


def _record_other(tmp_path: Path, protocol: str) -> tuple[Path, list[dict[str, Any]], list[Any]]:
    """A GPT-Live or Gemini Live session of the local peers through mitmdump: (captures, the
    client's frames, the server's turn records)."""
    out = tmp_path / "captures"
    if protocol == "live":
        live_config = PeerConfig(first_response_delay_ms=120, first_audio_delay_ms=90)
        with (
            run_server(config=live_config, record_path=tmp_path / "server.jsonl") as server,
            run_mitmdump(server.port, rt_dir=out) as proxy,
        ):
            live = run_live_conversation_sync(proxy.url("/v1/live/sessions"), speed=SPEED)
            proxy.stop(signal.SIGINT)
        assert live.errors() == []
        return out, live.frames, server.read_record().turns(live.session_id)
    server_record = tmp_path / "server.jsonl"
    with (
        run_gemini_server(server_record, GeminiPeerConfig(first_audio_delay_ms=150)) as port,
        run_mitmdump(port, rt_dir=out) as proxy,
    ):
        gemini = run_gemini_conversation_sync(proxy.url(""), scenario="default", speed=SPEED)
        proxy.stop(signal.SIGINT)
    return out, gemini.frames, read_timeline(server_record).turns()


@pytest.mark.parametrize(("protocol", "rate_hz"), [("live", 24000), ("gemini", 16000)])
def test_gpt_live_and_gemini_turns_are_heard_alike(
    tmp_path: Path, protocol: str, rate_hz: int
) -> None:
    """No server event says where speech ended: the audio does, the same way as for Realtime."""
    out, frames, truth_turns = _record_other(tmp_path, protocol)
    (session,) = report_of(out)["sessions"]
    turns = session["turns"]
    chunks = client_chunks(frames)
    passed = capture_chunk_times(out)
    assert len(passed) == len(chunks)
    edges = speech_edges(chunks, rate_hz)
    heard = [t for t in turns if t["user_speech_end_s"] is not None]
    assert len(heard) == len(edges) >= 3
    assert {t["false_turn"] for t in turns} <= {False, None}  # a clean session
    assert {t["false_barge_in"] for t in turns} <= {False, None}
    for turn, (_, last) in zip(heard, edges, strict=True):
        assert turn["user_speech_end_s"] == pytest.approx(passed[last], abs=END_TOLERANCE_MS / 1000)
        at_proxy = (first_reply_audio(out, turn["response_id"]) - passed[last]) * 1000
        assert turn["latency_ms"]["heard_first_audio"] == pytest.approx(at_proxy, abs=1)
        assert turn["latency_ms"]["heard_first_audio"] > 0
        assert turn["latency_ms"]["heard_first_voice"] >= turn["latency_ms"]["heard_first_audio"]
        assert turn["levels"]["user_rms_dbfs"] == pytest.approx(-21, abs=2)
        assert turn["levels"]["reply_rms_dbfs"] == pytest.approx(-19, abs=3)
    # Heard latency vs the server's own record of its first audio.
    firsts = [t["first_audio_at_s"] for t in truth_turns if t.get("first_audio_at_s")]
    assert len(firsts) == len(heard)
    off = [
        t["latency_ms"]["heard_first_audio"] - (first - passed[last]) * 1000
        for t, first, (_, last) in zip(heard, firsts, edges, strict=True)
    ]
    assert max(abs(o) for o in off) <= PROXY_LAG_MS, off
