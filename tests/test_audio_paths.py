"""Audio paths: the declaration syntax, the Realtime adapter's declaration against the official
SDK, and cutting audio out of frames with several fields, nested lists, URL-safe base64 and
secrets around it, rebuilt byte for byte (issue 20)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.protocols import adapter_for
from analyzer.protocols.audio_paths import EVERY, AudioPaths, declare, parse_path
from analyzer.protocols.realtime import AUDIO_PATHS
from analyzer.recording.convert import convert_journal
from analyzer.recording.frames import FrameRecord, build_frame, restore_frame_text
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from tests.audio_fields import SDK_PATHS_FILE

GA_URL = "wss://api.openai.com/v1/realtime?model=gpt-realtime"


def test_the_realtime_adapter_declares_exactly_the_audio_fields_of_the_sdk_types() -> None:
    sdk = json.loads(SDK_PATHS_FILE.read_text(encoding="utf-8"))
    declared = {t: sorted(p.text for p in paths) for t, paths in AUDIO_PATHS.items()}
    assert declared == sdk["audio_paths"]
    assert len(declared) == 17 and sdk["sdk"] == "openai 3.60.0"


def test_the_adapter_contract_gives_the_paths_of_an_event_type_and_none_elsewhere() -> None:
    adapter = adapter_for({"path": "/v1/realtime"})
    assert [p.text for p in adapter.audio_paths("conversation.item.retrieved")] == [
        "item.content[*].audio?"
    ]
    assert adapter.audio_paths("response.output_audio_transcript.delta") == ()


def test_a_path_parses_into_keys_and_list_steps() -> None:
    path = parse_path("serverContent.modelTurn.parts[*].inlineData.data")
    assert path.steps == ("serverContent", "modelTurn", "parts", EVERY, "inlineData", "data")
    assert (path.key, path.optional, path.streamed) == ("data", False, None)
    nested = parse_path("a[*][*].b?", urlsafe=True)
    assert (nested.steps, nested.optional, nested.urlsafe) == (("a", EVERY, EVERY, "b"), True, True)
    assert parse_path("delta").streamed == "delta"
    assert parse_path("delta?").streamed is None  # the fast way is for required fields


@pytest.mark.parametrize("bad", ["", "a..b", "a[0].b", "a[*]", "a.b[*]", "a[*b", "a?.b"])
def test_a_malformed_path_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="bad audio path"):
        parse_path(bad)


def b64(data: bytes, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


def frame(text: str, keep: bool = True, paths: AudioPaths | None = None) -> FrameRecord:
    lookup = None if paths is None else (lambda _type: paths)
    return build_frame("s", 0, 1.0, False, True, text.encode(), keep, lookup)


def restored(rec: FrameRecord) -> str:
    assert rec.content is not None
    return restore_frame_text(rec.content, rec.audio_offset, rec.audio, rec.audio_cuts)


def item_event(*parts: dict[str, Any]) -> dict[str, Any]:
    item = {"id": "item_1", "type": "message", "role": "user", "content": list(parts)}
    return {"type": "conversation.item.retrieved", "event_id": "event_1", "item": item}


A, B = bytes(range(40, 100)), bytes(range(150, 190))


def test_several_audio_fields_are_cut_counted_and_rebuilt_byte_for_byte() -> None:
    # The same audio twice, a field with unused bits set (not canonical: left in the text),
    # an empty one, a null one and one that is not base64 (both no audio).
    odd = b64(b"\x00\x01")[:-2] + "F="  # "AAF=": decodes to 00 01, encodes back to "AAE="
    parts: list[dict[str, Any]] = [
        {"type": "input_audio", "audio": b64(A), "transcript": "one"},
        {"type": "input_audio", "audio": odd},
        {"type": "input_audio", "audio": b64(B)},
        {"type": "input_audio", "audio": ""},
        {"type": "input_audio", "audio": None},
        {"type": "input_audio", "audio": b64(A)},
        {"type": "input_audio", "audio": "not base64!"},
    ]
    text = json.dumps(item_event(*parts))
    rec = frame(text)
    assert restored(rec) == rec.journal_content == text
    assert rec.audio == A + b"\x00\x01" + B + A
    assert rec.audio_offset is None and rec.audio_cuts is not None
    assert [c["audio_bytes"] for c in rec.audio_cuts] == [len(A), 2, len(B), 0, len(A)]
    assert [c["offset"] is None for c in rec.audio_cuts] == [False, True, False, True, False]
    assert rec.audio_bytes == 2 * len(A) + len(B) + 2
    # every string where audio sits counts as audio text, base64 or not (as it always has)
    assert rec.audio_b64_bytes == sum(len(p["audio"] or "") for p in parts) == 231
    assert rec.problem == "audio is not valid base64"
    assert b64(A) not in (rec.content or "") and odd in (rec.content or "")
    dropped = frame(text, keep=False)
    assert dropped.audio is None and dropped.audio_cuts is None
    assert json.loads(dropped.content or "") == item_event(
        *[dict(p, audio="" if p["audio"] is not None else None) for p in parts]
    )
    assert (dropped.audio_bytes, dropped.audio_b64_bytes) == (rec.audio_bytes, rec.audio_b64_bytes)


def test_frames_with_several_fields_read_back_from_parquet_and_convert_the_same(
    tmp_path: Path,
) -> None:
    texts = [
        json.dumps(item_event({"audio": b64(A)}, {"audio": b64(B)})),
        json.dumps({"type": "response.output_audio.delta", "delta": b64(B)}),
        json.dumps(
            {
                "type": "response.done",
                "response": {
                    "id": "r",
                    "output": [
                        {"content": [{"audio": b64(B), "transcript": "x sk-abcdefghijkl"}]},
                        {"content": [{"audio": b64(A)}]},
                    ],
                },
            }
        ),
    ]
    for keep in (True, False):
        run = RunRecorder(tmp_path / str(keep), run_id="rt-cuts")
        run.start_session(handshake_facts("s", "rt-cuts", GA_URL, [], [], 1.0, keep))
        for seq, text in enumerate(texts):
            rec = build_frame(
                "s", seq, 1.0 + seq, False, True, text.encode(), keep, run.audio_paths("s")
            )
            run.record_frame(rec)
        run.close()
        converted, _ = convert_journal(run.journal_path, tmp_path / f"converted-{keep}.parquet")
        recorded = pq.read_table(run.parquet_path).to_pylist()
        assert pq.read_table(converted).to_pylist() == recorded
        sizes = [(r["audio_bytes"], r["audio_b64_bytes"]) for r in recorded]
        assert sizes == [(100, 136), (40, 56), (100, 136)]
        rebuilt = [
            restore_frame_text(r["content"], r["audio_offset"], r["audio"], r["audio_cuts"])
            for r in recorded
        ]
        redacted = texts[2].replace("sk-abcdefghijkl", "[REDACTED]")
        if keep:
            assert rebuilt == [texts[0], texts[1], redacted]
            assert [r["audio"] for r in recorded] == [A + B, B, B + A]
        else:
            assert all(r["audio"] is None for r in recorded)
            assert b64(A) not in "".join(rebuilt) and b64(B) not in "".join(rebuilt)


def test_audio_under_a_key_of_the_same_name_outside_the_paths_is_not_what_is_cut() -> None:
    # A client echoing the same samples elsewhere, first: the field at the path is the one
    # cut (dropped, the event is written again: no sample where the protocol carries audio).
    text = json.dumps(
        {"type": "input_audio_buffer.append", "x": {"audio": b64(A)}, "audio": b64(A)}
    )
    kept = frame(text)
    assert restored(kept) == text and kept.audio == A
    dropped = frame(text, keep=False)
    assert json.loads(dropped.content or "")["audio"] == ""


def test_audio_written_with_json_escapes_is_still_dropped_and_counted() -> None:
    escaped = json.dumps(item_event({"audio": b64(b"\xff\xff\xff" * 20)}, {"audio": b64(A)}))
    escaped = escaped.replace("/", "\\/")  # what PHP's json_encode writes
    kept = frame(escaped)
    assert kept.content == escaped and kept.audio == b"\xff\xff\xff" * 20 + A
    dropped = frame(escaped, keep=False)
    assert "////" not in (dropped.content or "") and b64(A) not in (dropped.content or "")
    assert dropped.audio_bytes == 60 + len(A)


def test_a_required_audio_field_that_is_missing_is_a_problem_an_optional_one_is_not() -> None:
    assert frame('{"type":"input_audio_buffer.append"}').problem == "'audio' is not a base64 string"
    assert frame(json.dumps(item_event({"audio": None}))).problem is None
    bad = frame(json.dumps(item_event({"audio": 5})))
    assert bad.problem == "'item.content[*].audio' is not a base64 string"


# --- a protocol with nested lists and URL-safe base64 (Gemini-shaped) ------------------------

GEMINI_LIKE = declare(
    {
        "serverContent": ["serverContent.modelTurn.parts[*].inlineData.data?"],
        "realtimeInput": ["realtimeInput.mediaChunks[*].data?", "realtimeInput.audio.data?"],
    },
    urlsafe=True,
)
# URL-safe base64 whose text holds what looks like secrets: redaction must not touch it.
TRICKY = base64.urlsafe_b64decode("AAAA-sk-abcdefghijkl-ek_abcdefghijkl__-_")


def gemini_frame(event: dict[str, Any], keep: bool = True) -> FrameRecord:
    paths = GEMINI_LIKE[next(k for k in event if k != "type")]
    return frame(json.dumps(event), keep, paths)


def test_url_safe_audio_in_nested_lists_is_rebuilt_and_never_redacted() -> None:
    parts = [
        {"inlineData": {"mimeType": "audio/pcm", "data": b64(TRICKY, urlsafe=True)}},
        {"text": "my key is sk-realsecret12345"},
        {"inlineData": {"data": b64(A)}},
    ]
    event = {"type": "serverContent", "serverContent": {"modelTurn": {"parts": parts}}}
    text = json.dumps(event)
    rec = gemini_frame(event)
    assert rec.audio == TRICKY + A and rec.audio_cuts is not None
    assert [(c["audio_bytes"], c["urlsafe"]) for c in rec.audio_cuts] == [
        (len(TRICKY), True),
        (len(A), False),
    ]
    assert restored(rec) == rec.journal_content == text.replace("sk-realsecret12345", "[REDACTED]")
    dropped = gemini_frame(event, keep=False)
    assert "sk-abcdefghijkl" not in (dropped.content or "") and dropped.audio_bytes == len(
        TRICKY
    ) + len(A)


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(st.tuples(st.binary(max_size=64), st.booleans()), min_size=1, max_size=4),
    audio=st.one_of(st.none(), st.tuples(st.binary(max_size=64), st.booleans())),
    keep=st.booleans(),
)
def test_generated_url_safe_frames_are_rebuilt_exactly_or_hold_no_audio(
    chunks: list[tuple[bytes, bool]], audio: tuple[bytes, bool] | None, keep: bool
) -> None:
    realtime_input: dict[str, Any] = {
        "mediaChunks": [{"mimeType": "audio/pcm", "data": b64(d, u)} for d, u in chunks]
    }
    if audio is not None:
        realtime_input["audio"] = {"data": b64(*audio)}
    event = {"type": "realtimeInput", "realtimeInput": realtime_input}
    rec = gemini_frame(event, keep)
    every = [d for d, _ in chunks] + ([] if audio is None else [audio[0]])
    assert rec.audio_bytes == sum(map(len, every))
    if keep:
        assert restored(rec) == json.dumps(event) and rec.audio == b"".join(every)
    else:
        assert rec.audio is None
        emptied = json.loads(rec.content or "")["realtimeInput"]
        assert [c["data"] for c in emptied["mediaChunks"]] == [""] * len(chunks)
