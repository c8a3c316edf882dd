"""Frame records, redaction, the journal and its conversion to Parquet."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analyzer.recording.convert import convert_journal, read_journal
from analyzer.recording.frames import build_frame, restore_frame_text
from analyzer.recording.redact import redact_headers, redact_text, redact_url
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts


def test_audio_is_cut_from_content_and_restores_byte_exact() -> None:
    audio = bytes(range(256)) * 10
    text = json.dumps({"type": "response.audio.delta", "delta": base64.b64encode(audio).decode()})
    rec = build_frame("s", 0, 1.0, False, True, text.encode())
    assert rec.audio == audio and rec.audio_bytes == len(audio)
    assert rec.content is not None and len(rec.content) < 100
    assert restore_frame_text(rec.content, rec.audio_offset, rec.audio) == text
    assert rec.journal_content == text


def test_escaped_base64_is_kept_whole_in_content() -> None:
    audio = b"\xff\xfe\xfd" * 50  # base64 with '/' characters
    b64 = base64.b64encode(audio).decode()
    text = '{"type":"input_audio_buffer.append","audio":"' + b64.replace("/", "\\/") + '"}'
    rec = build_frame("s", 0, 1.0, True, True, text.encode())
    assert rec.audio == audio and rec.audio_offset is None and rec.content == text


def test_invalid_base64_audio_is_recorded_with_a_problem() -> None:
    text = '{"type":"input_audio_buffer.append","audio":"not base64!!"}'
    rec = build_frame("s", 0, 1.0, True, True, text.encode())
    assert rec.problem == "audio is not valid base64"
    assert rec.content == text and rec.audio is None


def test_wrong_types_and_non_objects_do_not_raise() -> None:
    cases = {
        b"[1,2]": "JSON is not an object",
        b'{"type": 5}': "JSON has no string 'type'",
        b'{"type":"response.audio.delta","delta":123}': "'delta' is not a base64 string",
        b"\xff\xfe": "text frame is not valid UTF-8",
    }
    for raw, problem in cases.items():
        assert build_frame("s", 0, 1.0, False, True, raw).problem == problem


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.booleans(), st.booleans(), st.booleans())
def test_any_bytes_build_a_record_without_raising(
    raw: bytes, from_client: bool, is_text: bool, keep_audio: bool
) -> None:
    rec = build_frame("s", 1, 2.0, from_client, is_text, raw, keep_audio=keep_audio)
    assert rec.frame_bytes == len(raw)
    json.dumps(rec.journal_line())


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.one_of(st.text(), st.integers(), st.none()), max_size=5
    ),
    st.sampled_from(["input_audio_buffer.append", "response.output_audio.delta", "x"]),
    st.binary(max_size=300),
)
def test_any_event_round_trips_through_the_journal(
    extra: dict[str, object], event_type: str, audio: bytes
) -> None:
    event = {**extra, "type": event_type, "audio": base64.b64encode(audio).decode(), "delta": ""}
    rec = build_frame("s", 0, 1.0, True, True, json.dumps(event).encode())
    if rec.content is not None:
        assert restore_frame_text(rec.content, rec.audio_offset, rec.audio) == rec.journal_content


def test_redaction_of_every_secret_form() -> None:
    headers = redact_headers(
        [
            ("Authorization", "Bearer sk-proj-abcdefghijkl"),
            ("api-key", "azurekey"),
            (
                "Sec-WebSocket-Protocol",
                "realtime, openai-insecure-api-key.sk-abc12345678, openai-beta.realtime-v1",
            ),
            ("X-Other", "fine"),
        ]
    )
    flat = json.dumps(headers)
    assert "sk-proj" not in flat and "azurekey" not in flat and "sk-abc" not in flat
    assert ["X-Other", "fine"] in headers
    assert "openai-beta.realtime-v1" in flat
    url = redact_url(
        "wss://user:pw@api.example.com/v1/realtime?model=m&api-key=K1&apiKey=K2&Authorization=K3"
    )
    assert "K1" not in url and "K2" not in url and "K3" not in url and "pw" not in url
    assert "model=m" in url
    body = (
        '{"type":"session.created","session":'
        '{"client_secret":{"value":"ek_68af0123456789","expires_at":1}}}'
    )
    assert "ek_68af" not in redact_text(body)
    assert "expires_at" in redact_text(body)
    answer = '{"value":"ek_abcdefgh123","expires_at":1}'  # /v1/realtime/client_secrets answer
    assert "ek_abcdefgh123" not in redact_text(answer)


def _record_run(directory: Path) -> RunRecorder:
    run = RunRecorder(directory, run_id="rt-test")
    run.start_session(
        handshake_facts(
            "sess-1", "rt-test", "ws://h/v1/realtime?model=gpt-realtime", [], [], 1.0, True
        )
    )
    audio = b"\x10\x20" * 480
    frames = [
        {"type": "session.created", "session": {"type": "realtime"}},
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()},
        {
            "type": "response.output_audio.delta",
            "item_id": "i",
            "delta": base64.b64encode(audio).decode(),
        },
    ]
    for seq, event in enumerate(frames):
        run.record_frame(
            build_frame("sess-1", seq, 1.0 + seq, seq == 1, True, json.dumps(event).encode())
        )
    return run


def test_convert_rebuilds_the_parquet_the_recorder_wrote(tmp_path: Path) -> None:
    run = _record_run(tmp_path)
    run.close()
    rebuilt, journal = convert_journal(run.journal_path, tmp_path / "rebuilt.parquet")
    original = pq.read_table(run.parquet_path)
    assert pq.read_table(rebuilt).equals(original)
    assert journal.sessions["sess-1"]["dialect"] == "ga"
    assert not journal.torn_last_line


def test_convert_recovers_a_journal_with_a_torn_last_line(tmp_path: Path) -> None:
    run = _record_run(tmp_path)  # never closed: like kill -9
    data = run.journal_path.read_bytes()
    run.journal_path.write_bytes(data + b'{"record":"frame","session_id":"sess-1","se')
    out, journal = convert_journal(run.journal_path)
    assert journal.torn_last_line and journal.bad_lines == []
    table = pq.read_table(out)
    assert table.num_rows == 3
    assert table["audio"].to_pylist()[1] == b"\x10\x20" * 480


def test_lone_surrogate_escapes_are_journaled_and_converted(tmp_path: Path) -> None:
    run = RunRecorder(tmp_path, run_id="rt-odd")
    run.start_session(handshake_facts("s", "rt-odd", "ws://h/v1/realtime", [], [], 1.0, True))
    raw = b'{"type":"x","event_id":"\\ud800","n":NaN}'
    assert run.record_frame(build_frame("s", 0, 1.0, False, True, raw))
    run.close()
    table = pq.read_table(run.parquet_path)
    assert table["event_type"].to_pylist() == ["x"]
    out, journal = convert_journal(run.journal_path, tmp_path / "again.parquet")
    assert journal.frame_count == 1
    assert read_journal(run.journal_path).frames[0].content == raw.decode()
    assert pq.read_table(out)["content"].to_pylist() == [raw.decode()]


def test_a_row_arrow_refuses_costs_only_that_row(tmp_path: Path) -> None:
    from analyzer.recording.writers import FrameBatch

    batch = FrameBatch()
    for seq in range(3):
        batch.append(build_frame("s", seq, 1.0, True, True, b'{"type":"x"}'))
    batch.columns["event_id"][1] = "\ud800"  # what Parquet cannot hold
    table, refused = batch.to_arrow()
    assert refused == 1 and table["seq"].to_pylist() == [0, 2]


def _frame_lines(run: RunRecorder) -> list[int]:
    if not run.journal_path.exists():
        return []
    records = [json.loads(line) for line in run.journal_path.read_bytes().splitlines()]
    return [r["seq"] for r in records if r["record"] == "frame"]


def test_batched_frames_wait_for_flush_and_keep_the_journal_in_order(tmp_path: Path) -> None:
    run = RunRecorder(tmp_path, run_id="rt-batch", batch_frames=True)
    run.start_session(handshake_facts("s", "rt-batch", "ws://h/v1/realtime", [], [], 1.0, True))
    for seq in range(3):
        assert run.record_frame(build_frame("s", seq, 1.0, True, True, b'{"type":"x"}'))
    assert _frame_lines(run) == []  # held: the writer flushes when its input runs dry
    run.flush()
    assert _frame_lines(run) == [0, 1, 2] and run.counts.frames_recorded == 3
    run.record_frame(build_frame("s", 3, 2.0, True, True, b'{"type":"x"}'))
    run.end_session("s", end_s=3.0)  # a session's end is written after its held frames
    kinds = [json.loads(line)["record"] for line in run.journal_path.read_bytes().splitlines()]
    assert kinds == ["session_start", "frame", "frame", "frame", "frame", "session_end"]
    run.close()
    assert pq.read_table(run.parquet_path)["seq"].to_pylist() == [0, 1, 2, 3]


def test_a_batch_cut_short_by_a_full_disk_counts_only_the_lines_lost(tmp_path: Path) -> None:
    run = RunRecorder(tmp_path, run_id="rt-full", batch_frames=True)
    run.start_session(handshake_facts("s", "rt-full", "ws://h/v1/realtime", [], [], 1.0, True))
    for seq in range(4):
        run.record_frame(build_frame("s", seq, 1.0, True, True, b'{"type":"x"}'))
    assert run._journal is not None
    real_write = run._journal.write_lines

    def disk_fills(data: bytes) -> None:  # two and a half lines fit, then ENOSPC
        lines = data.splitlines(keepends=True)
        cut = len(lines[0]) + len(lines[1]) + len(lines[2]) // 2
        real_write(data[:cut])
        exc = OSError(28, "No space left on device")
        exc.bytes_written = cut  # type: ignore[attr-defined]
        raise exc

    run._journal.write_lines = disk_fills  # type: ignore[method-assign]
    run.flush()
    assert (run.counts.frames_recorded, run.counts.frames_not_recorded) == (2, 2)
    assert run.counts.write_errors == 1


_BASE64_LIKE = st.one_of(
    st.binary(max_size=18).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet="ABab09+/=_-. \n\u00e9", max_size=24),
)


@given(_BASE64_LIKE)
@example("AAAA=")  # padding past a whole quantum: the standard library takes it, pybase64 not
@example("AAA")  # too short a last quantum: both refuse it
@settings(max_examples=300, deadline=None)
def test_audio_base64_is_taken_or_refused_as_the_standard_library_would(text: str) -> None:
    """The recorder decodes audio with pybase64 (SIMD); what it accepts, refuses and decodes
    must stay what ``base64.b64decode(validate=True)`` would."""
    event = {"type": "response.output_audio.delta", "response_id": "r", "delta": text}
    frame = build_frame("s", 0, 0.0, False, True, json.dumps(event).encode())
    try:
        expected: bytes | None = base64.b64decode(text, validate=True)
    except ValueError:
        expected = None
    if expected is None:
        assert (frame.problem, frame.audio) == ("audio is not valid base64", None)
    else:
        assert (frame.problem, frame.audio) == (None, expected)
