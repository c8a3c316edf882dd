"""Audio export: item audio byte-exact with the wire, VAD slices, formats, the stereo timeline."""

from __future__ import annotations

import base64
import bisect
import io
import json
import os
import struct
import wave
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analyzer.audio import (
    AudioChunk,
    ItemAudio,
    SessionAudio,
    export_audio,
    export_capture_audio,
    load_audio,
    load_item_audio,
    parse_wav,
    session_stereo,
    session_streams,
    wav_bytes,
)
from analyzer.audio.export import session_dirs
from analyzer.codecs import alaw_decode, resample, resample_pcm16, ulaw_decode
from analyzer.formats import ALAW, MP3, PCM16, ULAW, AudioFormat
from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from analyzer.schema import METADATA_KEY

T0 = 1_700_000_000.0
GA_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"
BETA_URL = "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
QWEN_URL = "wss://dashscope.aliyuncs.com/api-ws/v1/realtime?model=qwen-omni-turbo-realtime"

Event = tuple[float, str, dict[str, Any]]


# --- building captures with the real recording code ------------------------------------------


def noise(n_bytes: int, seed: int) -> bytes:
    """Distinct, known audio bytes (every byte value occurs, so G.711 is covered too)."""
    return np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()


def tone(n_samples: int, rate: int = 24000, hz: float = 440.0) -> bytes:
    t = np.arange(n_samples) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2").tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(
    directory: Path,
    sessions: dict[str, Sequence[Event]],
    url: str = GA_URL,
    keep_audio: bool = True,
) -> tuple[Path, Path]:
    """Record sessions through a real RunRecorder; (parquet, journal) paths."""
    run = RunRecorder(directory, run_id="rt-audio")
    for session_id, events in sessions.items():
        run.start_session(handshake_facts(session_id, "rt-audio", url, [], [], T0, keep_audio))
        for seq, (time_s, direction, event) in enumerate(sorted(events, key=lambda e: e[0])):
            text = json.dumps(event).encode()
            run.record_frame(
                build_frame(session_id, seq, time_s, direction == "client", True, text, keep_audio)
            )
        run.end_session(session_id, end_s=T0 + 100, close_code=1000, closed_by_client=True)
    run.close()
    return run.parquet_path, run.journal_path


def ga_session(t: float = T0, vad: bool = True, fmt: dict[str, Any] | None = None) -> Event:
    fmt = fmt or {"type": "audio/pcm", "rate": 24000}
    detection = {"type": "server_vad", "silence_duration_ms": 500} if vad else None
    audio = {
        "input": {"format": fmt, "turn_detection": detection},
        "output": {"format": fmt, "voice": "marin"},
    }
    return (
        t,
        "server",
        {"type": "session.created", "session": {"type": "realtime", "audio": audio}},
    )


def appends(t: float, chunks: Sequence[bytes], gap_s: float) -> list[Event]:
    return [
        (t + i * gap_s, "client", {"type": "input_audio_buffer.append", "audio": b64(c)})
        for i, c in enumerate(chunks)
    ]


def ev(t: float, direction: str, event_type: str, **fields: Any) -> Event:
    return (t, direction, {"type": event_type, **fields})


def message(item_id: str, role: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role}


def vad_turn(
    t_start: float, t_stop: float, item_id: str, start_ms: int, end_ms: int
) -> list[Event]:
    buffer = "input_audio_buffer."
    return [
        ev(t_start, "server", buffer + "speech_started", audio_start_ms=start_ms, item_id=item_id),
        ev(t_stop, "server", buffer + "speech_stopped", audio_end_ms=end_ms, item_id=item_id),
        ev(t_stop + 0.001, "server", buffer + "committed", item_id=item_id),
        ev(t_stop + 0.002, "server", "conversation.item.added", item=message(item_id, "user")),
    ]


def truncate(t: float, item_id: str, audio_end_ms: int) -> Event:
    fields = {"item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}
    return ev(t, "client", "conversation.item.truncate", **fields)


def committed(t: float, item_id: str) -> Event:
    return (t, "server", {"type": "input_audio_buffer.committed", "item_id": item_id})


def reply(
    t: float, item_id: str, deltas: Sequence[bytes], gap_s: float = 0.01, ga: bool = True
) -> list[Event]:
    kind = "response.output_audio.delta" if ga else "response.audio.delta"
    response_id = "resp_" + item_id
    events: list[Event] = [
        ev(t, "server", "response.created", response={"id": response_id}),
        ev(t + 0.001, "server", "conversation.item.added", item=message(item_id, "assistant")),
    ]
    for i, delta in enumerate(deltas):
        fields = {"response_id": response_id, "item_id": item_id, "delta": b64(delta)}
        events.append(ev(t + 0.002 + i * gap_s, "server", kind, **fields))
    return events


def wav_data(path: Path) -> tuple[int, int, int, bytes]:
    """(format tag, channels, rate, data) of a WAV file, read by hand (Python's wave module
    reads only PCM)."""
    blob = path.read_bytes()
    info = parse_wav(blob)
    assert info is not None
    tag, channels, rate = struct.unpack_from("<HHI", blob, 20)
    assert blob[12:16] == b"fmt "
    riff_size = struct.unpack_from("<I", blob, 4)[0]
    assert riff_size == len(blob) - 8
    return tag, channels, rate, blob[info.data_start : info.data_end]


def by_id(items: list[ItemAudio]) -> dict[str, ItemAudio]:
    return {item.item_id: item for item in items}


# --- item audio -------------------------------------------------------------------------------


def test_pcm16_items_are_byte_exact_both_ways_and_vad_slices_the_input_stream(
    tmp_path: Path,
) -> None:
    chunks = [noise(4800, seed=i) for i in range(20)]  # 20 x 100 ms at 24 kHz
    stream = b"".join(chunks)
    deltas = [noise(2400, seed=100 + i) for i in range(7)]
    events = [
        ga_session(),
        *appends(T0 + 0.1, chunks, 0.1),
        *vad_turn(T0 + 0.5, T0 + 1.7, "item_u1", start_ms=300, end_ms=1500),
        *reply(T0 + 1.8, "item_a1", deltas),
    ]
    parquet, _ = record(tmp_path / "cap", {"sess-1": events})
    out = tmp_path / "out"
    result = export_audio([parquet], out)
    assert result.warnings == []
    session_dir = out / "sess-1"
    assert sorted(p.name for p in session_dir.iterdir()) == [
        "01-user-item_u1.wav",
        "02-assistant-item_a1.wav",
        "session-stereo.wav",
    ]
    assert sorted(result.files) == sorted(session_dir.iterdir())
    # 300 ms..1500 ms of 24 kHz 16-bit audio: bytes 14400..72000 of what was appended
    assert wav_data(session_dir / "01-user-item_u1.wav") == (1, 1, 24000, stream[14400:72000])
    assert wav_data(session_dir / "02-assistant-item_a1.wav") == (1, 1, 24000, b"".join(deltas))
    with wave.open(str(session_dir / "02-assistant-item_a1.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.readframes(w.getnframes()) == b"".join(deltas)
    # personal audio: private directory and files
    assert os.stat(out).st_mode & 0o777 == 0o700
    assert os.stat(session_dir).st_mode & 0o777 == 0o700
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in result.files)
    user, assistant = load_item_audio([parquet])
    assert (user.role, user.index, user.audio_start_ms, user.audio_end_ms) == ("user", 1, 300, 1500)
    assert (assistant.role, assistant.index) == ("assistant", 2)
    assert assistant.format == AudioFormat(PCM16, 24000)
    assert assistant.arrivals[1] == (pytest.approx(T0 + 1.812), 2400)


def beta_formats(name: str) -> dict[str, Any]:
    return {"input_audio_format": name, "output_audio_format": name}


def ga_formats(mime: str) -> dict[str, Any]:
    fmt = {"format": {"type": mime}}
    return {"type": "realtime", "audio": {"input": fmt, "output": fmt}}


@pytest.mark.parametrize(
    ("url", "session", "encoding", "tag"),
    [
        (BETA_URL, beta_formats("g711_ulaw"), ULAW, 7),
        (BETA_URL, beta_formats("g711_alaw"), ALAW, 6),
        (GA_URL, ga_formats("audio/pcmu"), ULAW, 7),
        (GA_URL, ga_formats("audio/pcma"), ALAW, 6),
    ],
    ids=["beta-ulaw", "beta-alaw", "ga-pcmu", "ga-pcma"],
)
def test_g711_items_are_written_as_g711_wav_byte_exact(
    tmp_path: Path, url: str, session: dict[str, Any], encoding: str, tag: int
) -> None:
    chunks = [noise(800, seed=i) for i in range(10)]  # 10 x 100 ms at 8 kHz
    deltas = [noise(801, seed=50), noise(400, seed=51)]  # odd sizes are fine: 1 byte a sample
    events = [
        (T0, "server", {"type": "session.updated", "session": session}),
        *appends(T0 + 0.1, chunks, 0.1),
        *vad_turn(T0 + 0.3, T0 + 1.0, "item_u", start_ms=200, end_ms=900),
        *reply(T0 + 1.2, "item_a", deltas, ga=url == GA_URL),
    ]
    parquet, _ = record(tmp_path / "cap", {"sess-g711": events}, url=url)
    result = export_audio([parquet], tmp_path / "out")
    assert result.warnings == []
    user_wav = tmp_path / "out" / "sess-g71" / "01-user-item_u.wav"
    assert wav_data(user_wav) == (tag, 1, 8000, b"".join(chunks)[1600:7200])
    assistant_wav = tmp_path / "out" / "sess-g71" / "02-assistant-item_a.wav"
    assert wav_data(assistant_wav) == (tag, 1, 8000, b"".join(deltas))
    assert len(assistant_wav.read_bytes()) % 2 == 0  # the RIFF pad byte after 1201 bytes
    user, assistant = load_item_audio([parquet])
    decode = ulaw_decode if encoding == ULAW else alaw_decode
    assert user.format == AudioFormat(encoding, 8000)
    assert assistant.pcm16 == decode(b"".join(deltas))


def test_a_mid_session_format_change_applies_from_the_update_on(tmp_path: Path) -> None:
    pcm = [noise(4800, seed=i) for i in range(10)]  # 1 s of pcm16
    ulaw = [noise(800, seed=20 + i) for i in range(10)]  # then 1 s of µ-law
    update = {"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}
    events = [
        ga_session(),
        *appends(T0 + 0.1, pcm, 0.1),
        *vad_turn(T0 + 0.2, T0 + 0.95, "item_u1", start_ms=100, end_ms=900),
        (T0 + 1.05, "client", update),
        *appends(T0 + 1.1, ulaw, 0.1),
        *vad_turn(T0 + 1.2, T0 + 2.05, "item_u2", start_ms=1200, end_ms=1800),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events}, url=BETA_URL)
    items = by_id(load_item_audio([parquet]))
    assert items["item_u1"].format == AudioFormat(PCM16, 24000)
    assert items["item_u1"].raw == b"".join(pcm)[4800:43200]
    # the audio clock runs on in ms: 1200..1800 ms is 200..800 ms into the µ-law part
    assert items["item_u2"].format == AudioFormat(ULAW, 8000)
    assert items["item_u2"].raw == b"".join(ulaw)[1600:6400]


def test_a_stream_decodes_g711_and_resamples_chunks_at_another_rate_to_its_first(
    tmp_path: Path,
) -> None:
    pcm = [noise(4800, seed=i) for i in range(2)]  # 2 x 100 ms at 24 kHz
    ulaw = [noise(800, seed=20 + i) for i in range(2)]  # 2 x 100 ms at 8 kHz
    update = {"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}
    events = [
        ga_session(),
        *appends(T0 + 0.1, pcm, 0.1),
        (T0 + 0.35, "client", update),
        *appends(T0 + 0.4, ulaw, 0.1),
        *vad_turn(T0 + 0.6, T0 + 0.7, "item_u1", start_ms=0, end_ms=400),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events}, url=BETA_URL)
    (streams,) = session_streams([parquet])
    user = streams.user
    assert user.rate_hz == 24000
    assert user.chunk_start.tolist() == [0, 2400, 4800, 7200]
    assert user.chunk_time_s.tolist() == pytest.approx([T0 + 0.1, T0 + 0.2, T0 + 0.4, T0 + 0.5])
    assert user.chunk_item == ["item_u1"] * 4 and user.chunk_reply == [None] * 4
    decoded = [np.frombuffer(ulaw_decode(c), "<i2") for c in ulaw]
    expected = b"".join(pcm) + b"".join(resample(d, 8000, 24000).tobytes() for d in decoded)
    assert user.samples.tobytes() == expected
    assert len(streams.reply.samples) == 0


def test_streams_of_the_sessions_asked_for_only(tmp_path: Path) -> None:
    sessions: dict[str, Sequence[Event]] = {
        name: [ga_session(), *reply(T0 + 1, f"item_{name}", [noise(960 * (n + 1), n)])]
        for n, name in enumerate(["a", "b", "c"])
    }
    parquet, journal = record(tmp_path / "cap", sessions)
    for path in (parquet, journal):
        found = {s.session_id: s for s in session_streams([path], sessions={"b", "c"})}
        assert sorted(found) == ["b", "c"]
        assert found["c"].reply.samples.tobytes() == noise(960 * 3, 2)
        assert found["c"].reply.chunk_item == ["item_c"]
        assert len(found["b"].user.samples) == 0


def test_manual_commits_take_everything_since_the_last_commit_or_clear(tmp_path: Path) -> None:
    a, b, c, d = (noise(4800, seed=i) for i in range(4))
    events = [
        ga_session(vad=False),
        *appends(T0 + 0.1, [a, b], 0.1),
        (T0 + 0.3, "client", {"type": "input_audio_buffer.commit"}),
        *appends(T0 + 0.31, [c], 0.1),  # sent after the commit, before the server answered
        committed(T0 + 0.35, "item_1"),
        (T0 + 0.4, "client", {"type": "input_audio_buffer.clear"}),
        (T0 + 0.45, "server", {"type": "input_audio_buffer.cleared"}),
        *appends(T0 + 0.5, [d], 0.1),
        (T0 + 0.6, "client", {"type": "input_audio_buffer.commit"}),
        committed(T0 + 0.65, "item_2"),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events})
    items = by_id(load_item_audio([parquet]))
    assert items["item_1"].raw == a + b
    assert items["item_2"].raw == d  # c was cleared
    assert (items["item_1"].audio_start_ms, items["item_1"].played_ms) == (None, None)


def test_vad_audio_clock_skips_cleared_audio(tmp_path: Path) -> None:
    a, b, c = (noise(4800, seed=i) for i in range(3))
    events = [
        ga_session(),
        *appends(T0 + 0.1, [a], 0.1),
        (T0 + 0.2, "client", {"type": "input_audio_buffer.clear"}),
        *appends(T0 + 0.3, [b, c], 0.1),
        *vad_turn(T0 + 0.4, T0 + 0.6, "item_u", start_ms=50, end_ms=150),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events})
    (item,) = load_item_audio([parquet])
    assert item.raw == (b + c)[2400:7200]


def test_qwen_input_is_16_khz_and_output_24_khz(tmp_path: Path) -> None:
    chunks = [noise(3200, seed=i) for i in range(10)]  # 10 x 100 ms at 16 kHz
    deltas = [noise(4800, seed=30)]
    session = {"input_audio_format": "pcm16", "output_audio_format": "pcm24"}
    events = [
        (T0, "server", {"type": "session.updated", "session": session}),
        *appends(T0 + 0.1, chunks, 0.1),
        *vad_turn(T0 + 0.2, T0 + 1.0, "item_u", start_ms=100, end_ms=700),
        *reply(T0 + 1.1, "item_a", deltas, ga=False),
    ]
    parquet, _ = record(tmp_path / "cap", {"qwen-1": events}, url=QWEN_URL)
    capture = load_audio([parquet])
    user, assistant = capture.sessions[0].items
    assert user.format == AudioFormat(PCM16, 16000)
    assert user.raw == b"".join(chunks)[3200:22400]
    assert assistant.format == AudioFormat(PCM16, 24000)
    result = export_audio([parquet], tmp_path / "out")
    assert wav_data(tmp_path / "out" / "qwen-1" / "01-user-item_u.wav")[2] == 16000
    # the stereo mix is 24 kHz: the user's 1 s of 16 kHz input becomes 1 s at 24 kHz
    mix = session_stereo(capture.sessions[0])
    left = mix[round(0.1 * 24000) : round(1.1 * 24000), 0]
    expected = np.frombuffer(resample_pcm16(b"".join(chunks), 16000, 24000), dtype="<i2")
    assert np.array_equal(left, expected)
    assert result.warnings == []


def test_zhipu_wav_payloads_are_unwrapped_and_joined(tmp_path: Path) -> None:
    pcm = [tone(1600, rate=16000, hz=300 + 100 * i) for i in range(3)]
    events = [
        *appends(T0 + 0.1, [wav_bytes(p, 16000) for p in pcm], 0.1),
        (T0 + 0.5, "client", {"type": "input_audio_buffer.commit"}),
        committed(T0 + 0.6, "item_u"),
    ]
    url = "wss://open.bigmodel.cn/api/paas/v4/realtime"
    parquet, _ = record(tmp_path / "cap", {"s": events}, url=url)
    (item,) = load_item_audio([parquet])
    assert (item.format, item.raw) == (AudioFormat(PCM16, 16000), b"".join(pcm))


def test_mp3_replies_are_written_as_mp3_as_is(tmp_path: Path) -> None:
    frames = [b"\xff\xfb\x90\x00" + noise(400, seed=i) for i in range(3)]
    session = {"input_audio_format": "pcm16", "output_audio_format": "mp3"}
    events = [
        (T0, "server", {"type": "session.updated", "session": session}),
        *reply(T0 + 0.1, "item_a", frames, ga=False),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events}, url=BETA_URL)
    result = export_audio([parquet], tmp_path / "out")
    mp3 = tmp_path / "out" / "s" / "01-assistant-item_a.mp3"
    assert mp3.read_bytes() == b"".join(frames)
    assert load_item_audio([parquet])[0].format.encoding == MP3
    assert any("mp3 audio is written as is" in w for w in result.warnings)


def test_an_odd_pcm16_byte_count_is_kept_with_a_warning(tmp_path: Path) -> None:
    deltas = [noise(2400, seed=1), noise(2401, seed=2)]
    parquet, _ = record(tmp_path / "cap", {"s": [ga_session(), *reply(T0 + 0.1, "item_a", deltas)]})
    result = export_audio([parquet], tmp_path / "out")
    assert result.warnings == ["item item_a: 4801 bytes is not a whole number of 16-bit samples."]
    assert wav_data(tmp_path / "out" / "s" / "01-assistant-item_a.wav")[3] == b"".join(deltas)


def test_audio_dropped_at_recording_writes_nothing_and_warns_once(tmp_path: Path) -> None:
    events = [
        ga_session(),
        *appends(T0 + 0.1, [noise(4800, seed=i) for i in range(5)], 0.1),
        *vad_turn(T0 + 0.2, T0 + 0.5, "item_u", start_ms=0, end_ms=400),
        *reply(T0 + 0.6, "item_a", [noise(4800, seed=9)] * 3),
    ]
    parquet, journal = record(tmp_path / "cap", {"sess-drop": events}, keep_audio=False)
    for source in (parquet, journal):
        out = tmp_path / ("out-" + source.suffix[1:])
        result = export_audio([source], out)
        assert result.files == []
        assert result.warnings == [
            "session sess-drop was recorded without audio samples (rt_audio=drop)."
        ]
        assert list(out.iterdir()) == []
    assert load_item_audio([parquet]) == []


def test_a_journal_gives_the_same_audio_as_its_parquet(tmp_path: Path) -> None:
    chunks = [noise(4800, seed=i) for i in range(8)]
    events = [
        ga_session(),
        *appends(T0 + 0.1, chunks, 0.1),
        *vad_turn(T0 + 0.2, T0 + 0.8, "item_u", start_ms=120, end_ms=650),
        *reply(T0 + 0.9, "item_a", [noise(4800, seed=40 + i) for i in range(3)]),
        truncate(T0 + 1.0, "item_a", 120),
    ]
    parquet, journal = record(tmp_path / "cap", {"s1": events, "s2": events[:12]})
    from_parquet = load_audio([parquet])
    from_journal = load_audio([journal])
    assert from_parquet.sessions == from_journal.sessions
    assert [len(s.items) for s in from_parquet.sessions] == [2, 1]
    assert from_parquet.sessions[0].items[1].played_ms == 120


def test_a_capture_rewritten_with_binary_audio_in_small_row_groups_gives_the_same_audio(
    tmp_path: Path,
) -> None:
    """The export reads audio where it lies in the column's buffers (row group by row group):
    a capture rewritten by another tool, with ``binary`` audio (32-bit offsets) instead of
    ``large_binary`` and row groups of 5 rows (each item spread over many), reads the same."""
    chunks = [noise(4800, seed=i) for i in range(8)]
    events = [
        ga_session(),
        *appends(T0 + 0.1, chunks, 0.1),
        *vad_turn(T0 + 0.2, T0 + 0.8, "item_u", start_ms=120, end_ms=650),
        *reply(T0 + 0.9, "item_a", [noise(4800, seed=40 + i) for i in range(3)]),
    ]
    parquet, _ = record(tmp_path / "cap", {"s1": events, "s2": events[:12]})
    table = pq.ParquetFile(parquet).read()
    index = table.schema.get_field_index("audio")
    narrow = table.set_column(index, "audio", table.column("audio").cast(pa.binary()))
    narrow = narrow.replace_schema_metadata({METADATA_KEY: table.schema.metadata[METADATA_KEY]})
    rewritten = tmp_path / "narrow.parquet"
    pq.write_table(narrow, rewritten, row_group_size=5)
    assert pq.read_schema(rewritten).field("audio").type == pa.binary()
    expected = load_audio([parquet]).sessions
    assert [len(s.items) for s in expected] == [2, 1]
    assert load_audio([rewritten]).sessions == expected


# --- the stereo mix ---------------------------------------------------------------------------


def test_stereo_puts_the_user_left_and_the_assistant_right_as_heard(tmp_path: Path) -> None:
    rate = 24000
    user = [tone(2400, hz=300 + 50 * i) for i in range(10)]  # 1 s, live from T0 + 1.0
    deltas = [tone(4800, hz=700 + 50 * i) for i in range(5)]  # 1 s, all arrived at T0 + 3.0
    late = tone(2400, hz=900)  # a second reply: one delta at T0 + 6.0
    events = [
        ga_session(),
        *appends(T0 + 1.0, user, 0.1),
        *vad_turn(T0 + 1.1, T0 + 2.5, "item_u", start_ms=100, end_ms=900),
        *reply(T0 + 2.998, "item_a", deltas, gap_s=0.0),
        truncate(T0 + 3.5, "item_a", 450),
        *reply(T0 + 5.998, "item_b", [late]),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events})
    (session,) = load_audio([parquet]).sessions
    mix = session_stereo(session)
    left, right = mix[:, 0], mix[:, 1]
    user_samples = np.frombuffer(b"".join(user), dtype="<i2")
    assert not left[: rate * 1].any()
    assert np.array_equal(left[rate : 2 * rate], user_samples)
    assert not left[2 * rate :].any()
    # the reply plays from its first delta's arrival, one delta after the other, cut at 450 ms
    heard = np.frombuffer(b"".join(deltas), dtype="<i2")[: round(0.45 * rate)]
    assert not right[: 3 * rate].any()
    assert np.array_equal(right[3 * rate : 3 * rate + len(heard)], heard)
    assert not right[3 * rate + len(heard) : 6 * rate].any()
    assert np.array_equal(right[6 * rate :], np.frombuffer(late, dtype="<i2"))
    # the exported file holds the same samples
    export_audio([parquet], tmp_path / "out")
    with wave.open(str(tmp_path / "out" / "s" / "session-stereo.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, rate)
        assert w.readframes(w.getnframes()) == mix.tobytes()


def test_stereo_never_plays_a_delta_before_the_previous_one_ended(tmp_path: Path) -> None:
    deltas = [tone(2400, hz=500), tone(2400, hz=600), tone(2400, hz=700)]
    # 100 ms deltas arriving at 0, 50 ms and 400 ms after the response started
    events = [ga_session(), *reply(T0 + 1.0, "item_a", [])]
    for offset, delta in zip((0.0, 0.05, 0.4), deltas, strict=True):
        fields = {"item_id": "item_a", "delta": b64(delta)}
        events.append(ev(T0 + 1.0 + offset, "server", "response.output_audio.delta", **fields))
    parquet, _ = record(tmp_path / "cap", {"s": events})
    right = session_stereo(load_audio([parquet]).sessions[0])[:, 1]
    samples = [np.frombuffer(d, dtype="<i2") for d in deltas]
    assert np.array_equal(right[24000:28800], np.concatenate(samples[:2]))  # 2nd waits for 1st
    assert not right[28800:33600].any()  # a stall: the 3rd arrived late
    assert np.array_equal(right[33600:], samples[2])


def test_stereo_mixes_g711_input_with_pcm_output_at_24_khz(tmp_path: Path) -> None:
    ulaw = [noise(800, seed=i) for i in range(5)]
    session = {"input_audio_format": "g711_ulaw", "output_audio_format": "pcm16"}
    events = [
        (T0, "server", {"type": "session.updated", "session": session}),
        *appends(T0 + 0.5, ulaw, 0.1),
    ]
    parquet, _ = record(tmp_path / "cap", {"s": events}, url=BETA_URL)
    mix = session_stereo(load_audio([parquet]).sessions[0])
    decoded = resample_pcm16(ulaw_decode(b"".join(ulaw)), 8000, 24000)
    assert np.array_equal(mix[12000:, 0], np.frombuffer(decoded, dtype="<i2"))


def test_wav_bytes_is_a_wav_file_for_html_players() -> None:
    pcm = tone(480) + tone(480, hz=880)
    with wave.open(io.BytesIO(wav_bytes(pcm, 24000, channels=2))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 24000)
        assert w.readframes(480) == pcm
    assert wav_bytes(b"", 16000)[:4] == b"RIFF"


def test_progress_goes_to_stderr_and_export_of_nothing_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parquet, _ = record(tmp_path / "cap", {"s": [ga_session()]})
    result = export_audio([parquet], tmp_path / "out", progress=True)
    assert (result.files, result.warnings) == ([], [])
    assert capsys.readouterr().out == ""


# --- references: the chunk-by-chunk code the arrays must match to the byte ---------------------


def interp_resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resampling as it has always been defined: np.interp, rounded half to even."""
    samples = np.frombuffer(pcm, dtype="<i2")
    if from_rate == to_rate or not samples.size:
        return pcm
    positions = np.arange(round(samples.size * to_rate / from_rate)) * (from_rate / to_rate)
    values = np.interp(positions, np.arange(samples.size), samples.astype(np.float64))
    return np.clip(np.rint(values), -32768, 32767).astype("<i2").tobytes()


def decode(data: bytes, fmt: AudioFormat) -> bytes:
    if fmt.encoding == ULAW:
        return ulaw_decode(data)
    return alaw_decode(data) if fmt.encoding == ALAW else data


def reference_stereo(session: SessionAudio, rate: int = 24000) -> np.ndarray:
    """The session's stereo mix, one Python step per chunk."""

    def runs(chunks: Iterable[AudioChunk], tolerance_s: float) -> list[list[Any]]:
        placed: list[list[Any]] = []  # [start, format, parts]
        end = 0.0
        for chunk in chunks:
            fmt, data = chunk.format, bytes(chunk.data)
            if fmt.encoding == PCM16 and len(data) % 2:
                data = data[:-1]
            if not data or fmt.encoding not in (PCM16, ULAW, ALAW):
                continue
            arrival = max(0.0, (chunk.time_s - session.start_s) * rate)
            if placed and placed[-1][1] == fmt and arrival <= end + tolerance_s * rate:
                placed[-1][2].append(data)
            else:
                start = max(arrival, end)
                placed.append([round(start), fmt, [data]])
                end = start
            end += len(data) // fmt.bytes_per_sample * rate / fmt.sample_rate
        return placed

    def heard() -> Iterator[AudioChunk]:
        for item in session.items:
            fmt = item.format
            if item.role != "assistant" or fmt.encoding not in (PCM16, ULAW, ALAW):
                continue
            limit = len(item.raw)
            if item.played_ms is not None:
                played = round(item.played_ms * fmt.sample_rate / 1000.0) * fmt.bytes_per_sample
                limit = min(limit, max(0, played))
            ends = [offset for _, offset in item.arrivals[1:]] + [len(item.raw)]
            for (time_s, offset), end in zip(item.arrivals, ends, strict=True):
                if offset >= limit:
                    break
                yield AudioChunk(time_s, fmt, item.raw[offset : min(end, limit)])

    channels = [
        [
            (start, interp_resample(decode(b"".join(parts), fmt), fmt.sample_rate, rate))
            for start, fmt, parts in runs(chunks, tolerance_s)
        ]
        for chunks, tolerance_s in ((session.user_stream, 0.2), (heard(), 0.001))
    ]
    frames = max((s + len(p) // 2 for runs_ in channels for s, p in runs_), default=0)
    mix = np.zeros((frames, 2), dtype="<i2")
    for channel, placed in enumerate(channels):
        for start, pcm in placed:
            mix[start : start + len(pcm) // 2, channel] = np.frombuffer(pcm, dtype="<i2")
    return mix


class ReferenceBuffer:
    """The input audio buffer and items as first written: a Python object a chunk."""

    def __init__(self) -> None:
        self.stream: list[list[Any]] = []  # [start_ms, duration_ms, data, format, time_s]
        self.clock = self.commit_ms = 0.0
        self.manual: list[float] = []
        self.client_clears = 0
        self.vad: dict[str | None, list[float | None]] = {}
        self.user: dict[str, tuple[list[tuple[float, AudioFormat, bytes]], Any]] = {}
        self.assistant: dict[str, list[tuple[float, AudioFormat, bytes]]] = {}
        self.first_seen: dict[str, int] = {}
        self.played: dict[str, float] = {}

    @staticmethod
    def duration(fmt: AudioFormat, size: int) -> float:
        return fmt.duration_ms(size) or 0.0

    @staticmethod
    def byte_at(chunk: list[Any], ms: float) -> int:
        fmt = chunk[3]
        sample = round(ms * fmt.sample_rate / 1000.0)
        return max(0, min(len(chunk[2]), sample * fmt.bytes_per_sample))

    def append(self, time_s: float, fmt: AudioFormat, data: bytes) -> None:
        self.stream.append([self.clock, self.duration(fmt, len(data)), data, fmt, time_s])
        self.clock += self.stream[-1][1]

    def slice(self, start: float, end: float) -> list[tuple[float, AudioFormat, bytes]]:
        pieces = []
        first = max(0, bisect.bisect_right([c[0] for c in self.stream], start) - 1)
        for chunk in self.stream[first:]:
            chunk_end = chunk[0] + chunk[1]
            if chunk[0] >= end:
                break
            if chunk_end <= start:
                continue
            a = self.byte_at(chunk, start - chunk[0]) if start > chunk[0] else 0
            b = self.byte_at(chunk, end - chunk[0]) if end < chunk_end else len(chunk[2])
            if b > a:
                pieces.append((chunk[4], chunk[3], chunk[2][a:b]))
        return pieces

    def clear(self) -> None:
        cut = self.commit_ms
        while self.stream and self.stream[-1][0] >= cut:
            self.stream.pop()
        if self.stream and self.stream[-1][0] + self.stream[-1][1] > cut:
            last = self.stream[-1]
            last[2] = last[2][: self.byte_at(last, cut - last[0])]
            last[1] = self.duration(last[3], len(last[2]))
        self.clock = min(self.clock, cut)

    def commit(self, item_id: str, seq: int) -> None:
        vad = self.vad.pop(item_id, None) if item_id in self.vad else self.vad.pop(None, None)
        self.manual = [m for m in self.manual if m > self.commit_ms]
        if vad is not None and vad[1] is not None:
            start = vad[0] if vad[0] is not None else self.commit_ms
            pieces = self.slice(start, vad[1])
            self.commit_ms = max(self.commit_ms, vad[1])
        else:
            vad = None
            end = self.manual.pop(0) if self.manual else self.clock
            pieces = self.slice(self.commit_ms, end)
            self.commit_ms = end
        self.user[item_id] = (pieces, vad)
        self.first_seen.setdefault(item_id, seq)

    def event(self, seq: int, time_s: float, direction: str, event: dict[str, Any]) -> None:
        kind, item_id = event["type"], str(event.get("item_id"))
        if kind == "input_audio_buffer.commit":
            self.manual.append(self.clock)
        elif kind == "input_audio_buffer.clear":
            self.clear()
            self.client_clears += 1
        elif kind == "conversation.item.truncate":
            self.played[item_id] = float(event["audio_end_ms"])
        elif kind == "input_audio_buffer.committed":
            self.commit(item_id, seq)
        elif kind == "input_audio_buffer.speech_started":
            self.vad[item_id] = [float(event["audio_start_ms"]), None]
        elif kind == "input_audio_buffer.speech_stopped":
            self.vad.setdefault(item_id, [None, None])[1] = float(event["audio_end_ms"])
        elif kind == "input_audio_buffer.cleared":
            if self.client_clears:
                self.client_clears -= 1
            else:
                self.clear()
        elif kind == "conversation.item.added":
            self.first_seen.setdefault(event["item"]["id"], seq)

    def delta(self, seq: int, time_s: float, fmt: AudioFormat, item_id: str, data: bytes) -> None:
        self.assistant.setdefault(item_id, []).append((time_s, fmt, data))
        self.first_seen.setdefault(item_id, seq)

    def items(self) -> list[tuple[str, str, AudioFormat, bytes, list[tuple[float, int]]]]:
        entries = [(self.first_seen[i], i, "user", p) for i, (p, _) in self.user.items()]
        entries += [(self.first_seen[i], i, "assistant", p) for i, p in self.assistant.items()]
        entries.sort(key=lambda e: e[0])
        items = []
        for _, item_id, role, pieces in entries:
            if not pieces:
                continue
            formats = {fmt for _, fmt, _ in pieces}
            if len(formats) == 1:
                fmt, parts = pieces[0][1], [data for _, _, data in pieces]
            else:
                rate = max(f.sample_rate for f in formats)
                fmt = AudioFormat(PCM16, rate)
                parts = [
                    interp_resample(
                        decode(d[: len(d) // 2 * 2] if f.encoding == PCM16 else d, f),
                        f.sample_rate,
                        rate,
                    )
                    for _, f, d in pieces
                ]
            offsets = np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist()
            arrivals = [(t, o) for (t, _, _), o in zip(pieces, offsets, strict=True)]
            items.append((item_id, role, fmt, b"".join(parts), arrivals))
        return items


PCM24 = AudioFormat(PCM16, 24000)
PCMU = AudioFormat(ULAW, 8000)
GA_FORMATS = {PCM24: {"type": "audio/pcm", "rate": 24000}, PCMU: {"type": "audio/pcmu"}}


def random_session(seed: int) -> tuple[list[Event], ReferenceBuffer]:
    """A session of random appends (odd sizes too), VAD turns, manual commits, clears, format
    changes, replies and truncates, and what the reference makes of it, event by event."""
    rng = np.random.default_rng(seed)
    ref = ReferenceBuffer()
    events: list[Event] = []
    t = T0
    fmt_in, fmt_out = (PCM24, PCMU)[seed % 2], (PCMU, PCM24)[seed % 3 == 0]

    def add(direction: str, event: dict[str, Any]) -> None:
        nonlocal t
        t += float(rng.uniform(0.001, 0.3))
        events.append((t, direction, event))
        seq = len(events) - 1
        if event["type"] == "input_audio_buffer.append":
            ref.append(t, fmt_in, base64.b64decode(event["audio"]))
        elif event["type"] == "response.output_audio.delta":
            ref.delta(seq, t, fmt_out, event["item_id"], base64.b64decode(event["delta"]))
        else:
            ref.event(seq, t, direction, event)

    audio = {"input": {"format": GA_FORMATS[fmt_in]}, "output": {"format": GA_FORMATS[fmt_out]}}
    add("server", {"type": "session.created", "session": {"type": "realtime", "audio": audio}})
    for step in range(40):
        item = f"item_{seed}_{step}"
        action = rng.choice(["appends", "appends", "vad", "manual", "clear", "reply", "format"])
        if action == "appends":
            for _ in range(int(rng.integers(1, 8))):
                chunk = noise(int(rng.integers(1, 3000 if fmt_in == PCM24 else 1000)), seed=step)
                add("client", {"type": "input_audio_buffer.append", "audio": b64(chunk)})
        elif action == "vad":
            low = max(0, int(min(ref.commit_ms, ref.clock)) - 100)
            start = int(rng.integers(low, int(ref.clock) + 2))
            end = int(rng.integers(start, int(ref.clock) + 200))
            add("server", _vad("speech_started", item, audio_start_ms=start))
            add("server", _vad("speech_stopped", item, audio_end_ms=end))
            add("server", _vad("committed", item))
            add("server", {"type": "conversation.item.added", "item": message(item, "user")})
        elif action == "manual":
            add("client", {"type": "input_audio_buffer.commit"})
            add("server", _vad("committed", item))
        elif action == "clear":
            if rng.random() < 0.5:
                add("client", {"type": "input_audio_buffer.clear"})
            add("server", {"type": "input_audio_buffer.cleared"})
        elif action == "reply":
            add("server", {"type": "conversation.item.added", "item": message(item, "assistant")})
            for _ in range(int(rng.integers(1, 6))):
                delta = noise(int(rng.integers(1, 4000)), seed=100 + step)
                add(
                    "server",
                    {"type": "response.output_audio.delta", "item_id": item, "delta": b64(delta)},
                )
            if rng.random() < 0.5:
                add("client", truncate(0, item, int(rng.integers(0, 200)))[2])
        else:
            fmt_in = PCMU if fmt_in == PCM24 else PCM24
            session = {"type": "realtime", "audio": {"input": {"format": GA_FORMATS[fmt_in]}}}
            add("client", {"type": "session.update", "session": session})
    return events, ref


def _vad(kind: str, item_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": f"input_audio_buffer.{kind}", "item_id": item_id, **fields}


@pytest.mark.parametrize("seed", range(12))
def test_items_and_mix_equal_the_chunk_by_chunk_reference(tmp_path: Path, seed: int) -> None:
    events, ref = random_session(seed)
    parquet, journal = record(tmp_path / "cap", {f"rand-{seed}": events})
    (session,) = load_audio([parquet]).sessions
    got = [(i.item_id, i.role, i.format, i.raw, i.arrivals) for i in session.items]
    assert got == ref.items()
    for item in session.items:
        assert item.played_ms == (
            ref.played.get(item.item_id) if item.role == "assistant" else None
        )
        vad = ref.user.get(item.item_id, ([], None))[1] if item.role == "user" else None
        assert (item.audio_start_ms, item.audio_end_ms) == (tuple(vad) if vad else (None, None))
    assert np.array_equal(session_stereo(session), reference_stereo(session))
    assert load_audio([journal]).sessions == [session]
    export_audio([parquet], tmp_path / "out")
    mix = tmp_path / "out" / session_dirs([session.session_id])[session.session_id]
    _, channels, _, data = wav_data(mix / "session-stereo.wav")
    assert (channels, data) == (2, reference_stereo(session).tobytes())


SAMPLES = sorted((Path(__file__).parent.parent / "samples").glob("*.parquet"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_mixes_equal_the_reference_and_both_exports_write_the_same(
    tmp_path: Path, sample: Path
) -> None:
    capture = load_audio([sample])
    for session in capture.sessions:
        assert np.array_equal(session_stereo(session), reference_stereo(session))
    read = export_audio([sample], tmp_path / "read")
    loaded = export_capture_audio(capture, tmp_path / "loaded")
    assert read.warnings == loaded.warnings
    assert [p.relative_to(tmp_path / "read") for p in read.files] == [
        p.relative_to(tmp_path / "loaded") for p in loaded.files
    ]
    for path in read.files:
        assert (
            path.read_bytes()
            == (tmp_path / "loaded" / path.relative_to(tmp_path / "read")).read_bytes()
        )


def test_user_stream_is_every_append_as_sent(tmp_path: Path) -> None:
    chunks = [noise(480, seed=i) for i in range(3)] + [noise(481, seed=9)]
    parquet, _ = record(tmp_path / "cap", {"s": [ga_session(), *appends(T0 + 1, chunks, 0.1)]})
    stream = load_audio([parquet]).sessions[0].user_stream
    assert [bytes(c.data) for c in stream] == chunks
    second = stream[1]
    assert (second.time_s, second.format, second.data) == (
        pytest.approx(T0 + 1.1),
        AudioFormat(PCM16, 24000),
        chunks[1],
    )


def test_a_session_without_audio_has_no_items_and_no_files(tmp_path: Path) -> None:
    events = [ga_session(), ev(T0 + 1, "client", "response.create")]
    parquet, _ = record(
        tmp_path / "cap",
        {"quiet": events, "talk": [ga_session(), *reply(T0 + 1, "item_a", [noise(960, 1)])]},
    )
    quiet = next(s for s in load_audio([parquet]).sessions if s.session_id == "quiet")
    assert (quiet.items, list(quiet.user_stream), quiet.warnings) == ([], [], [])
    assert len(session_stereo(quiet)) == 0
    result = export_audio([parquet], tmp_path / "out")
    assert sorted(p.parent.name for p in result.files) == ["talk", "talk"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o277, 0o000])
def test_files_are_private_whatever_the_umask_and_an_export_again_overwrites(
    tmp_path: Path, umask: int
) -> None:
    parquet, _ = record(
        tmp_path / "cap", {"s": [ga_session(), *reply(T0 + 1, "item_a", [noise(960, 1)])]}
    )
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        first = export_audio([parquet], out)
    finally:
        os.umask(old)
    made = [out, *out.rglob("*")]
    assert {p.stat().st_mode & 0o777 for p in made} == {0o700, 0o600}
    exported = {path: path.read_bytes() for path in first.files}
    assert len(exported) >= 2
    for path in made:  # loosened, and a file's content changed: a new export puts both right
        path.chmod(0o755 if path.is_dir() else 0o644)
    # Files are written over in place: one now shorter, one longer than what is exported.
    first.files[0].write_bytes(b"stale")
    with first.files[-1].open("ab") as longer:
        longer.write(b"\xff" * 100_000)
    again = export_audio([parquet], out)
    assert {p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]} == {0o700, 0o600}
    assert again.files == first.files
    assert {path: path.read_bytes() for path in again.files} == exported
    assert wav_data(first.files[0])[3] == noise(960, 1)


def test_a_short_write_goes_on_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.writev

    def at_most_1000(fd: int, buffers: Sequence[Any]) -> int:
        return real(fd, [bytes(memoryview(buffers[0])[:1000])])

    monkeypatch.setattr(os, "writev", at_most_1000)
    deltas = [noise(2401, seed=i) for i in range(3)]
    parquet, _ = record(tmp_path / "cap", {"s": [ga_session(), *reply(T0 + 1, "item_a", deltas)]})
    result = export_audio([parquet], tmp_path / "out")
    assert wav_data(result.files[0])[3] == b"".join(deltas)
    with wave.open(str(result.files[1])) as w:
        assert w.getnframes() > 0
