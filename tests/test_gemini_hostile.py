"""Generated hostile Gemini Live sessions (the corpus is ``tests/corpus/gemini``): JSON-ish client
and server messages with wrong types, missing fields, odd mimeTypes, URL-safe and broken base64,
in text and binary frames, fed through the recorder's frame path and the analyzer. No command
may crash, and every frame is kept exactly as it arrived."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.recording.frames import restore_frame_text
from tests.test_hostile_input import Frame, assert_handled, invoke, record

pytestmark = pytest.mark.timeout(300)

_PCM = st.binary(min_size=0, max_size=64)
_BASE64 = st.one_of(
    _PCM.map(lambda b: base64.b64encode(b).decode()),
    _PCM.map(lambda b: base64.urlsafe_b64encode(b).decode()),  # what the SDK sends
    _PCM.map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),  # no padding
    st.sampled_from(["", "A", "AB=", "====", "-_-_", "A\u00e9B=", "not base64!", "AAAA" * 3 + "*"]),
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
_MIME = st.one_of(
    st.sampled_from(
        [
            "audio/pcm;rate=16000",
            "audio/pcm;rate=24000",
            "audio/pcm;rate=0",
            "audio/pcm;rate=-8000",
            "audio/pcm;rate=abc",
            "audio/pcm;rate=99999999999999999999",
            "audio/pcm;rate=1e400",
            "audio/pcm",
            "audio/PCM; RATE=8000",
            "audio/wav",
            "image/jpeg",
            "",
        ]
    ),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, _JUNK)


@st.composite
def _blob(draw: st.DrawFn, snake: bool) -> Any:
    blob: dict[str, Any] = {}
    if draw(st.booleans()):
        blob["data"] = draw(_BASE64)
    if draw(st.booleans()):
        blob["mime_type" if snake else "mimeType"] = draw(_MIME)
    return draw(st.one_of(st.just(blob), _JUNK))


@st.composite
def _usage(draw: st.DrawFn) -> Any:
    details = st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "modality": _maybe(st.sampled_from(["AUDIO", "TEXT", "VIDEO", "IMAGE"])),
                    "tokenCount": _maybe(st.integers(-5, 10**6)),
                }
            ),
            _JUNK,
        ),
        max_size=3,
    )
    keys = [
        "promptTokenCount",
        "responseTokenCount",
        "totalTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
    ]
    chosen = draw(st.lists(st.sampled_from(keys), max_size=4, unique=True))
    usage: dict[str, Any] = {k: draw(_maybe(st.integers(-5, 10**6))) for k in chosen}
    for name in ("promptTokensDetails", "responseTokensDetails", "cacheTokensDetails"):
        if draw(st.booleans()):
            usage[name] = draw(st.one_of(details, _JUNK))
    return draw(st.one_of(st.just(usage), _JUNK))


@st.composite
def client_message(draw: st.DrawFn) -> dict[str, Any]:
    snake = draw(st.booleans())  # the official client mixes spellings
    kind = draw(st.sampled_from(["setup", "realtime", "content", "tool", "other"]))
    if kind == "setup":
        body: Any = {
            "model": draw(_maybe(st.just("models/gemini-live-2.5-flash-preview"))),
            "generationConfig": draw(_maybe(st.just({"responseModalities": ["AUDIO"]}))),
            "realtimeInputConfig": draw(
                _maybe(st.just({"automatic_activity_detection": {"disabled": True}}))
            ),
            "inputAudioTranscription": draw(_maybe(st.just({}))),
        }
        return {"setup": draw(st.one_of(st.just(body), _JUNK))}
    if kind == "realtime":
        fields = [
            "audio",
            "mediaChunks",
            "media_chunks",
            "activityStart",
            "activityEnd",
            "audioStreamEnd",
            "text",
            "video",
        ]
        body = {}
        for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):
            if name in ("audio", "video"):
                body[name] = draw(_blob(snake))
            elif name in ("mediaChunks", "media_chunks"):
                body[name] = draw(st.one_of(st.lists(_blob(snake), max_size=3), _JUNK))
            else:
                body[name] = draw(st.one_of(st.just({}), _JUNK))
        key = "realtime_input" if snake else "realtimeInput"
        return {key: draw(st.one_of(st.just(body), _JUNK))}
    if kind == "content":
        turns = st.lists(
            st.fixed_dictionaries({"role": _JUNK, "parts": st.lists(_JUNK, max_size=2)}),
            max_size=2,
        )
        return {"clientContent": {"turns": draw(_maybe(turns)), "turnComplete": draw(_JUNK)}}
    if kind == "tool":
        responses = st.lists(
            st.fixed_dictionaries({"id": _JUNK, "name": _JUNK, "response": _JUNK}), max_size=2
        )
        key = "tool_response" if snake else "toolResponse"
        return {key: {"functionResponses": draw(_maybe(responses))}}
    return draw(st.dictionaries(st.text(max_size=6), _JUNK, max_size=2))


@st.composite
def server_message(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["content", "tool", "usage", "setupComplete", "goAway", "voice", "other"])
    )
    message: dict[str, Any] = {}
    if kind == "content":
        content: dict[str, Any] = {}
        fields = [
            "modelTurn",
            "inputTranscription",
            "outputTranscription",
            "interrupted",
            "generationComplete",
            "turnComplete",
            "turnCompleteReason",
            "waitingForInput",
        ]
        for name in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True)):
            if name == "modelTurn":
                part = st.one_of(
                    st.builds(lambda blob: {"inlineData": blob}, _blob(False)),
                    st.builds(lambda text: {"text": text}, _maybe(st.text(max_size=8))),
                    _JUNK,
                )
                parts = st.lists(part, max_size=3)
                content[name] = draw(_maybe(st.builds(lambda p: {"parts": p}, parts)))
            elif name.endswith("Transcription"):
                content[name] = draw(
                    _maybe(
                        st.fixed_dictionaries(
                            {"text": _maybe(st.text(max_size=8)), "finished": _JUNK}
                        )
                    )
                )
            else:
                content[name] = draw(_maybe(st.booleans()))
        message["serverContent"] = draw(st.one_of(st.just(content), _JUNK))
    elif kind == "tool":
        call = st.fixed_dictionaries({"id": _JUNK, "name": _JUNK, "args": _JUNK})
        message["toolCall"] = {"functionCalls": draw(_maybe(st.lists(call, max_size=2)))}
    elif kind == "usage":
        pass  # below
    elif kind == "voice":
        message["voiceActivity"] = {
            "voiceActivityType": draw(_maybe(st.sampled_from(["ACTIVITY_START", "ACTIVITY_END"]))),
            "audioOffset": draw(_JUNK),
        }
    elif kind == "other":
        message.update(draw(st.dictionaries(st.text(max_size=6), _JUNK, max_size=2)))
    else:
        message[kind] = draw(_JUNK)
    if kind == "usage" or draw(st.booleans()):
        message["usageMetadata"] = draw(_usage())
    return message


@st.composite
def gemini_frame(draw: st.DrawFn) -> Frame:
    from_client = draw(st.booleans())
    message = draw(client_message() if from_client else server_message())
    shape = draw(st.sampled_from(["json", "json", "json", "not json", "bad utf-8", "array"]))
    if shape == "json":
        data = json.dumps(message).encode()
    elif shape == "array":
        data = json.dumps([message]).encode()
    elif shape == "not json":
        data = json.dumps(message).encode()[: draw(st.integers(0, 20))]
    else:
        data = b"\xff\xfe" + json.dumps(message).encode()
    is_text = draw(st.booleans())  # the service sends binary; clients send text, or not
    if is_text:
        data = data.decode("utf-8", "replace").encode()  # a text frame is valid UTF-8
    return from_client, is_text, data


def _check_kept(parquet: Path, frames: list[Frame]) -> None:
    rows = sorted(pq.read_table(parquet).to_pylist(), key=lambda r: r["seq"])
    assert len(rows) == len(frames)
    for row, (from_client, is_text, content) in zip(rows, frames, strict=True):
        assert row["direction"] == ("client" if from_client else "server")
        assert row["opcode"] == ("text" if is_text else "binary")
        assert row["frame_bytes"] == len(content)
        if row["binary_content"] is not None:
            assert row["binary_content"] == content
        else:
            text = restore_frame_text(
                row["content"], row["audio_offset"], row["audio"], row.get("audio_cuts")
            )
            assert text.encode() == content


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(gemini_frame(), min_size=1, max_size=25))
def test_generated_gemini_sessions_are_kept_whole_and_never_crash_the_analyzer(
    tmp_path: Path, frames: list[Frame]
) -> None:
    key = abs(hash(tuple(frames)))
    run = record(tmp_path / f"gen-{key}", {"gemini-generated": frames})
    assert run.counts.frames_recorded == len(frames)
    _check_kept(run.parquet_path, frames)
    for command in (["report", "--format", "json"], ["turns"], ["conversation"]):
        for capture in (run.parquet_path, run.journal_path):
            args = [command[0], str(capture), *command[1:]]
            assert_handled(invoke(args), args)
    report = json.loads(invoke(["report", str(run.parquet_path), "--format", "json"]).stdout)
    assert report["sessions"][0]["dialect"] == "gemini"


def test_url_safe_audio_with_a_key_like_run_is_kept_and_decoded() -> None:
    """Audio whose URL-safe base64 holds ``sk-``/``ek_``-like runs is audio, not a secret."""
    from analyzer.recording.frames import build_frame

    pcm = base64.urlsafe_b64decode("sk-_" * 30 + "ek_-" * 30)
    data = base64.urlsafe_b64encode(pcm).decode()
    message = {"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}
    content = json.dumps(message).encode()
    rec = build_frame("gemini-x", 0, 1.0, True, True, content)
    assert rec.audio == pcm and rec.problem is None and rec.content is not None
    assert restore_frame_text(rec.content, rec.audio_offset, rec.audio, rec.audio_cuts) == (
        content.decode()
    )


def test_client_content_turns_of_a_wrong_type_are_recorded(tmp_path: Path) -> None:
    """Found by the property test: ``{"clientContent": {"turns": true}}`` made the Gemini
    adapter raise inside the recorder (iterating a bool), so the frame was not recorded."""
    frames: list[Frame] = [
        (True, False, b'{"clientContent": {"turns": true, "turnComplete": null}}'),
        (True, True, b'{"clientContent": {"turns": {"parts": []}, "turnComplete": true}}'),
    ]
    run = record(tmp_path / "capture", {"gemini-turns": frames})
    _check_kept(run.parquet_path, frames)
    (session,) = json.loads(invoke(["report", str(run.parquet_path), "--format", "json"]).stdout)[
        "sessions"
    ]
    assert [t["trigger"] for t in session["turns"]] == ["response.create"]
