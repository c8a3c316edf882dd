"""Gemini Live in the recorder (endpoints, binary JSON frames, URL-safe audio, secrets) and its
adapter's events."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mitmproxy import flowfilter
from mitmproxy.test import tflow

from analyzer.kinds import Kind
from analyzer.protocols import Frame, adapter_for, decode_session
from analyzer.protocols.gemini_wire import event_type
from analyzer.recording.frames import build_frame, restore_frame_text
from analyzer.recording.options import DEFAULT_FILTER
from analyzer.recording.session import handshake_facts, refine_facts

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
PCM = bytes(range(256)) * 4


def _blob(data: str, rate: int = 24000) -> dict[str, Any]:
    return {"inlineData": {"mimeType": f"audio/pcm;rate={rate}", "data": data}}


@pytest.mark.parametrize(
    ("path", "recorded"),
    [
        (PATH + "?key=k", True),
        ("/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent", True),
        (
            "/ws/google.ai.generativelanguage.v1alpha.GenerativeService."
            "BidiGenerateContentConstrained",
            True,
        ),
        ("/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent", True),
        ("/v1/realtime?model=gpt-realtime", True),
        (PATH + "Stream", False),
        ("/ws/google.ai.generativelanguage.v1beta.GenerativeService.GenerateContent", False),
    ],
)
def test_gemini_endpoints_are_recorded_by_default(path: str, recorded: bool) -> None:
    flow = tflow.twebsocketflow()
    flow.request.path = path
    assert bool(flowfilter.parse(DEFAULT_FILTER)(flow)) is recorded


def test_event_types_name_the_top_level_fields_and_the_news_they_carry() -> None:
    assert event_type({"realtime_input": {"audio": {}}}) == "realtimeInput.audio"
    assert event_type({"realtimeInput": {"activityEnd": {}}}) == "realtimeInput.activityEnd"
    message = {"usageMetadata": {}, "serverContent": {"turnComplete": True, "modelTurn": {}}}
    assert event_type(message) == "serverContent.modelTurn+turnComplete,usageMetadata"
    assert event_type({"goAway": {}, "brandNew": 1}) == "goAway,brandNew"
    assert event_type({"brandNew": 1}) is None  # not a Gemini message
    assert event_type({"type": "session.update", "setup": {}}) is None  # Realtime


def test_binary_json_frame_is_decoded_and_its_audio_cut_out_byte_exact() -> None:
    text = json.dumps({"serverContent": {"modelTurn": {"parts": [_blob(_b64(PCM))]}}})
    rec = build_frame("s", 0, 1.0, False, False, text.encode())
    assert (rec.opcode, rec.event_type, rec.problem) == ("binary", "serverContent.modelTurn", None)
    assert rec.binary_content is None and rec.audio == PCM and rec.audio_bytes == len(PCM)
    assert rec.audio_b64_bytes == len(_b64(PCM))
    assert rec.audio_offset is not None and rec.content is not None
    assert '"data": ""' in rec.content
    assert restore_frame_text(rec.content, rec.audio_offset, rec.audio) == text
    assert rec.journal_content == text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_url_safe_audio_is_decoded_and_never_redacted_into() -> None:
    # URL-safe base64 that reads like an OpenAI key and an ephemeral secret: still audio.
    data = "AAAA-sk-AAAAAAAAAAAAAAAAek_AAAAAAAAAAAA"
    data += "A" * (-len(data) % 4)
    audio = base64.urlsafe_b64decode(data)
    text = json.dumps({"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm"}}})
    rec = build_frame("s", 0, 1.0, True, True, text.encode())
    assert rec.audio == audio and rec.audio_bytes == len(audio) and rec.problem is None
    # Cut out, its alphabet recorded so it is put back byte for byte; never redacted.
    assert rec.content == text.replace(data, "") and rec.journal_content == text
    assert rec.audio_cuts == [
        {"offset": text.index(data), "audio_bytes": len(audio), "urlsafe": True}
    ]
    assert restore_frame_text(rec.content, None, rec.audio, rec.audio_cuts) == text
    dropped = build_frame("s", 0, 1.0, True, True, text.encode(), keep_audio=False)
    assert dropped.audio is None and dropped.audio_bytes == len(audio)
    assert dropped.content == text.replace(data, "")


def test_secrets_around_audio_are_redacted_and_the_audio_is_not() -> None:
    data = base64.urlsafe_b64encode(PCM).decode()
    text = json.dumps(
        {
            "clientContent": {"turns": [{"parts": [{"text": "my key sk-abcdefghijklmnop"}]}]},
            "realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}},
        }
    )
    rec = build_frame("s", 0, 1.0, True, True, text.encode())
    assert rec.content is not None and "sk-abcdefghijklmnop" not in rec.content
    assert rec.journal_content is not None and data in rec.journal_content and rec.audio == PCM
    restored = restore_frame_text(rec.content, rec.audio_offset, rec.audio, rec.audio_cuts)
    assert restored == text.replace("sk-abcdefghijklmnop", "[REDACTED]")


def test_several_audio_blobs_are_each_cut_out_and_all_counted() -> None:
    parts = [_blob(_b64(PCM)), {"text": "hi"}, _blob(_b64(PCM[:300]))]
    text = json.dumps({"serverContent": {"modelTurn": {"parts": parts}}})
    rec = build_frame("s", 0, 1.0, False, False, text.encode())
    assert rec.audio == PCM + PCM[:300] and rec.audio_bytes == len(PCM) + 300
    assert rec.content == text.replace(_b64(PCM), "").replace(_b64(PCM[:300]), "")
    assert rec.audio_cuts is not None
    assert [c["audio_bytes"] for c in rec.audio_cuts] == [len(PCM), 300]
    assert restore_frame_text(rec.content, None, rec.audio, rec.audio_cuts) == text
    dropped = build_frame("s", 0, 1.0, False, False, text.encode(), keep_audio=False)
    assert dropped.audio is None and dropped.audio_bytes == len(PCM) + 300
    assert dropped.content is not None and _b64(PCM[:300]) not in dropped.content


def test_non_gemini_binary_frames_stay_binary() -> None:
    for content in (b'{"type": "x"}', b'{"other": 1}', b"\xff\x00", b"[1]"):
        rec = build_frame("s", 0, 1.0, False, False, content)
        assert rec.binary_content == content and rec.problem == "binary frame"


def test_handshake_secrets_are_redacted_and_the_dialect_is_gemini() -> None:
    url = f"wss://generativelanguage.googleapis.com{PATH}?key=AIzaSECRET1&access_token=ya29SECRET2"
    headers = [("x-goog-api-key", "AIzaSECRET3"), ("Authorization", "Token auth_tokens/SECRET4")]
    facts = handshake_facts("s", "run", url, headers, [], 1.0, True)
    assert "SECRET" not in json.dumps(facts)
    assert facts["dialect"] == "gemini" and facts["path"] == PATH
    setup = json.dumps({"setup": {"model": "models/gemini-live-2.5-flash-preview"}})
    refine_facts(facts, build_frame("s", 0, 1.0, True, True, setup.encode()))
    assert facts["model"] == "models/gemini-live-2.5-flash-preview"
    assert adapter_for(facts).name == "gemini"
    assert adapter_for({"path": "/v1/realtime"}).name == "realtime"


def _session(messages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events of a scripted session, flattened with the seq of their frame."""
    frames = []
    for seq, (direction, message) in enumerate(messages):
        rec = build_frame(
            "s", seq, float(seq), direction == "client", True, json.dumps(message).encode()
        )
        event = json.loads(rec.content or "{}")
        frames.append(
            Frame(
                seq,
                float(seq),
                rec.direction,
                rec.event_type,
                audio_bytes=rec.audio_bytes,
                event=event,
            )
        )
    events = decode_session({"dialect": "gemini"}, frames)
    return [{"seq": seq, **e} for seq, evs in enumerate(events) for e in evs]


def _user_audio(size: int) -> dict[str, Any]:
    data = base64.urlsafe_b64encode(bytes(size)).decode()
    return {"realtime_input": {"audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}}}


def _reply_audio(size: int) -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [_blob(_b64(bytes(size)))]}}}


def test_without_an_end_of_speech_signal_the_input_ends_at_the_reply() -> None:
    events = _session(
        [
            ("client", {"setup": {"model": "m"}}),
            ("client", _user_audio(3200)),  # 100 ms at 16 kHz
            ("client", _user_audio(3200)),
            ("server", {"serverContent": {"inputTranscription": {"text": "Hello"}}}),
            ("server", _reply_audio(4800)),  # 100 ms at 24 kHz
            ("server", {"serverContent": {"outputTranscription": {"text": "Hi!"}}}),
            ("server", {"serverContent": {"turnComplete": True}}),
            (
                "server",
                {
                    "usageMetadata": {
                        "promptTokenCount": 10,
                        "responseTokenCount": 4,
                        "totalTokenCount": 14,
                    }
                },
            ),
        ]
    )
    kinds = [(e["seq"], e["kind"]) for e in events]
    assert kinds == [
        (0, Kind.CONFIG),
        (1, Kind.USER_AUDIO),
        (2, Kind.USER_AUDIO),
        (3, Kind.USER_TRANSCRIPT_DELTA),
        (4, Kind.SPEECH_END),
        (4, Kind.INPUT_COMMITTED),
        (4, Kind.REPLY_START),
        (4, Kind.REPLY_ITEM),
        (4, Kind.REPLY_AUDIO),
        (5, Kind.REPLY_TRANSCRIPT_DELTA),
        (6, Kind.REPLY_TRANSCRIPT),
        (6, Kind.REPLY_END),
        (6, Kind.REPLY_ITEM),
        # The input's transcript is complete at the reply's end (its words may come during the
        # reply), timed at its last delta.
        (6, Kind.USER_TRANSCRIPT),
        (7, Kind.REPLY_END),  # the usage that came after the turn's end
    ]
    by_kind = {e["kind"]: e for e in events}
    assert by_kind[Kind.USER_AUDIO]["audio_ms"] == 100.0
    assert by_kind[Kind.REPLY_AUDIO]["audio_ms"] == 100.0
    assert by_kind[Kind.INPUT_COMMITTED]["audio_ms"] == 200.0
    assert by_kind[Kind.SPEECH_END]["stream_ms"] == 200.0
    assert by_kind[Kind.USER_TRANSCRIPT]["transcript"] == "Hello"
    assert by_kind[Kind.USER_TRANSCRIPT]["at_s"] == 3.0  # the delta's frame
    assert by_kind[Kind.REPLY_TRANSCRIPT]["transcript"] == "Hi!"
    late = events[-1]
    assert (late["reply_id"], late["status"], late["total_tokens"]) == (
        "gemini-reply-1",
        "completed",
        14.0,
    )


def test_voice_activity_and_interruption() -> None:
    events = _session(
        [
            ("server", {"voiceActivity": {"voiceActivityType": "ACTIVITY_START"}}),
            ("client", _user_audio(3200)),
            ("server", {"voiceActivity": {"voiceActivityType": "ACTIVITY_END"}}),
            ("client", _user_audio(3200)),
            ("server", _reply_audio(4800)),
            (
                "server",
                {
                    "serverContent": {"interrupted": True},
                    "usageMetadata": {
                        "promptTokenCount": 5,
                        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 3}],
                    },
                },
            ),
        ]
    )
    ends = [e for e in events if e["kind"] == Kind.SPEECH_END]
    assert [(e["seq"], e["stream_ms"]) for e in ends] == [(2, 100.0)]  # not again at the reply
    (end,) = [e for e in events if e["kind"] == Kind.REPLY_END]
    assert (end["status"], end["reason"]) == ("cancelled", "turn_detected")
    assert (end["input_tokens"], end["output_audio_tokens"]) == (5.0, 3.0)
