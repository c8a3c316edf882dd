"""Audio export: item audio byte-exact with the wire, VAD slices, formats, the stereo timeline."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzer.audio import (
    ItemAudio,
    export_audio,
    load_audio,
    load_item_audio,
    parse_wav,
    session_stereo,
    wav_bytes,
)
from analyzer.codecs import alaw_decode, resample_pcm16, ulaw_decode
from analyzer.formats import ALAW, MP3, PCM16, ULAW, AudioFormat
from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts

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
