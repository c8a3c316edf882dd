"""The realtime contentview: frames as fields with audio summarized, chosen by mitmproxy's own
"auto" selection on realtime connections (run under mitmproxy 11 and 12: make test-next)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mitmproxy import contentviews, websocket
from mitmproxy.http import HTTPFlow
from mitmproxy.test import taddons, tflow
from wsproto.frame_protocol import Opcode

from analyzer.formats import OPENAI_PCM
from analyzer.recording.contentview import VIEW_NAME
from analyzer.recording.frame_text import render_frame, session_formats
from tests.test_addon_unit import capture

PCM_100MS = bytes(4800)  # 100 ms of 24 kHz PCM16
B64 = base64.b64encode(PCM_100MS).decode()


def test_ga_audio_delta_shows_ids_and_a_summary_instead_of_base64() -> None:
    event = {
        "type": "response.output_audio.delta",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": B64,
    }
    rendered = render_frame(json.dumps(event).encode(), (OPENAI_PCM, OPENAI_PCM))
    assert rendered is not None
    title, text = rendered
    assert title == "response.output_audio.delta"
    assert json.loads(text) == {**event, "delta": "<audio: 4,800 bytes, 100 ms of pcm16 24 kHz>"}
    assert B64[:64] not in text


def test_beta_g711_session_sets_the_duration_of_client_audio() -> None:
    update = {"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}
    formats = session_formats([json.dumps(update).encode()])
    append = {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(800)).decode()}
    rendered = render_frame(json.dumps(append).encode(), formats)
    assert rendered is not None
    assert json.loads(rendered[1])["audio"] == "<audio: 800 bytes, 100 ms of g711_ulaw 8 kHz>"
    assert formats[1] == OPENAI_PCM  # output untouched


def test_gemini_inline_audio_and_other_blobs_are_summarized_by_their_mime_type() -> None:
    message = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": B64}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": B64}},
                ]
            }
        }
    }
    rendered = render_frame(json.dumps(message).encode(), (None, None))
    assert rendered is not None
    title, text = rendered
    parts = json.loads(text)["serverContent"]["modelTurn"]["parts"]
    assert title == "serverContent"
    assert [p["inlineData"]["data"] for p in parts] == [
        "<audio: 4,800 bytes, 100 ms of pcm16 24 kHz>",
        "<base64: 4,800 bytes of image/jpeg>",
    ]


def test_frames_that_are_not_json_objects_are_left_to_other_views() -> None:
    for data in (b"\x00\x01binary", b"[1, 2]", b"not json"):
        assert render_frame(data, (None, None)) is None


def realtime_flow_with(path: str, events: list[dict[str, Any]]) -> HTTPFlow:
    flow = tflow.twebsocketflow()
    flow.request.path = path
    assert flow.websocket is not None
    flow.websocket.messages = [
        websocket.WebSocketMessage(
            Opcode.TEXT, e["type"] in ("session.update",), json.dumps(e).encode()
        )
        for e in events
    ]
    return flow


def shown_by_mitmproxy(message: websocket.WebSocketMessage, flow: HTTPFlow) -> tuple[str, str]:
    """(view chosen by mitmproxy's "auto", text shown), through mitmproxy's own API."""
    if hasattr(contentviews, "prettify_message"):  # mitmproxy 12
        result = contentviews.prettify_message(message, flow)
        return str(result.view_name), result.text
    description, lines, error = contentviews.get_message_content_view("auto", message, flow)
    assert error is None
    text = "\n".join("".join(str(t) for _, t in line) for line in lines)
    view = VIEW_NAME if description.startswith(f"{VIEW_NAME}: ") else description
    return view, f"# {description.removeprefix(f'{VIEW_NAME}: ')}\n{text}"


@pytest.fixture
def loaded_addons() -> Iterator[None]:
    """The addon script's addons (the recorder and the view), loaded as mitmproxy loads them."""
    addons = capture.make_addons()
    with taddons.context(*addons):
        yield
        for addon in addons:
            addon.done()


def test_mitmproxy_auto_picks_the_realtime_view_on_realtime_connections(
    loaded_addons: None,
) -> None:
    events: list[dict[str, Any]] = [
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"output": {"format": {"type": "audio/pcmu"}}},
            },
        },
        {"type": "response.output_audio.delta", "response_id": "resp_1", "delta": B64},
    ]
    flow = realtime_flow_with("/v1/realtime?model=gpt-realtime", events)
    assert flow.websocket is not None
    view, text = shown_by_mitmproxy(flow.websocket.messages[1], flow)
    assert view == VIEW_NAME
    title, _, body = text.partition("\n")
    assert title == "# response.output_audio.delta"
    # audio/pcmu, set by the session.update before it: 8 kHz, 1 byte a sample
    assert json.loads(body)["delta"] == "<audio: 4,800 bytes, 600 ms of g711_ulaw 8 kHz>"


def test_other_websocket_connections_keep_mitmproxy_s_choice(loaded_addons: None) -> None:
    flow = realtime_flow_with("/socket", [{"type": "response.output_audio.delta", "delta": B64}])
    assert flow.websocket is not None
    view, text = shown_by_mitmproxy(flow.websocket.messages[0], flow)
    assert view != VIEW_NAME and B64 in text
