"""``rt_audio=drop`` keeps no sample of any audio field of GPT-Live and Gemini Live, in any file
the project writes, and ``sizes`` counts all of it as audio (issue 20; Realtime's fields are
in tests/test_rt_audio_drop.py).

The fields are those the official SDK types declare (openai 3.60 ``types/live``; google-genai
``types.py``, listed by ``scripts/sdk_gemini_audio_paths.py``). A planted sample is looked for
raw, in base64 of both alphabets and in pieces, in every file's bytes and decoded contents:
journal, Parquet, ``convert`` and ``import`` outputs, exports, the HTML report.
"""

from __future__ import annotations

import base64
import json
import signal
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.peer.gemini_client import run_gemini_conversation_sync
from analyzer.peer.gemini_server import GeminiPeerConfig, run_gemini_server
from analyzer.peer.harness import run_mitmdump, run_server
from analyzer.peer.live_client import run_live_conversation_sync
from analyzer.peer.server import PeerConfig
from analyzer.protocols.audio_paths import AudioPaths, declare, find_fields
from analyzer.protocols.gemini_wire import AUDIO, BLOBS, event_type
from analyzer.protocols.gemini_wire import audio_paths as gemini_audio_paths
from analyzer.protocols.live import ADAPTER as LIVE_ADAPTER
from analyzer.recording.frames import build_frame, restore_frame_text
from tests.audio_fields import Needles, leaks, sample, written_bytes
from tests.capture_factory import T0
from tests.protocol_audio_fields import (
    GEMINI_URL,
    LIVE_FIELDS,
    LIVE_URL,
    Frame,
    encode,
    gemini_fields,
    gemini_message,
    gemini_sdk_paths,
    gemini_session,
    har_of,
    live_event,
    live_session,
    record_frames,
)
from tests.test_rt_audio_drop import FIELDS as REALTIME_FIELDS
from tests.test_rt_audio_drop import (
    all_fields_session,
    every_writer,
    invoke,
)

GEMINI_FIELDS = gemini_fields()
PLANTED_AT = T0 + 0.4


def test_the_gemini_adapter_declares_exactly_the_audio_fields_of_the_sdk_types() -> None:
    sdk = gemini_sdk_paths()
    assert (sorted(AUDIO), sorted(BLOBS)) == (sdk["audio"], sdk["blobs"])
    assert (len(AUDIO), len(BLOBS), sdk["sdk"]) == (5, 19, "google-genai 3.6.1")


def _drop_everywhere(
    tmp_path: Path, url: str, session: list[Frame], binary_server: bool
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Record ``session`` with audio dropped, run every command that writes a file, and
    import the same traffic from a HAR file with ``--audio drop``: the Parquet rows and the
    commands' standard output."""
    run = record_frames(tmp_path / "captures", url, {"s1": session}, keep_audio=False)
    stdout = every_writer(run.parquet_path, tmp_path / "out")
    har = tmp_path / "in" / "traffic.har"
    har.parent.mkdir()
    har.write_text(json.dumps(har_of(url, session, binary_server)))
    stdout.append(
        invoke(
            ["import", str(har), "--dir", str(tmp_path / "imported"), "--audio", "drop"]
        ).stdout_bytes
    )
    (imported,) = (tmp_path / "imported").glob("*.parquet")
    assert pq.read_table(imported).num_rows == len(session)
    har.unlink()  # the input holds the audio, of course
    return pq.read_table(run.parquet_path).to_pylist(), stdout


def _assert_no_sample(tmp_path: Path, audios: list[bytes], stdout: list[bytes]) -> None:
    needles = Needles(audios)
    assert leaks(needles, written_bytes(tmp_path)) == []
    assert leaks(needles, (("stdout", out) for out in stdout)) == []


@pytest.mark.parametrize(
    ("direction", "path"), GEMINI_FIELDS, ids=[f"{d}:{p}" for d, p in GEMINI_FIELDS]
)
def test_rt_audio_drop_keeps_no_sample_of_this_gemini_field_anywhere(
    tmp_path: Path, direction: str, path: str
) -> None:
    audios = [sample(1), sample(2)] if "[*]" in path else [sample(1)]
    urlsafe = direction == "client"  # the official client sends URL-safe base64
    message = gemini_message(path, [encode(a, urlsafe) for a in audios], 1)
    text = json.dumps(message)
    rows, stdout = _drop_everywhere(
        tmp_path, GEMINI_URL, gemini_session([(PLANTED_AT, direction, text)]), True
    )
    _assert_no_sample(tmp_path, audios, stdout)
    (frame,) = [row for row in rows if row["time_s"] == PLANTED_AT]
    assert (frame["event_type"], frame["audio"]) == (event_type(message), None)
    assert frame["opcode"] == ("binary" if direction == "server" else "text")
    assert frame["audio_bytes"] == sum(len(a) for a in audios)
    assert frame["audio_b64_bytes"] == sum(len(base64.b64encode(a)) for a in audios)
    assert frame["frame_bytes"] == len(text.encode())
    assert frame["content"] == json.dumps(gemini_message(path, [""] * len(audios), 1))


@pytest.mark.parametrize(
    ("direction", "kind", "key"), LIVE_FIELDS, ids=[f"{d}:{t}" for d, t, _ in LIVE_FIELDS]
)
def test_rt_audio_drop_keeps_no_sample_of_this_gpt_live_field_anywhere(
    tmp_path: Path, direction: str, kind: str, key: str
) -> None:
    audio = sample(3)
    text = json.dumps(live_event(kind, key, encode(audio, False), 1))
    rows, stdout = _drop_everywhere(
        tmp_path, LIVE_URL, live_session([(PLANTED_AT, direction, text)]), False
    )
    _assert_no_sample(tmp_path, [audio], stdout)
    (frame,) = [row for row in rows if row["time_s"] == PLANTED_AT]
    assert (frame["event_type"], frame["direction"], frame["audio"]) == (kind, direction, None)
    assert (frame["audio_bytes"], frame["audio_b64_bytes"]) == (600, 800)
    assert frame["content"] == json.dumps(live_event(kind, key, "", 1))


def test_a_blob_that_says_it_is_not_audio_is_kept_and_not_counted() -> None:
    image = encode(sample(4), True)
    parts = [{"inlineData": {"mimeType": "image/jpeg", "data": image}}]
    text = json.dumps({"clientContent": {"turns": [{"parts": parts}], "turnComplete": True}})
    rec = build_frame("s", 0, T0, True, True, text.encode(), keep_audio=False)
    assert (rec.content, rec.audio_bytes, rec.audio_b64_bytes) == (text, None, None)


def test_a_path_reads_both_spellings_and_a_blob_only_when_its_type_may_be_audio() -> None:
    declared = declare(
        {"x": ["realtimeInput.mediaChunks[*].data"]},
        urlsafe=True,
        snake_case=True,
        audio_mime=True,
    )
    message = {
        "realtime_input": {
            "media_chunks": [
                {"data": "AAAA", "mime_type": "audio/pcm"},
                {"data": "BBBB", "mimeType": "image/jpeg"},
                {"data": "CCCC"},  # no type stated: it may be audio
            ]
        },
        "realtimeInput": {"mediaChunks": [{"data": "DDDD", "mimeType": "Audio/L16"}]},
    }
    found = find_fields(message, declared["x"])
    assert [(f.key, f.value) for f in found] == [
        ("data", "DDDD"),
        ("data", "AAAA"),
        ("data", "CCCC"),
    ]


def test_a_required_field_missing_under_both_spellings_is_reported_once() -> None:
    paths = declare({"x": ["voice.sampleAudio"]}, snake_case=True)["x"]
    assert [(f.key, f.value) for f in find_fields({"voice": {}}, paths)] == [("sampleAudio", None)]
    spelled = {"voice": {"sample_audio": "AA=="}}
    assert [(f.key, f.value) for f in find_fields(spelled, paths)] == [("sample_audio", "AA==")]


# --- every field of every protocol at once: generated sessions ------------------------------


def _live_frames(blobs: list[list[bytes]], urlsafe: list[bool], snake: bool) -> list[Frame]:
    return [
        (T0 + n * 0.01, direction, json.dumps(live_event(kind, key, encode(audios[0], False), n)))
        for n, ((direction, kind, key), audios) in enumerate(zip(LIVE_FIELDS, blobs, strict=True))
    ]


def _gemini_frames(blobs: list[list[bytes]], urlsafe: list[bool], snake: bool) -> list[Frame]:
    frames = []
    for n, ((direction, path), audios, safe) in enumerate(
        zip(GEMINI_FIELDS, blobs, urlsafe, strict=True)
    ):
        message = gemini_message(path, [encode(a, safe) for a in audios], n, snake)
        frames.append((T0 + n * 0.01, direction, json.dumps(message)))
    return frames


def _realtime_frames(blobs: list[list[bytes]], urlsafe: list[bool], snake: bool) -> list[Frame]:
    return [(t, d, e) for t, d, e in all_fields_session(blobs) if isinstance(e, str)]


PROTOCOLS: dict[str, tuple[str, list[str], Callable[..., list[Frame]]]] = {
    "realtime": (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime",
        [p for _, p in REALTIME_FIELDS],
        _realtime_frames,
    ),
    "live": (LIVE_URL, [k for _, _, k in LIVE_FIELDS], _live_frames),
    "gemini": (GEMINI_URL, [p for _, p in GEMINI_FIELDS], _gemini_frames),
}


@st.composite
def _sessions(draw: st.DrawFn) -> tuple[str, list[list[bytes]], list[bool], bool]:
    protocol = draw(st.sampled_from(sorted(PROTOCOLS)))
    paths = PROTOCOLS[protocol][1]
    audio = st.binary(min_size=0, max_size=300)
    blobs = [draw(st.lists(audio, min_size=1, max_size=3 if "[*]" in p else 1)) for p in paths]
    urlsafe = [draw(st.booleans()) for _ in paths]
    return protocol, blobs, urlsafe, draw(st.booleans())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=_sessions())
def test_generated_sessions_with_audio_in_every_field_of_every_protocol(
    session: tuple[str, list[list[bytes]], list[bool], bool],
) -> None:
    """Dropped: no sample anywhere and every byte counted. Kept: each frame rebuilt byte for
    byte from its cut content and its audio, which is the fields' audio in order."""
    protocol, blobs, urlsafe, snake = session
    url, _, frames_of = PROTOCOLS[protocol]
    frames = frames_of(blobs, urlsafe, snake)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dropped = record_frames(root / "drop", url, {"s": frames}, keep_audio=False)
        kept = record_frames(root / "keep", url, {"s": frames})
        planted = [a for audios in blobs for a in audios]
        assert leaks(Needles(planted), written_bytes(root / "drop")) == []
        for run in (dropped, kept):
            rows = pq.read_table(run.parquet_path).to_pylist()
            assert [r["audio_bytes"] for r in rows] == [sum(map(len, a)) for a in blobs]
            assert [r["audio_b64_bytes"] for r in rows] == [
                sum(len(base64.b64encode(x)) for x in a) for a in blobs
            ]
        rows = pq.read_table(kept.parquet_path).to_pylist()
    for row, (_, _, text), audios in zip(rows, frames, blobs, strict=True):
        restored = restore_frame_text(
            row["content"], row["audio_offset"], row["audio"], row["audio_cuts"]
        )
        assert restored == text
        assert row["audio"] == b"".join(audios)


@pytest.mark.parametrize("protocol", ["live", "gemini"])
def test_sizes_count_the_audio_of_every_field_as_audio(tmp_path: Path, protocol: str) -> None:
    url, paths, frames_of = PROTOCOLS[protocol]
    blobs = [
        [sample(10 * n + i, 300 + n) for i in range(2 if "[*]" in path else 1)]
        for n, path in enumerate(paths)
    ]
    frames = frames_of(blobs, [n % 2 == 0 for n in range(len(paths))], False)
    run = record_frames(tmp_path, url, {"s": frames})
    result = invoke(["sizes", str(run.parquet_path), "--by", "event", "--format", "json"])
    rows = {(r["direction"], r["event_type"]): r for r in json.loads(result.stdout)["rows"]}
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (_, direction, text), audios in zip(frames, blobs, strict=True):
        message = json.loads(text)
        kind = str(message.get("type") or event_type(message))
        expected[(direction, kind)][0] += sum(map(len, audios))
        expected[(direction, kind)][1] += sum(len(base64.b64encode(a)) for a in audios)
    assert sorted(rows) == sorted(expected)
    for key, (audio_bytes, b64_bytes) in expected.items():
        assert (rows[key]["audio_bytes"], rows[key]["audio_b64_bytes"]) == (audio_bytes, b64_bytes)
    total = json.loads(result.stdout)["total"]
    assert total["audio_bytes"] == sum(len(a) for audios in blobs for a in audios)


# --- through real mitmdump, with each protocol's local peer --------------------------------


def _audio_of(message: Any, paths: AudioPaths) -> list[bytes]:
    """The decoded audio at ``paths`` in a message (either base64 alphabet)."""
    if not isinstance(message, dict):
        return []
    texts = [f.value for f in find_fields(message, paths) if isinstance(f.value, str)]
    return [base64.b64decode(t.translate(str.maketrans("-_", "+/"))) for t in texts if t]


def _assert_dropped_through_mitmdump(out: Path, sent: list[bytes]) -> None:
    assert len(sent) > 50 and all(len(a) >= 32 for a in sent)
    assert Needles(sent).informative() > 50  # speech, not only silence, is looked for
    assert leaks(Needles(sent), written_bytes(out)) == []
    (parquet,) = out.glob("*.parquet")
    table = pq.read_table(parquet)
    assert table["audio"].null_count == table.num_rows
    assert sum(x or 0 for x in table["audio_bytes"].to_pylist()) == sum(map(len, sent))


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_rt_audio_drop_through_mitmdump_keeps_no_gemini_sample(tmp_path: Path) -> None:
    """The Gemini peer's conversation (URL-safe audio up, binary frames down) recorded with
    rt_audio=drop: no sample of either side in any file, every byte counted."""
    out = tmp_path / "captures"
    config = GeminiPeerConfig(first_audio_delay_ms=150, audio_pace=8.0)
    drop = ["--set", "rt_audio=drop"]
    with (
        run_gemini_server(tmp_path / "server.jsonl", config) as port,
        run_mitmdump(port, rt_dir=out, extra_args=drop) as proxy,
    ):
        result = run_gemini_conversation_sync(proxy.url(""), scenario="default", speed=8.0)
        assert proxy.stop(signal.SIGINT) == 0
    sent = [
        audio
        for frame in result.frames
        for message in [json.loads(frame["data"])]
        for audio in _audio_of(message, gemini_audio_paths(event_type(message) or ""))
    ]
    assert {f["opcode"] for f in result.frames if f["direction"] == "server"} == {"binary"}
    _assert_dropped_through_mitmdump(out, sent)


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_rt_audio_drop_through_mitmdump_keeps_no_gpt_live_sample(tmp_path: Path) -> None:
    out = tmp_path / "captures"
    config = PeerConfig(first_response_delay_ms=120, first_audio_delay_ms=90, audio_pace=8.0)
    drop = ["--set", "rt_audio=drop"]
    with (
        run_server(config=config, record_path=tmp_path / "server.jsonl") as server,
        run_mitmdump(server.port, rt_dir=out, extra_args=drop) as proxy,
    ):
        result = run_live_conversation_sync(proxy.url("/v1/live/sessions"), speed=4.0)
        assert proxy.stop(signal.SIGINT) == 0
    assert result.errors() == []
    sent = [
        audio
        for frame in result.frames
        for event in [json.loads(frame["text"])]
        for audio in _audio_of(event, LIVE_ADAPTER.audio_paths(str(event.get("type"))))
    ]
    _assert_dropped_through_mitmdump(out, sent)
