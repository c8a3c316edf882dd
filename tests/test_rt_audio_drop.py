"""``rt_audio=drop`` keeps no sample of any audio field the protocol has, in any file the project
writes; every field's audio is counted as audio (issue 20).

The fields are those the official SDK types document as base64 audio
(``tests/sdk/realtime_audio_paths.json``, from ``scripts/sdk_audio_paths.py``), not only the
ones the local peer sends. A planted sample is looked for raw, in base64 of both alphabets and
in pieces, in every file's bytes and in its decoded contents (Parquet cells, HTML players).
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from analyzer.cli import main as cli
from analyzer.peer.harness import run_mitmdump
from analyzer.recording.frames import restore_frame_text
from tests.audio_fields import (
    Needles,
    direction_of,
    event_with_audio,
    leaks,
    sample,
    sdk_audio_fields,
    written_bytes,
)
from tests.capture_factory import (
    T0,
    Event,
    appends,
    ga_response,
    ga_session_created,
    ga_vad_user_turn,
    ordered,
    record_sessions,
)

FIELDS = sdk_audio_fields()


def invoke(args: list[str]) -> Result:
    result = CliRunner().invoke(cli, args, env={"RT_ANALYZE_DEBUG": ""})
    assert result.exit_code == 0, f"rt-analyze {' '.join(args)}:\n{result.output}"
    return result


def voice_session(planted: list[Event]) -> list[Event]:
    """A GA session with one spoken turn and its reply, ``planted`` frames in the middle."""
    return ordered(
        [ga_session_created(T0)],
        appends(T0 + 0.1, 10, 960),
        ga_vad_user_turn(T0 + 0.2, T0 + 0.4, "item_u1", None, 100, 300, "Hello there."),
        ga_response(
            T0 + 0.5, "resp_r1", "item_a1", "item_u1", "Hi, how can I help?", [(0.05, 4800)], 0.3
        ),
        planted,
    )


def planted_event(event_type: str, path: str, audios: list[bytes], n: int) -> Event:
    texts = [base64.b64encode(a).decode() for a in audios]
    event = event_with_audio(event_type, path, texts, n)
    return (T0 + 0.45 + n * 0.001, direction_of(event_type), event)


def every_writer(capture: Path, out: Path) -> list[bytes]:
    """Run each command that writes a file (convert, export, the HTML report, audio) and the
    analysis commands; their standard output."""
    journal = capture.with_suffix(".jsonl")
    out.mkdir()
    invoke(["convert", str(journal), "-o", str(out / "converted.parquet")])
    turns, sizes, spans = out / "turns.parquet", out / "sizes.csv", out / "spans.json"
    invoke(
        ["export", str(capture), "--turns", str(turns), "--sizes", str(sizes), "--otlp", str(spans)]
    )
    invoke(
        [
            "export",
            str(journal),
            "--turns",
            str(out / "turns.csv"),
            "--sizes",
            str(out / "sizes.parquet"),
        ]
    )
    stdout = [
        invoke(
            ["report", str(capture), "--format", "json", "--html", str(out / "r.html")]
        ).stdout_bytes
    ]
    invoke(["audio", str(capture), "-o", str(out / "wav")])
    for args in (
        ["conversation", str(journal), "--format", "json"],
        ["turns", str(capture), "--format", "json"],
    ):
        stdout.append(invoke(args).stdout_bytes)
    return stdout


@pytest.mark.parametrize(("event_type", "path"), FIELDS, ids=[f"{t}:{p}" for t, p in FIELDS])
def test_rt_audio_drop_keeps_no_sample_of_this_field_anywhere(
    tmp_path: Path, event_type: str, path: str
) -> None:
    audios = [sample(1), sample(2)] if "[*]" in path else [sample(1)]
    planted = planted_event(event_type, path, audios, 1)
    run = record_sessions(tmp_path / "captures", {"s1": voice_session([planted])}, keep_audio=False)
    stdout = every_writer(run.parquet_path, tmp_path / "out")
    needles = Needles(audios)
    assert leaks(needles, written_bytes(tmp_path)) == []
    assert leaks(needles, (("stdout", out) for out in stdout)) == []
    # The sizes are kept: the frame says how much audio it carried, its JSON the rest.
    table = pq.read_table(run.parquet_path)
    assert table["audio"].null_count == table.num_rows
    (frame,) = [row for row in table.to_pylist() if row["event_id"] == "event_1"]
    assert frame["audio_bytes"] == sum(len(a) for a in audios)
    assert frame["audio_b64_bytes"] == sum(len(base64.b64encode(a)) for a in audios)
    assert frame["frame_bytes"] == len(json.dumps(planted[2]).encode())
    emptied: Any = json.loads(frame["content"])
    assert emptied == event_with_audio(event_type, path, [""] * len(audios), 1)


# --- every field at once: generated sessions, sizes, restoration ------------------------------


def all_fields_session(
    blobs: list[list[bytes]], secret: str = "", compact: bool = False
) -> list[Event]:
    """One frame per audio field of the SDK, the ``i``-th holding ``blobs[i]``; ``secret`` in
    each frame's event id, so redaction runs around the audio."""
    events: list[Event] = []
    for n, ((event_type, path), audios) in enumerate(zip(FIELDS, blobs, strict=True)):
        texts = [base64.b64encode(a).decode() for a in audios]
        event = event_with_audio(event_type, path, texts, n)
        event["event_id"] += secret
        text = json.dumps(event, separators=(",", ":") if compact else None)
        events.append((T0 + n * 0.01, direction_of(event_type), text))
    return events


def _blobs_strategy() -> st.SearchStrategy[list[list[bytes]]]:
    audio = st.binary(min_size=0, max_size=300)
    return st.tuples(
        *(st.lists(audio, min_size=1, max_size=3 if "[*]" in path else 1) for _, path in FIELDS)
    ).map(list)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blobs=_blobs_strategy(),
    secret=st.sampled_from(["", " sk-proj-abcdefghijkl", " ek_0123456789abcdef"]),
    compact=st.booleans(),
)
def test_generated_sessions_with_audio_in_every_field(
    blobs: list[list[bytes]], secret: str, compact: bool
) -> None:
    """Dropped: no sample anywhere and every byte counted. Kept: each frame rebuilt byte for
    byte from its cut content and its audio, which is the fields' audio in order."""
    events = all_fields_session(blobs, secret, compact)
    texts = [text for _, _, text in events if isinstance(text, str)]
    expected = [text.replace(secret.strip(), "[REDACTED]") if secret else text for text in texts]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dropped = record_sessions(root / "drop", {"s": events}, keep_audio=False)
        kept = record_sessions(root / "keep", {"s": events})
        assert (
            leaks(Needles([a for audios in blobs for a in audios]), written_bytes(root / "drop"))
            == []
        )
        for run in (dropped, kept):
            rows = pq.read_table(run.parquet_path).to_pylist()
            assert [r["audio_bytes"] for r in rows] == [sum(map(len, a)) for a in blobs]
            assert [r["audio_b64_bytes"] for r in rows] == [
                sum(len(base64.b64encode(x)) for x in a) for a in blobs
            ]
        rows = pq.read_table(kept.parquet_path).to_pylist()
    for row, text, audios in zip(rows, expected, blobs, strict=True):
        restored = restore_frame_text(
            row["content"], row["audio_offset"], row["audio"], row["audio_cuts"]
        )
        assert restored == text
        assert row["audio"] == b"".join(audios)
        if row["audio_cuts"] is not None:
            assert [c["audio_bytes"] for c in row["audio_cuts"]] == [len(a) for a in audios]


def test_sizes_count_the_audio_of_every_field_as_audio(tmp_path: Path) -> None:
    blobs = [
        [sample(10 * n + i, 300 + n) for i in range(2 if "[*]" in path else 1)]
        for n, (_, path) in enumerate(FIELDS)
    ]
    run = record_sessions(tmp_path, {"s": all_fields_session(blobs)})
    result = invoke(["sizes", str(run.parquet_path), "--by", "event", "--format", "json"])
    rows = {(r["direction"], r["event_type"]): r for r in json.loads(result.stdout)["rows"]}
    assert len(rows) == len(FIELDS)
    for (event_type, _), audios in zip(FIELDS, blobs, strict=True):
        row = rows[(direction_of(event_type), event_type)]
        assert row["audio_bytes"] == sum(map(len, audios)), event_type
        assert row["audio_b64_bytes"] == sum(len(base64.b64encode(a)) for a in audios)
        assert row["bytes"] - row["audio_b64_bytes"] < 400  # the JSON around the audio
    total = json.loads(result.stdout)["total"]
    assert total["audio_bytes"] == sum(len(a) for audios in blobs for a in audios)


# --- through real mitmdump ----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(90)
@pytest.mark.parametrize("writer", ["process", "inline"])
def test_rt_audio_drop_through_mitmdump_keeps_no_sample_of_any_field(
    tmp_path: Path, writer: str
) -> None:
    """A client and a server exchange one frame per audio field of the SDK through mitmdump
    (the writer process, or recording inside mitmdump): the frames pass unchanged, the capture
    keeps every size and no sample."""
    sent: dict[str, list[tuple[str, list[bytes]]]] = {"client": [], "server": []}
    for n, (event_type, path) in enumerate(FIELDS):
        audios = [sample(100 + n, 500 + n)] + ([sample(200 + n, 300)] if "[*]" in path else [])
        event = event_with_audio(
            event_type, path, [base64.b64encode(a).decode() for a in audios], n
        )
        sent[direction_of(event_type)].append((json.dumps(event), audios))
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(4)
    received: dict[str, list[str]] = {"client": [], "server": []}

    async def server(ws: ServerConnection) -> None:
        for _ in sent["client"]:
            received["client"].append(str(await ws.recv()))
        for text, _ in sent["server"]:
            await ws.send(text)
        await ws.wait_closed()

    async def client(url: str) -> None:
        async with serve(server, sock=upstream), connect(url, compression=None) as ws:
            for text, _ in sent["client"]:
                await ws.send(text)
            for _ in sent["server"]:
                received["server"].append(str(await asyncio.wait_for(ws.recv(), 20)))

    out = tmp_path / "captures"
    args = ["--set", "rt_audio=drop", "--set", f"rt_writer={writer}"]
    with run_mitmdump(upstream.getsockname()[1], rt_dir=out, extra_args=args) as proxy:
        asyncio.run(client(proxy.url("/v1/realtime?model=gpt-realtime")))
        assert proxy.stop(signal.SIGINT) == 0
        log = proxy.output()
    assert "Traceback" not in log and "addon fault" not in log
    for direction in ("client", "server"):  # forwarded as they were
        assert received[direction] == [text for text, _ in sent[direction]]
    planted = [a for side in sent.values() for _, audios in side for a in audios]
    assert leaks(Needles(planted), written_bytes(out)) == []
    rows = pq.read_table(next(out.glob("*.parquet"))).to_pylist()
    by_event = {row["event_id"]: row for row in rows}
    assert len(rows) == len(FIELDS)
    for n, (event_type, _) in enumerate(FIELDS):
        row = by_event[f"event_{n}"]
        audios = next(a for t, a in sent[direction_of(event_type)] if f'"event_{n}"' in t)
        assert (row["event_type"], row["audio"]) == (event_type, None)
        assert row["audio_bytes"] == sum(map(len, audios))
        assert row["audio_b64_bytes"] == sum(len(base64.b64encode(a)) for a in audios)
