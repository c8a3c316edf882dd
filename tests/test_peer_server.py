"""The local realtime peer, server and scripted client talking directly (no proxy)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from analyzer.peer.client import ConversationResult, run_conversation
from analyzer.peer.record import Timeline
from analyzer.peer.scenarios import SCENARIOS
from analyzer.peer.server import PeerConfig, RealtimeServer
from analyzer.peer.voices import utterance
from analyzer.protocols.realtime_events import BETA_ONLY_EVENTS, GA_ONLY_EVENTS

pytestmark = pytest.mark.timeout(30)


def converse(config: PeerConfig, **options: Any) -> tuple[ConversationResult, Timeline]:
    async def go() -> tuple[ConversationResult, Timeline]:
        async with RealtimeServer(config) as server:
            result = await run_conversation(server.url, **options)
        return result, server.timeline

    return asyncio.run(go())


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == event_type]


@pytest.fixture(scope="module")
def ga_default() -> tuple[ConversationResult, Timeline]:
    config = PeerConfig(
        first_response_delay_ms=40,
        first_audio_delay_ms=20,
        transcription_delay_ms=20,
        audio_pace=10,
    )
    return converse(config, dialect="ga", scenario="default", speed=10)


def test_ga_default_conversation_has_the_scripted_outcomes(ga_default: Any) -> None:
    result, _ = ga_default
    assert result.errors() == []
    outcomes = [
        (r["status"], (r["status_details"] or {}).get("reason"), r["output"][0]["type"])
        for r in result.responses()
    ]
    assert outcomes == [
        ("cancelled", "turn_detected", "message"),  # the story, interrupted
        ("completed", None, "message"),  # the shorter story
        ("completed", None, "function_call"),  # get_weather
        ("completed", None, "message"),  # the weather, spoken
        ("completed", None, "message"),  # good night
    ]
    assert result.close_code == 1000


def test_ga_uses_only_ga_event_names_and_unique_ids(ga_default: Any) -> None:
    result, _ = ga_default
    events = result.events()
    types = {e["type"] for e in events}
    assert not types & BETA_ONLY_EVENTS
    assert {"response.output_audio.delta", "conversation.item.added", "conversation.item.done"} <= (
        types
    )
    event_ids = [e["event_id"] for e in events]
    assert len(set(event_ids)) == len(event_ids)
    assert all(i.startswith("event_") for i in event_ids)
    assert events[0]["session"]["id"].startswith("sess_")
    assert events[0]["session"]["type"] == "realtime"
    assert all(r["id"].startswith("resp_") for r in result.responses())
    assert all(
        e["item_id"].startswith("item_") for e in of_type(events, "input_audio_buffer.committed")
    )


def test_a_vad_turn_runs_in_protocol_order(ga_default: Any) -> None:
    result, _ = ga_default
    types = result.types()
    item_id = result.turns[1]["item_id"]
    response_id = result.turns[1]["response_ids"][0]
    events = result.events()

    def first(event_type: str, **match: str) -> int:
        return next(
            i
            for i, e in enumerate(events)
            if e["type"] == event_type and all(e.get(k) == v for k, v in match.items())
        )

    order = [
        first("input_audio_buffer.speech_stopped", item_id=item_id),
        first("input_audio_buffer.committed", item_id=item_id),
        next(
            i
            for i, e in enumerate(events)
            if e["type"] == "conversation.item.added" and e["item"]["id"] == item_id
        ),
        next(
            i
            for i, e in enumerate(events)
            if e["type"] == "response.created" and e["response"]["id"] == response_id
        ),
        first("response.output_item.added", response_id=response_id),
        first("response.content_part.added", response_id=response_id),
        first("response.output_audio.delta", response_id=response_id),
        first("response.output_audio.done", response_id=response_id),
        first("response.output_audio_transcript.done", response_id=response_id),
        first("response.content_part.done", response_id=response_id),
        first("response.output_item.done", response_id=response_id),
        next(
            i
            for i, e in enumerate(events)
            if e["type"] == "response.done" and e["response"]["id"] == response_id
        ),
    ]
    assert order == sorted(order), [types[i] for i in order]


def test_vad_audio_clock_matches_the_known_silence_padding(ga_default: Any) -> None:
    result, _ = ga_default
    events = result.events()
    stopped = {
        e["item_id"]: e["audio_end_ms"]
        for e in of_type(events, "input_audio_buffer.speech_stopped")
    }
    started = {
        e["item_id"]: e["audio_start_ms"]
        for e in of_type(events, "input_audio_buffer.speech_started")
    }
    for turn in result.turns:
        # audio_end_ms includes the 200 ms of silence the VAD waited for.
        assert abs(stopped[turn["item_id"]] - (turn["speech_end_ms"] + 200)) <= 20
        # audio_start_ms reaches back prefix_padding_ms, not before the session began.
        assert abs(started[turn["item_id"]] - max(0, turn["speech_start_ms"] - 300)) <= 20


def test_transcripts_are_the_spoken_utterances(ga_default: Any) -> None:
    result, _ = ga_default
    completed = of_type(result.events(), "conversation.item.input_audio_transcription.completed")
    assert [e["transcript"] for e in completed] == [
        utterance(turn.utterance).text for turn in SCENARIOS["default"].turns
    ]
    assert all(e["usage"]["type"] == "tokens" for e in completed)


def test_barge_in_is_cancelled_and_truncated_at_what_was_played(ga_default: Any) -> None:
    result, _ = ga_default
    events = result.events()
    (cut,) = result.truncations
    (truncated,) = of_type(events, "conversation.item.truncated")
    assert truncated["item_id"] == cut["item_id"]
    assert truncated["audio_end_ms"] == cut["audio_end_ms"]
    assert 0 < cut["audio_end_ms"] <= cut["received_ms"]
    cancelled = result.responses()[0]
    assert cancelled["output"][0]["status"] == "incomplete"
    sent = sum(
        len(base64.b64decode(e["delta"]))
        for e in of_type(events, "response.output_audio.delta")
        if e["response_id"] == cancelled["id"]
    )
    assert sent == cut["received_ms"] * 48
    assert sent < len(utterance("reply_story").pcm16)


def test_function_call_round_trip(ga_default: Any) -> None:
    result, _ = ga_default
    events = result.events()
    call = result.responses()[2]["output"][0]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"location": "Paris", "unit": "celsius"}
    deltas = [e["delta"] for e in of_type(events, "response.function_call_arguments.delta")]
    assert "".join(deltas) == call["arguments"]
    (done,) = of_type(events, "response.function_call_arguments.done")
    assert done["call_id"] == call["call_id"]
    sent = result.events("client")
    (output,) = [e for e in sent if e["type"] == "conversation.item.create"]
    assert output["item"]["call_id"] == call["call_id"]
    spoken = result.responses()[3]["output"][0]["content"][0]
    assert spoken == {"type": "output_audio", "transcript": utterance("reply_weather").text}


def test_usage_recounts_the_conversation(ga_default: Any) -> None:
    result, _ = ga_default
    usages = [r["usage"] for r in result.responses()]
    for u in usages:
        assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
        details = u["input_token_details"]
        assert u["input_tokens"] == details["text_tokens"] + details["audio_tokens"]
        out = u["output_token_details"]
        assert u["output_tokens"] == out["text_tokens"] + out["audio_tokens"]
    inputs = [u["input_tokens"] for u in usages]
    assert inputs == sorted(inputs) and inputs[0] < inputs[-1]


def test_server_record_matches_what_the_client_saw(ga_default: Any) -> None:
    result, timeline = ga_default
    (session,) = {f["session"] for f in timeline.frames()}
    assert session == result.session_id
    server_view = [(f["direction"], f["text"]) for f in timeline.frames()]
    client_view = [(f["direction"], f["text"]) for f in result.frames]
    assert sorted(server_view) == sorted(client_view)
    for direction in ("client", "server"):
        assert [t for d, t in server_view if d == direction] == [
            t for d, t in client_view if d == direction
        ]
    turns = timeline.turns()
    assert [t["status"] for t in turns] == [r["status"] for r in result.responses()]
    for turn in turns:
        assert turn["trigger_at_s"] <= turn["response_created_at_s"] <= turn["response_done_at_s"]
        if turn["first_audio_at_s"]:
            assert turn["response_created_at_s"] < turn["first_audio_at_s"]
        # The configured first_response_delay_ms (40 ms) is the floor of that latency.
        assert turn["response_created_at_s"] - turn["trigger_at_s"] >= 0.035
    assert turns[0]["utterance"] == "user_story" and turns[0]["reason"] == "turn_detected"


def test_beta_default_conversation_uses_beta_shapes(
    fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    result, _ = converse(fast_peer_config, dialect="beta", scenario="default", speed=fast_speed)
    events = result.events()
    types = {e["type"] for e in events}
    assert result.errors() == []
    assert not types & GA_ONLY_EVENTS
    assert {
        "response.audio.delta",
        "response.audio_transcript.delta",
        "conversation.item.created",
    } <= types
    session = of_type(events, "session.updated")[0]["session"]
    assert session["input_audio_format"] == "pcm16"
    assert session["input_audio_transcription"] == {"model": "whisper-1"}
    assert session["turn_detection"]["silence_duration_ms"] == 200
    assert [r["status"] for r in result.responses()] == ["cancelled"] + ["completed"] * 4
    assert (
        "usage" not in of_type(events, "conversation.item.input_audio_transcription.completed")[0]
    )


def test_manual_commit_scenario(fast_peer_config: PeerConfig, fast_speed: float) -> None:
    result, timeline = converse(fast_peer_config, dialect="ga", scenario="manual", speed=fast_speed)
    types = result.types()
    assert result.errors() == []
    assert "input_audio_buffer.speech_started" not in types
    assert result.types("client").count("input_audio_buffer.commit") == 4
    assert (
        of_type(result.events(), "session.updated")[0]["session"]["audio"]["input"][
            "turn_detection"
        ]
        is None
    )
    first = result.responses()[0]
    assert first["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert "conversation.item.truncated" in types
    assert [t["trigger"] for t in timeline.turns()][:2] == ["response.create", "response.create"]
    assert timeline.turns()[1]["utterance"] == "user_shorter"


@pytest.mark.parametrize(
    ("scenario", "ga_type"), [("g711", "audio/pcmu"), ("g711_alaw", "audio/pcma")]
)
def test_g711_in_both_directions(
    scenario: str, ga_type: str, fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    result, _ = converse(fast_peer_config, dialect="ga", scenario=scenario, speed=fast_speed)
    events = result.events()
    assert result.errors() == []
    audio = of_type(events, "session.updated")[0]["session"]["audio"]
    assert audio["input"]["format"] == {"type": ga_type}
    assert audio["output"]["format"] == {"type": ga_type}
    sizes = {
        len(base64.b64decode(e["delta"])) for e in of_type(events, "response.output_audio.delta")
    }
    assert max(sizes) == 800  # 100 ms at 8 kHz, one byte a sample
    appends = [e for e in result.events("client") if e["type"] == "input_audio_buffer.append"]
    assert {len(base64.b64decode(e["audio"])) for e in appends} == {160}  # 20 ms
    stopped = of_type(events, "input_audio_buffer.speech_stopped")
    for turn, event in zip(result.turns, stopped, strict=True):
        assert abs(event["audio_end_ms"] - (turn["speech_end_ms"] + 200)) <= 20
    transcripts = of_type(events, "conversation.item.input_audio_transcription.completed")
    assert transcripts[2]["transcript"] == utterance("user_weather").text


def test_text_only_responses(fast_peer_config: PeerConfig, fast_speed: float) -> None:
    result, _ = converse(fast_peer_config, dialect="beta", scenario="text", speed=fast_speed)
    types = result.types()
    assert "response.text.delta" in types and "response.audio.delta" not in types
    text = result.responses()[1]["output"][0]["content"][0]
    assert text == {"type": "text", "text": utterance("reply_weather").text}


async def exchange(
    server: RealtimeServer, frames: list[str | dict[str, Any]], headers: dict[str, str]
) -> list[dict[str, Any]]:
    """Send each frame and collect the one event it provokes."""
    async with connect(server.url + "?model=test", additional_headers=headers, proxy=None) as ws:
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
        for frame in frames:
            await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        return replies


def test_bad_events_get_errors_and_the_connection_stays_open() -> None:
    async def go() -> list[dict[str, Any]]:
        async with RealtimeServer() as server:
            return await exchange(
                server,
                [
                    "this is not json",
                    {"type": "no.such.event"},
                    {"type": "response.cancel"},
                    {"type": "input_audio_buffer.commit"},
                    {"type": "input_audio_buffer.append", "audio": "%%%"},
                    {"type": "session.update", "session": {"instructions": "x"}},
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": "hi"},
                    },
                ],
                {"Authorization": "Bearer sk-test-x"},
            )

    replies = asyncio.run(go())
    assert [r["type"] for r in replies] == ["session.created"] + ["error"] * 6 + ["session.updated"]
    errors = [r["error"] for r in replies[1:7]]
    assert all(e["type"] == "invalid_request_error" for e in errors)
    assert [e["code"] for e in errors] == [
        "invalid_json",
        "invalid_value",
        "response_cancel_not_active",
        "input_audio_buffer_commit_empty",
        "invalid_value",
        "invalid_value",
    ]
    assert errors[5]["param"] == "session.type"
    assert replies[-1]["session"]["instructions"] == "hi"


def test_session_update_is_reflected_in_both_dialects() -> None:
    ga_update = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": None,
                    "transcription": {"model": "whisper-1"},
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": "verse"},
            },
        },
    }
    beta_update = {
        "type": "session.update",
        "session": {
            "input_audio_format": "g711_alaw",
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
            "voice": "echo",
            "tools": [{"type": "function", "name": "get_weather"}],
        },
    }

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with RealtimeServer() as server:
            ga = await exchange(server, [ga_update], {})
            beta = await exchange(server, [beta_update], {"OpenAI-Beta": "realtime=v1"})
        return ga, beta

    ga, beta = asyncio.run(go())
    session = ga[1]["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"] == {
        "format": {"type": "audio/pcmu"},
        "transcription": {"model": "whisper-1"},
        "noise_reduction": None,
        "turn_detection": None,
    }
    assert session["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert session["audio"]["output"]["voice"] == "verse"
    assert beta[0]["session"]["model"] == "test"
    session = beta[1]["session"]
    assert session["input_audio_format"] == "g711_alaw"
    assert session["output_audio_format"] == "pcm16"
    assert session["turn_detection"]["silence_duration_ms"] == 500
    assert session["turn_detection"]["prefix_padding_ms"] == 300
    assert session["voice"] == "echo"
    assert session["tools"][0]["name"] == "get_weather"


def test_only_realtime_paths_are_served() -> None:
    async def go() -> None:
        async with RealtimeServer() as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{server.port}/v1/chat", proxy=None):
                    pass
            assert info.value.response.status_code == 404

    asyncio.run(go())


def test_keys_in_subprotocol_and_query_are_accepted_and_never_recorded(
    fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    key = "sk-test-secret-do-not-record"
    result, timeline = converse(
        fast_peer_config,
        dialect="beta",
        scenario=SCENARIOS["text"],
        speed=fast_speed,
        api_key=key,
        key_in_subprotocol=True,
        key_in_query=True,
    )
    assert result.errors() == []
    assert result.events()[0]["session"]["object"] == "realtime.session"
    assert key not in json.dumps(timeline.records)


def test_transcription_session_streams_deltas_then_the_transcript_and_never_replies(
    fast_peer_config: PeerConfig, fast_speed: float
) -> None:
    result, timeline = converse(
        fast_peer_config, dialect="ga", scenario="transcription", speed=fast_speed
    )
    assert result.errors() == []
    events = result.events()
    assert events[0]["session"]["type"] == "transcription"
    assert not any(t.startswith("response.") for t in result.types())
    records = timeline.transcriptions()
    assert [r["transcript"] for r in records] == [
        utterance(name).text for name in ("user_story", "user_weather", "user_thanks")
    ]
    for record in records:
        item = [e for e in events if e.get("item_id") == record["item_id"]]
        types = [e["type"] for e in item]
        deltas = [e for e in item if e["type"].endswith("transcription.delta")]
        # committed, the item, its deltas (two words each), then the transcript
        assert types[-1] == "conversation.item.input_audio_transcription.completed"
        assert "".join(d["delta"] for d in deltas) == record["transcript"]
        assert (
            len(deltas) == len(record["delta_at_s"]) == -(-len(record["transcript"].split()) // 2)
        )
        completed = item[-1]
        assert completed["usage"] == record["usage"] and completed["usage"]["type"] == "tokens"
        # logprobs were asked for: one per word, in the deltas and again in the transcript
        assert [p for d in deltas for p in d["logprobs"]] == completed["logprobs"]
        assert len(completed["logprobs"]) == len(record["transcript"].split())
        assert record["first_delta_at_s"] < record["completed_at_s"]


def test_transcription_sessions_refuse_replies_and_a_change_of_type() -> None:
    async def go() -> list[dict[str, Any]]:
        async with RealtimeServer(PeerConfig()) as server:
            url = server.url + "?intent=transcription"
            async with connect(url) as ws:
                await ws.recv()  # session.created
                await ws.send(json.dumps({"type": "response.create"}))
                await ws.send(
                    json.dumps({"type": "session.update", "session": {"type": "realtime"}})
                )
                return [json.loads(await ws.recv()) for _ in range(2)]

    refused, wrong_type = asyncio.run(go())
    assert refused["error"]["code"] == "unsupported_event"
    assert wrong_type["error"]["param"] == "session.type"


def test_whisper_sends_the_whole_transcript_in_one_delta_with_duration_usage() -> None:
    from analyzer.peer.conversation import transcription_usage
    from analyzer.peer.transcriber import transcript_deltas

    assert transcript_deltas("Thanks, that's all.", "whisper-1") == ["Thanks, that's all."]
    assert transcript_deltas("Thanks, that's all.", "gpt-4o-transcribe") == [
        "Thanks, that's",
        " all.",
    ]
    assert transcription_usage("gpt-realtime-whisper", 1500, "x") == {
        "type": "duration",
        "seconds": 1.5,
    }
