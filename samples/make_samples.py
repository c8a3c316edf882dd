"""Regenerate the captures in samples/ through real mitmdump with the capture addon.

    make samples        # or: .venv/bin/python samples/make_samples.py

* ``seed-beta``: the seed session (shared/seeds, copied to samples/seed; a real beta session;
  its audio fields are placeholders, kept as they are) replayed frame by frame in lockstep
  through mitmdump.
* ``ga-voice`` / ``beta-voice``: the default scripted conversation (real speech, three spoken turns,
  a barge-in, a function call) against the local realtime peer, at real-time pace.
* ``ga-g711-manual``: G.711 µ-law audio with manual commits (no server VAD).
* ``live-voice`` / ``live-sideband``: the default scripted conversation over GPT-Live
  (``/v1/live/sessions``: a barge-in, a function call for the delegated backend) at real-time
  pace; ``live-sideband`` records only the sideband (``.../attach``) of a call whose primary
  socket bypasses the proxy, as a WebRTC call's would.
* ``gemini-voice``: the default scripted conversation over Gemini Live (BidiGenerateContent:
  JSON in binary frames, URL-safe audio, automatic activity detection, input and output
  transcription, a barge-in, a tool call, usageMetadata per turn) at real-time pace.

* ``ga-transcription``: a GA transcription session (``?intent=transcription``, gpt-4o-transcribe,
  server VAD, log probabilities): three utterances, each streamed as transcript deltas, then
  the transcript with its token usage; nothing replies.

``make_samples.py NAME...`` makes only those samples (``live`` stands for both GPT-Live
ones, ``gemini`` for ``gemini-voice``).

Each sample is ``NAME.parquet`` + ``NAME.jsonl``, and ``NAME.server-turns.json`` (for the
transcription session ``NAME.server-transcriptions.json``): the peer's own record of when it
sent each turn's events, which tests compare latencies with.

    python samples/make_samples.py [NAME ...]   # only these samples (default: all)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from analyzer.peer.client import run_conversation_sync
from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync
from analyzer.peer.record import read_timeline
from analyzer.peer.scenarios import DEFAULT_TURNS, Scenario, scenario_named
from analyzer.replay import frames_from_markdown, replay_client, replay_server

SAMPLES = Path(__file__).resolve().parent
SEED = SAMPLES / "seed" / "000_9c718be50efc71e4.txt"  # a copy of shared/seeds' file
SEED_MODEL = "gpt-4o-realtime-preview-2024-10-01"


def _move_run(rt_dir: Path, name: str, keep_journal: bool) -> None:
    (parquet,) = rt_dir.glob("*.parquet")
    shutil.copyfile(parquet, SAMPLES / f"{name}.parquet")
    if keep_journal:
        shutil.copyfile(parquet.with_suffix(".jsonl"), SAMPLES / f"{name}.jsonl")


def make_seed(work: Path) -> None:
    script = frames_from_markdown(SEED)
    rt_dir = work / "seed"

    async def run() -> None:
        async with replay_server(script, gap_s=0.05) as upstream:
            with run_mitmdump(upstream, rt_dir=rt_dir) as proxy:
                url = proxy.url(f"/v1/realtime?model={SEED_MODEL}")
                headers = {
                    "Authorization": "Bearer sk-sample-not-a-key",
                    "OpenAI-Beta": "realtime=v1",
                }
                await replay_client(script, url, headers, gap_s=0.05)
                await asyncio.sleep(0.3)
                proxy.stop()

    asyncio.run(run())
    _move_run(rt_dir, "seed-beta", keep_journal=True)


def _turn_facts(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("trigger", "status", "reason", "utterance", "reply")
    return [
        {k: v for k, v in t.items() if k.endswith("_s") or k.endswith("_ms") or k in keep}
        for t in turns
    ]


def make_conversation(work: Path, name: str, dialect: str, scenario: Scenario) -> None:
    rt_dir = work / name
    record = work / f"{name}.server.jsonl"
    with (
        run_server(record_path=record) as server,
        run_mitmdump(server.port, rt_dir=rt_dir) as proxy,
    ):
        result = run_conversation_sync(proxy.url(), dialect=dialect, scenario=scenario, speed=1.0)
        proxy.stop()
    if result.errors():
        raise SystemExit(f"{name}: the peer answered with errors: {result.errors()}")
    record_of = server.read_record()
    if scenario.kind == "transcription":
        facts = _transcription_facts(record_of.transcriptions())
        (SAMPLES / f"{name}.server-transcriptions.json").write_text(
            json.dumps(facts, indent=1) + "\n"
        )
    else:
        turns = _turn_facts(record_of.turns())
        (SAMPLES / f"{name}.server-turns.json").write_text(json.dumps(turns, indent=1) + "\n")
    _move_run(rt_dir, name, keep_journal=True)


LIVE_SAMPLES = ("live-voice", "live-sideband")


def make_live(work: Path, name: str, sideband: bool) -> None:
    rt_dir = work / name
    record = work / f"{name}.server.jsonl"
    with (
        run_server(record_path=record) as server,
        run_mitmdump(server.port, rt_dir=rt_dir) as proxy,
    ):
        if sideband:
            attach = proxy.url("/v1/live/sessions/{session_id}/attach")
            url = server.url("/v1/live/sessions")
            result = run_live_conversation_sync(url, speed=1.0, sideband_url=attach)
        else:
            result = run_live_conversation_sync(proxy.url("/v1/live/sessions"), speed=1.0)
        proxy.stop()
    if result.errors():
        raise SystemExit(f"{name}: the peer answered with errors: {result.errors()}")
    turns = server.read_record().turns(result.session_id)
    (SAMPLES / f"{name}.server-turns.json").write_text(json.dumps(turns, indent=1) + "\n")
    _move_run(rt_dir, name, keep_journal=True)


GEMINI_SAMPLES = ("gemini-voice",)


def make_gemini(work: Path, name: str) -> None:
    rt_dir = work / name
    record = work / f"{name}.server.jsonl"
    with (
        run_gemini_server(record_path=record) as port,  # real-time reply audio
        run_mitmdump(port, rt_dir=rt_dir) as proxy,  # default options: the default rt_filter
    ):
        run_gemini_conversation_sync(proxy.url(""), scenario="default", speed=1.0)
        proxy.stop()
    turns = read_timeline(record).turns()
    (SAMPLES / f"{name}.server-turns.json").write_text(json.dumps(turns, indent=1) + "\n")
    _move_run(rt_dir, name, keep_journal=True)


def _transcription_facts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("trigger", "model", "utterance", "transcript", "usage", "delta_at_s")
    return [
        {k: v for k, v in r.items() if k.endswith("_s") or k in keep}
        | {"logprobs": [p["logprob"] for p in r["logprobs"] or []]}
        for r in records
    ]


def main(names: list[str]) -> None:
    if not SEED.exists():
        sys.exit(f"the seed session is missing: {SEED}")
    g711_manual = Scenario("g711_manual", DEFAULT_TURNS, vad=False, audio_format="g711_ulaw")
    conversations = {
        "ga-voice": ("ga", scenario_named("default")),
        "beta-voice": ("beta", scenario_named("default")),
        "ga-g711-manual": ("ga", g711_manual),
        "ga-transcription": ("ga", scenario_named("transcription")),
    }
    groups = {"live": LIVE_SAMPLES, "gemini": GEMINI_SAMPLES}
    names = sorted({n for name in names for n in groups.get(name, [name])})
    unknown = sorted(set(names) - {"seed-beta", *conversations, *LIVE_SAMPLES, *GEMINI_SAMPLES})
    if unknown:
        sys.exit(
            f"unknown sample(s) {', '.join(unknown)}; choose from seed-beta, "
            + ", ".join([*conversations, *LIVE_SAMPLES, *GEMINI_SAMPLES])
        )
    with tempfile.TemporaryDirectory(prefix="rt-samples-") as tmp:
        work = Path(tmp)
        if not names or "seed-beta" in names:
            make_seed(work)
        for name, (dialect, scenario) in conversations.items():
            if not names or name in names:
                make_conversation(work, name, dialect, scenario)
        for name, sideband in (("live-voice", False), ("live-sideband", True)):
            if not names or name in names:
                make_live(work, name, sideband)
        for name in GEMINI_SAMPLES:
            if not names or name in names:
                make_gemini(work, name)
    for path in sorted(SAMPLES.glob("*.*")):
        if path.suffix != ".py":
            print(f"{path.name:40} {path.stat().st_size:>10,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
