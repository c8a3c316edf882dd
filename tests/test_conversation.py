"""Conversation: item order from the previous_item_id chain, transcripts, errors, unknowns."""

from __future__ import annotations

from pathlib import Path

from analyzer.conversation import ITEM_COLUMNS, Conversation, build_conversation
from analyzer.reader import read_capture
from tests.capture_factory import (
    T0,
    Event,
    ga_response,
    ga_session_created,
    seed_capture,
    write_capture,
)
from tests.test_turns import function_call_session, ga_barge_in_session


def conversation_of(path: Path) -> Conversation:
    return build_conversation(read_capture(path).frames)


def test_seed_items_are_the_user_question_and_the_story(tmp_path: Path) -> None:
    conv = conversation_of(seed_capture(tmp_path))
    items = conv.items
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert items["role"].tolist() == ["user", "assistant"]
    assert items["kind"].tolist() == ["message", "message"]
    assert items["status"].tolist() == ["completed", "completed"]
    assert items["transcript"].iloc[0] == "讲一个睡前故事\n"
    assert items["transcript"].iloc[1].startswith("从前在一片茂密的森林里")
    assert items["transcript"].iloc[1].endswith("成为了森林里最快乐的小熊。")
    assert items["previous_item_id"].iloc[1] == items["item_id"].iloc[0]
    assert items["response_id"].iloc[1] == "resp_AhALPLU73xVy9fw5b0EZ7"
    assert conv.errors.empty and conv.unknown_events == {} and conv.problems == {}


def test_items_follow_the_chain_not_arrival_order(tmp_path: Path) -> None:
    def added(t: float, item_id: str, previous: str | None) -> Event:
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": item_id.upper()}],
        }
        return (
            t,
            "server",
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item},
        )

    events = [
        ga_session_created(T0),
        added(T0 + 1, "a", None),
        added(T0 + 2, "b", "a"),
        added(T0 + 3, "c", "a"),  # inserted between a and b
        added(T0 + 4, "d", "zzz"),  # unknown previous item: arrival order
    ]
    items = conversation_of(write_capture(tmp_path, events)).items
    assert items["item_id"].tolist() == ["a", "c", "b", "d"]
    assert items["position"].tolist() == [1, 2, 3, 4]
    assert items["text"].tolist() == ["A", "C", "B", "D"]


def test_barge_in_truncation_and_delta_transcripts(tmp_path: Path) -> None:
    items = conversation_of(write_capture(tmp_path, ga_barge_in_session())).items
    assert items["item_id"].tolist() == ["u1", "a1", "u2", "a2", "u3", "a3"]
    by_id = items.set_index("item_id")
    assert bool(by_id.at["a2", "truncated"]) and by_id.at["a2", "truncated_audio_end_ms"] == 150
    assert by_id.at["a2", "transcript"] == "Sure let me"
    assert not by_id.at["a1", "truncated"]
    assert by_id.at["u3", "transcript"] == "stop"
    # response.done has the last word on the status of its output items
    assert by_id.at["a1", "status"] == "completed" and by_id.at["a2", "status"] == "incomplete"


def test_function_calls_and_outputs_are_items(tmp_path: Path) -> None:
    items = conversation_of(write_capture(tmp_path, function_call_session())).items
    assert items["kind"].tolist() == ["message", "function_call", "function_call_output", "message"]
    call = items.iloc[1]
    assert (call["name"], call["call_id"], call["arguments"]) == (
        "get_weather",
        "c1",
        '{"city": "Paris"}',
    )
    assert items.iloc[2]["output"] == "20C"


def test_errors_unknown_events_and_problem_frames_are_reported(tmp_path: Path) -> None:
    events: list[Event] = [
        ga_session_created(T0),
        (
            T0 + 1,
            "server",
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "bad_value",
                    "message": "nope",
                    "param": "session.voice",
                    "event_id": "evt_1",
                },
            },
        ),
        (T0 + 2, "server", {"type": "provider.custom_event"}),
        (T0 + 3, "server", {"type": "provider.custom_event"}),
        (T0 + 4, "server", "not json at all"),
        *ga_response(T0 + 5, "r1", "a1", None, "hi", [], 0.2),
        (
            T0 + 6,
            "server",
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": "a1",
                "error": {"message": "audio too short"},
            },
        ),
    ]
    conv = conversation_of(write_capture(tmp_path, events))
    assert conv.errors[["type", "code", "message", "param", "client_event_id"]].iloc[
        0
    ].tolist() == [
        "invalid_request_error",
        "bad_value",
        "nope",
        "session.voice",
        "evt_1",
    ]
    assert conv.unknown_events == {"provider.custom_event": 2}
    assert conv.problems == {"not JSON": 1}
    assert conv.items.set_index("item_id").at["a1", "transcription_error"] == "audio too short"


def test_client_items_never_confirmed_are_kept_and_marked(tmp_path: Path) -> None:
    events: list[Event] = [
        ga_session_created(T0),
        (
            T0 + 1,
            "client",
            {
                "type": "conversation.item.create",
                "item": {
                    "id": "mine",
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hi"}],
                },
            },
        ),
    ]
    items = conversation_of(write_capture(tmp_path, events)).items
    assert items["item_id"].tolist() == ["mine"]
    assert bool(items["from_client"].iloc[0]) and items["text"].iloc[0] == "hi"
