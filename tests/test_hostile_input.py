"""Hostile and broken input, to the recorder and to the analyzer, and what they keep private.

The analyzer must answer every broken capture with results (and warnings) or one clear error
line, with a meaningful exit code, never a traceback or a hang; the recorder must keep every
frame it is handed, whatever it holds, and nothing the user asked it not to keep.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
from analyzer.peer.client import run_conversation_sync
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.server import PeerConfig
from analyzer.recording.frames import build_frame, restore_frame_text
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from tests.capture_factory import seed_capture

pytestmark = pytest.mark.timeout(120)

CORPUS = Path(__file__).parent / "corpus"
T0 = 1_700_000_000.0
GA_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
# Sessions named gemini* are recorded at a Gemini Live endpoint (tests/corpus/gemini/).
GEMINI_URL = (
    "wss://generativelanguage.googleapis.com/ws/"
    "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=SECRET"
)

# (from_client, is_text, content)
Frame = tuple[bool, bool, bytes]


def corpus_frames(path: Path) -> list[Frame]:
    """A corpus file's frames (see tests/corpus/README.md for the format)."""
    frames: list[Frame] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        prefix, _, rest = line.partition(" ")
        from_client = prefix[0] == "C"
        if prefix in ("C", "S"):
            frames.append((from_client, True, rest.encode()))
        elif prefix in ("CB", "SB"):
            frames.append((from_client, False, base64.b64decode(rest)))
        elif prefix in ("CX", "SX"):
            frames.append((from_client, True, base64.b64decode(rest)))
        else:
            raise ValueError(f"{path.name}: bad line {line!r}")
    return frames


CORPUS_FILES = sorted(CORPUS.glob("*.txt"))


def record(
    directory: Path,
    sessions: dict[str, list[Frame]],
    run_id: str = "rt-hostile",
    keep_audio: bool = True,
) -> RunRecorder:
    """Record sessions through the real recorder (journal + Parquet)."""
    run = RunRecorder(directory, run_id=run_id)
    for n, (session_id, frames) in enumerate(sessions.items()):
        start = T0 + n * 100
        url = GEMINI_URL if session_id.startswith("gemini") else GA_URL
        run.start_session(handshake_facts(session_id, run_id, url, [], [], start, keep_audio))
        for seq, (from_client, is_text, content) in enumerate(frames):
            rec = build_frame(
                session_id, seq, start + seq * 0.05, from_client, is_text, content, keep_audio
            )
            assert run.record_frame(rec)
        run.end_session(session_id, end_s=start + len(frames) * 0.05 + 1, close_code=1000)
    run.close()
    return run


def commands(capture: Path, wav_dir: Path) -> Iterator[list[str]]:
    """Every analysis command, in each of its output formats."""
    c = str(capture)
    yield from (["report", c], ["report", c, "--format", "json"])
    yield from (["latency", c], ["latency", c, "--format", "json"], ["latency", c, "--per-turn"])
    yield from (["sizes", c], ["sizes", c, "--by", "session", "--format", "csv"])
    yield from (["conversation", c], ["conversation", c, "--format", "json"])
    yield from (["turns", c], ["audio", c, "-o", str(wav_dir)])


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args, env={"RT_ANALYZE_DEBUG": ""})


def assert_handled(result: Result, args: list[str], ok: bool = True) -> None:
    """No traceback, no exception escaping, no "unexpected" catch-all; exit 0 when ``ok``,
    else a one-line ``Error:`` and exit 1."""
    where = f"rt-analyze {' '.join(args)}:\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), where
    assert "Traceback" not in result.output, where
    assert "unexpected" not in result.output, where
    if ok:
        assert result.exit_code == 0, where
    else:
        assert result.exit_code == 1, where
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, where


# --- the corpus: every command on every broken session --------------------------------------

# Each of these also has its own test below.
KNOWN_BAD: set[str] = set()


def hostile_capture(tmp_path: Path, names: list[str]) -> RunRecorder:
    sessions = {name.removesuffix(".txt"): corpus_frames(CORPUS / name) for name in names}
    return record(tmp_path / "capture", sessions)


@pytest.mark.parametrize("source", ["parquet", "jsonl"])
@pytest.mark.parametrize("name", [p.name for p in CORPUS_FILES if p.name not in KNOWN_BAD])
def test_every_command_answers_a_broken_session_without_a_traceback(
    tmp_path: Path, name: str, source: str
) -> None:
    run = hostile_capture(tmp_path, [name])
    capture = run.parquet_path if source == "parquet" else run.journal_path
    for args in commands(capture, tmp_path / "wav"):
        assert_handled(invoke(args), args)


# Kept out of CORPUS_FILES (and so out of the corpus goldens): recorded at a Gemini endpoint.
GEMINI_CORPUS = CORPUS / "gemini" / "hostile.txt"


@pytest.mark.parametrize("source", ["parquet", "jsonl"])
def test_hostile_gemini_frames_give_no_traceback_and_are_kept_as_they_arrived(
    tmp_path: Path, source: str
) -> None:
    frames = corpus_frames(GEMINI_CORPUS)
    run = record(tmp_path / "capture", {"gemini-hostile": frames})
    capture = run.parquet_path if source == "parquet" else run.journal_path
    for args in commands(capture, tmp_path / "wav"):
        assert_handled(invoke(args), args)
    rows = sorted(pq.read_table(run.parquet_path).to_pylist(), key=lambda r: r["seq"])
    assert len(rows) == len(frames)
    for row, (_, _, content) in zip(rows, frames, strict=True):
        if row["binary_content"] is not None:
            assert row["binary_content"] == content
        else:
            text = restore_frame_text(
                row["content"], row["audio_offset"], row["audio"], row["audio_cuts"]
            )
            assert text.encode() == content
    report = json.loads(invoke(["report", str(run.parquet_path), "--format", "json"]).stdout)
    assert report["sessions"][0]["dialect"] == "gemini"


def test_all_broken_sessions_read_as_one_capture(tmp_path: Path) -> None:
    names = [p.name for p in CORPUS_FILES if p.name not in KNOWN_BAD]
    run = hostile_capture(tmp_path, names)
    for args in commands(run.directory, tmp_path / "wav"):
        assert_handled(invoke(args), args)
    sizes = json.loads(invoke(["sizes", str(run.directory), "--format", "json"]).stdout)
    assert sizes["total"]["frames"] == sum(len(corpus_frames(CORPUS / n)) for n in names)


def test_the_recorder_keeps_every_broken_frame_as_it_arrived(tmp_path: Path) -> None:
    names = [p.name for p in CORPUS_FILES]
    run = hostile_capture(tmp_path, names)
    rows = pq.read_table(run.parquet_path).to_pylist()
    expected = [frame for n in names for frame in corpus_frames(CORPUS / n)]
    assert len(rows) == len(expected) == run.counts.frames_recorded
    for row, (from_client, is_text, content) in zip(rows, expected, strict=True):
        assert row["direction"] == ("client" if from_client else "server")
        assert row["opcode"] == ("text" if is_text else "binary")
        assert row["frame_bytes"] == len(content)
        if row["binary_content"] is not None:
            assert row["binary_content"] == content and row["problem"]
        else:
            text = restore_frame_text(
                row["content"], row["audio_offset"], row["audio"], row.get("audio_cuts")
            )
            assert text.encode() == content
    problems = run.summary()["problems"]
    assert {"not JSON", "binary frame", "text frame is not valid UTF-8"} <= set(problems)


def test_an_item_that_follows_itself_is_handled(tmp_path: Path) -> None:
    run = hostile_capture(tmp_path, ["self_reference.txt"])
    for args in commands(run.parquet_path, tmp_path / "wav"):
        assert_handled(invoke(args), args)


def test_audio_export_of_impossible_sample_rates_is_handled(tmp_path: Path) -> None:
    run = hostile_capture(tmp_path, ["bad_rates.txt"])
    for args in commands(run.parquet_path, tmp_path / "wav"):
        assert_handled(invoke(args), args)


def test_report_and_conversation_tables_survive_a_transcript_with_rich_markup(
    tmp_path: Path,
) -> None:
    run = hostile_capture(tmp_path, ["markup.txt"])
    for args in (["report", str(run.parquet_path)], ["conversation", str(run.parquet_path)]):
        assert_handled(invoke(args), args)


TERMINAL_TRICKS = "[bold red]x[/bold red] \x1b[2J\x1b]0;pwned\x07 [link=file:///etc/passwd]y[/link]"


@pytest.mark.parametrize("command", ["conversation", "report"])
def test_terminal_output_shows_captured_text_literally(tmp_path: Path, command: str) -> None:
    said = json.dumps(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u1",
            "transcript": TERMINAL_TRICKS,
        }
    )
    created = '{"type":"session.created","session":{"type":"realtime"}}'
    run = record(
        tmp_path / "capture",
        {
            "s-[b]id[/b]": [
                (False, True, created.encode()),
                (False, True, b'{"type":"input_audio_buffer.speech_stopped","item_id":"u1"}'),
                (False, True, said.encode()),
            ]
        },
    )
    result = invoke([command, str(run.parquet_path)])
    assert_handled(result, [command])
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "[bold red]x[/bold red]" in result.output
    assert "s-[b]id[/b]" in result.output


# --- generated sessions: realistic event types, hostile field values ------------------------


IDS = st.sampled_from(["i1", "i2", "r1", "r2", "u1", ""]) | st.integers(-1, 3) | st.none()
# Rates are kept sane here: impossible rates have their own test above.
FORMATS: st.SearchStrategy[Any] = st.sampled_from(
    [
        {"type": "audio/pcm", "rate": 24000},
        {"type": "audio/pcmu"},
        {"type": "audio/pcma"},
        "pcm16",
        "g711_ulaw",
        "x",
        None,
        5,
        [],
    ]
)
AUDIO = st.sampled_from(["", "AAAA", "AAE=", "AQ==", "%%%", "AAECAwQFBgcICQoL" * 4]) | st.none()
# Text without '[': markup in text is covered by the terminal tests above.
TEXT = st.text(alphabet=st.characters(blacklist_characters="["), max_size=12)
VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "type", "x"]), st.integers() | TEXT, max_size=2),
)
MS = st.integers(-1000, 10**9) | st.none() | TEXT | st.floats(allow_nan=True)

SERVER_TYPES = [
    "session.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.created",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.truncated",
    "conversation.item.deleted",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "response.created",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.audio.delta",
    "response.output_audio.delta",
    "response.output_audio_transcript.delta",
    "response.audio_transcript.done",
    "response.output_text.delta",
    "response.text.done",
    "response.function_call_arguments.done",
    "response.done",
    "rate_limits.updated",
    "error",
]
CLIENT_TYPES = [
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "conversation.item.create",
    "conversation.item.truncate",
    "response.create",
    "response.cancel",
]


@st.composite
def hostile_event(draw: st.DrawFn) -> tuple[bool, dict[str, Any]]:
    from_client = draw(st.booleans())
    kind = draw(st.sampled_from(CLIENT_TYPES if from_client else SERVER_TYPES))
    item = draw(
        st.fixed_dictionaries(
            {"id": IDS},
            optional={
                "type": st.sampled_from(["message", "function_call", "x"]) | VALUE,
                "role": st.sampled_from(["user", "assistant"]) | VALUE,
                "status": VALUE,
                "content": st.lists(
                    st.fixed_dictionaries(
                        {}, optional={"type": VALUE, "transcript": VALUE, "text": VALUE}
                    )
                    | VALUE,
                    max_size=2,
                )
                | VALUE,
                "name": VALUE,
                "arguments": VALUE,
                "call_id": VALUE,
            },
        )
    )
    session = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["realtime", "transcription"]) | VALUE,
                "model": VALUE,
                "modalities": VALUE,
                "input_audio_format": FORMATS,
                "output_audio_format": FORMATS,
                "turn_detection": st.fixed_dictionaries({}, optional={"silence_duration_ms": MS})
                | VALUE,
                "audio": st.fixed_dictionaries(
                    {},
                    optional={
                        "input": st.fixed_dictionaries({}, optional={"format": FORMATS}) | VALUE,
                        "output": st.fixed_dictionaries({}, optional={"format": FORMATS}) | VALUE,
                    },
                )
                | VALUE,
            },
        )
    )
    response = draw(
        st.fixed_dictionaries(
            {"id": IDS},
            optional={
                "status": st.sampled_from(["completed", "cancelled", "incomplete"]) | VALUE,
                "status_details": VALUE,
                "output": st.lists(st.just(item) | VALUE, max_size=2) | VALUE,
                "usage": st.fixed_dictionaries(
                    {},
                    optional={
                        "total_tokens": VALUE,
                        "input_tokens": VALUE,
                        "output_tokens": VALUE,
                        "input_token_details": VALUE,
                        "output_token_details": VALUE,
                    },
                )
                | VALUE,
            },
        )
    )
    fields = {
        "event_id": IDS,
        "item_id": IDS,
        "response_id": IDS,
        "previous_item_id": IDS,
        "content_index": VALUE,
        "audio_start_ms": MS,
        "audio_end_ms": MS,
        "delta": AUDIO | VALUE,
        "audio": AUDIO | VALUE,
        "transcript": VALUE,
        "text": VALUE,
        "item": st.just(item) | VALUE,
        "session": st.just(session) | VALUE,
        "response": st.just(response) | VALUE,
        "error": VALUE,
        "usage": VALUE,
    }
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), max_size=6, unique=True))
    event: dict[str, Any] = {"type": kind}
    for name in chosen:
        event[name] = draw(fields[name])
    return from_client, event


def frames_of(events: list[tuple[bool, dict[str, Any]]]) -> list[Frame]:
    return [(c, True, json.dumps(e).encode()) for c, e in events]


GENERATED_COMMANDS = [
    ["report", "--format", "json"],
    ["latency", "--format", "json"],
    ["latency", "--per-turn", "--format", "csv"],
    ["sizes", "--by", "session", "--format", "json"],
    ["conversation", "--format", "json"],
    ["turns", "--format", "json"],
    ["report"],
    ["audio", "-o"],
]


@settings(
    max_examples=int(os.environ.get("RT_HOSTILE_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(hostile_event(), min_size=1, max_size=25))
def test_generated_hostile_sessions_never_crash_the_analyzer(
    events: list[tuple[bool, dict[str, Any]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = record(Path(tmp) / "capture", {"generated": frames_of(events)})
        for command in GENERATED_COMMANDS:
            args = [command[0], str(run.parquet_path), *command[1:]]
            if command[0] == "audio":
                args.append(str(Path(tmp) / "wav"))
            assert_handled(invoke(args), args)


# --- truncated files ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def realistic_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_capture(tmp_path_factory.mktemp("seed"))


TRUNCATION_COMMANDS = [
    ["report", "--format", "json"],
    ["sizes", "--format", "json"],
    ["conversation", "--format", "json"],
]


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    cut=st.floats(0.0, 1.0, exclude_max=True),
    which=st.sampled_from(["parquet beside its journal", "parquet alone", "journal alone"]),
)
def test_a_capture_cut_at_any_offset_gives_results_or_one_clear_error(
    realistic_capture: Path, cut: float, which: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / realistic_capture.name
        journal = parquet.with_suffix(".jsonl")
        cut_file = journal if which == "journal alone" else parquet
        if which != "journal alone":
            parquet.write_bytes(realistic_capture.read_bytes())
        if which != "parquet alone":
            journal.write_bytes(realistic_capture.with_suffix(".jsonl").read_bytes())
        data = cut_file.read_bytes()
        cut_file.write_bytes(data[: int(len(data) * cut)])
        for command in TRUNCATION_COMMANDS:
            args = [command[0], str(cut_file), *command[1:]]
            result = invoke(args)
            assert_handled(result, args, ok=result.exit_code == 0)
            if which == "parquet beside its journal":
                assert result.exit_code == 0  # read from the journal instead...
                # ...and said so: the journal is whole, so the recorder finished the run
                assert "is unreadable though its journal is complete" in result.stderr
            if which == "parquet alone":
                empty = "is empty (0 bytes)" in result.stderr
                assert empty or "is an unfinished Parquet file" in result.stderr
                assert "beside it" in result.stderr


# --- hostile frames through real mitmdump ---------------------------------------------------

HUGE_AUDIO_BYTES = 15 * 2**20  # 20 MB of base64 in one frame


def hostile_wire_frames() -> list[str | bytes]:
    huge = base64.b64encode(os.urandom(HUGE_AUDIO_BYTES)).decode()
    return [
        "not json at all",
        "",
        '{"no_type": true}',
        '{"type": 5}',
        '{"type":"conversation.item.truncate","item_id":5,"audio_end_ms":"x"}',
        '{"type":"input_audio_buffer.append","audio":"not base64!!"}',
        '{"type":"input_audio_buffer.append","audio":"AAE="}',
        b"\x00\x01\x02binary\xff",
        '{"type":"input_audio_buffer.append","audio":"' + huge + '"}',
        '{"type":"response.create"}',
    ]


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_hostile_frames_through_mitmdump_are_forwarded_and_recorded_as_they_were(
    tmp_path: Path,
) -> None:
    out = tmp_path / "captures"
    upstream = socket.socket()
    upstream.bind(("127.0.0.1", 0))
    upstream.listen(4)
    frames = hostile_wire_frames()
    echoed: list[str | bytes] = []

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def scenario(url: str) -> None:
        async with (
            serve(echo, sock=upstream, max_size=None),
            # no permessage-deflate: mitmproxy would inflate and deflate the 20 MB frame twice
            connect(url, max_size=None, ping_interval=None, compression=None) as ws,
        ):
            for frame in frames:
                await ws.send(frame)
                echoed.append(await asyncio.wait_for(ws.recv(), 30))

    with run_mitmdump(upstream.getsockname()[1], rt_dir=out) as proxy:
        asyncio.run(scenario(proxy.url()))
        assert proxy.stop(signal.SIGINT) == 0
        log = proxy.output()
    assert echoed == frames  # the proxy forwarded every frame unchanged
    assert "addon fault" not in log and "Traceback" not in log
    rows = pq.read_table(next(out.glob("*.parquet"))).to_pylist()
    assert len(rows) == 2 * len(frames)
    for index, frame in enumerate(frames):
        raw = frame if isinstance(frame, bytes) else frame.encode()
        for row in rows[2 * index : 2 * index + 2]:  # the frame, then its echo
            assert row["frame_bytes"] == len(raw)
            if isinstance(frame, bytes):
                assert row["binary_content"] == raw and row["problem"] == "binary frame"
            else:
                text = restore_frame_text(
                    row["content"], row["audio_offset"], row["audio"], row.get("audio_cuts")
                )
                assert text == frame
    problems = [row["problem"] for row in rows[::2]]
    assert problems[:8] == [
        "not JSON",
        "not JSON",
        "JSON has no string 'type'",
        "JSON has no string 'type'",
        None,
        "audio is not valid base64",
        None,
        "binary frame",
    ]
    assert rows[16]["audio_bytes"] == rows[17]["audio_bytes"] == HUGE_AUDIO_BYTES
    for args in (["report", str(out)], ["sizes", str(out)], ["conversation", str(out)]):
        assert_handled(invoke(args), args)


# --- privacy: rt_audio=drop keeps no samples anywhere; private files whatever the umask ------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_rt_audio_drop_through_mitmdump_keeps_sizes_but_no_samples(
    tmp_path: Path, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    out = tmp_path / "captures"
    with run_server(config=fast_peer_config) as server, ExitStack() as stack:
        with umask(0):  # a careless environment: mitmdump inherits umask 000
            proxy = stack.enter_context(
                run_mitmdump(server.port, rt_dir=out, extra_args=["--set", "rt_audio=drop"])
            )
        result = run_conversation_sync(proxy.url(), speed=fast_speed)
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == []
    sent_audio: dict[str, int] = {"client": 0, "server": 0}
    chunks: list[bytes] = []
    for frame in result.frames:
        event = json.loads(frame["text"])
        b64 = event.get("audio") if frame["direction"] == "client" else event.get("delta")
        if event["type"].endswith("audio.delta") or event["type"] == "input_audio_buffer.append":
            sent_audio[frame["direction"]] += len(base64.b64decode(b64))
            if len(b64) >= 64 and len(set(b64)) > 4:  # not silence: recognisable if kept
                chunks.append(b64[16:64].encode())
    assert sent_audio["client"] > 0 and sent_audio["server"] > 0 and chunks
    files = sorted(out.iterdir())
    assert os.stat(out).st_mode & 0o777 == 0o700
    assert [os.stat(p).st_mode & 0o777 for p in files] == [0o600, 0o600]
    for path in files:  # no sample survives, in any file, in any form we can search for
        data = path.read_bytes()
        assert not any(chunk in data for chunk in chunks), path.name
    journal = [json.loads(line) for line in next(out.glob("*.jsonl")).read_text().splitlines()]
    for line in journal:
        if line["record"] == "frame" and line["audio_bytes"]:
            event = json.loads(line["content"])
            assert event.get("audio", "") == "" and event.get("delta", "") == ""
    table = pq.read_table(next(out.glob("*.parquet")))
    assert table["audio"].null_count == table.num_rows
    rows = table.select(["direction", "audio_bytes"]).to_pylist()
    for direction, total in sent_audio.items():  # the sizes are all kept
        assert sum(r["audio_bytes"] or 0 for r in rows if r["direction"] == direction) == total
    sizes = invoke(["sizes", str(out), "--by", "direction", "--format", "json"])
    assert_handled(sizes, ["sizes"])
    assert json.loads(sizes.stdout)["total"]["audio_bytes"] == sum(sent_audio.values())
