"""Audio planted in every field GPT-Live's and Gemini Live's official SDK types say carries it,
sessions around it, and a recorder that writes them as each protocol sends them (Gemini's
server in binary frames). Realtime's fields are in :mod:`tests.audio_fields`."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analyzer.protocols.audio_paths import EVERY, parse_path, snake
from analyzer.recording.frames import build_frame
from analyzer.recording.run import RunRecorder
from analyzer.recording.session import handshake_facts
from tests.capture_factory import T0

GEMINI_SDK_FILE = Path(__file__).resolve().parent / "sdk" / "gemini_audio_paths.json"
GEMINI_URL = (
    "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta."
    "GenerativeService.BidiGenerateContent?key=AIzaSyNOTAREALKEY"
)
LIVE_URL = "wss://api.openai.com/v1/live/sessions?model=gpt-live"
PCM_MIME = "audio/pcm;rate=16000"

# (direction, event type, path) of GPT-Live's audio fields (openai 3.60 ``types/live``: the
# client's append and fixture, the server's delta, and the sideband's reflection of the
# primary transport's append, a server event of the same type).
LIVE_FIELDS: list[tuple[str, str, str]] = [
    ("client", "session.input_audio.append", "audio"),
    ("server", "session.input_audio.append", "audio"),
    ("server", "session.output_audio.delta", "delta"),
    ("client", "session.output_audio.fixture.play", "audio"),
]

# A frame to record: (time, "client" | "server", its text).
Frame = tuple[float, str, str]


def gemini_sdk_paths() -> dict[str, Any]:
    return dict(json.loads(GEMINI_SDK_FILE.read_text(encoding="utf-8")))


def gemini_fields() -> list[tuple[str, str]]:
    """(direction, path) of every audio field of the SDK's Live messages."""
    sdk = gemini_sdk_paths()
    paths = [*sdk["audio"], *sdk["blobs"]]
    return [("server" if p.startswith("serverContent") else "client", p) for p in paths]


def encode(audio: bytes, urlsafe: bool) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(audio).decode()


def _build(steps: tuple[str | None, ...], value: str, spell: Any, n: int) -> Any:
    """What stands at ``steps``: dicts and one-element lists down to ``value``; the object
    holding the audio says its mime type, a content part has a text beside its blob."""
    if not steps:
        return value
    step = steps[0]
    if step is None:
        return [_build(steps[1:], value, spell, n)]
    node: dict[str, Any] = {spell(step): _build(steps[1:], value, spell, n)}
    if len(steps) == 1:
        node[spell("mimeType")] = PCM_MIME
    if step in ("inlineData", "functionResponse"):
        node[spell("text") if step == "inlineData" else "name"] = f"part {n}"
    return node


def gemini_message(path: str, audios: Sequence[str], n: int = 0, snake_case: bool = False) -> Any:
    """A Gemini message holding each base64 text of ``audios`` at ``path`` (the first list on
    the path gets one element per text), keys camelCase or snake_case as the SDK may send."""
    steps = parse_path(path).steps
    spell = snake if snake_case else (lambda key: key)
    tree = _build(steps, audios[0], spell, n)
    if EVERY in steps:
        first = steps.index(EVERY)
        holder = _at(tree, steps[:first], spell)
        for text in audios[1:]:
            holder.extend(_at(_build(steps, text, spell, n), steps[:first], spell))
    else:
        assert len(audios) == 1
    top = steps[0]
    assert isinstance(top, str)
    if top == "setup":
        tree[spell("setup")]["model"] = f"models/gemini-live-{n}"
    elif top == "clientContent":
        tree[spell("clientContent")][spell("turnComplete")] = True
    return tree


def _at(tree: Any, keys: tuple[str | None, ...], spell: Any) -> Any:
    for key in keys:
        tree = tree[spell(key)]
    return tree


def live_event(event_type: str, key: str, audio: str, n: int = 0) -> dict[str, Any]:
    return {"type": event_type, "event_id": f"event_{n}", key: audio}


def gemini_session(planted: Sequence[Frame]) -> list[Frame]:
    """A Gemini Live session with one spoken turn and its reply, ``planted`` in the middle."""
    chunk = base64.b64encode(bytes(640)).decode()
    reply = base64.b64encode(bytes(960)).decode()
    frames: list[Frame] = [
        (T0, "client", json.dumps({"setup": {"model": "models/gemini-live-2.5-flash"}})),
        (T0 + 0.05, "server", json.dumps({"setupComplete": {}})),
        *(
            (T0 + 0.1 + i * 0.02, "client", json.dumps(_chunk(chunk)))
            for i in range(5)
        ),
        (T0 + 0.3, "server", json.dumps({"serverContent": {"inputTranscription": {"text": "Hi"}}})),
        *planted,
        (T0 + 0.5, "server", json.dumps(_model_audio(reply))),
        (T0 + 0.6, "server", json.dumps({"serverContent": {"turnComplete": True}})),
    ]  # fmt: skip
    return sorted(frames, key=lambda f: f[0])


def _chunk(data: str) -> dict[str, Any]:
    return {"realtimeInput": {"audio": {"data": data, "mimeType": PCM_MIME}}}


def _model_audio(data: str) -> dict[str, Any]:
    blob = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
    return {"serverContent": {"modelTurn": {"parts": [blob]}}}


def live_session(planted: Sequence[Frame]) -> list[Frame]:
    """A GPT-Live session: the user speaks (appends, transcript), the model answers."""
    chunk = base64.b64encode(bytes(960)).decode()
    frames: list[Frame] = [
        (T0, "server", json.dumps({"type": "session.started", "event_id": "ev_0"})),
        *(
            (T0 + 0.1 + i * 0.02, "client",
             json.dumps({"type": "session.input_audio.append", "audio": chunk}))
            for i in range(5)
        ),
        (T0 + 0.3, "server", json.dumps(
            {"type": "session.input_transcript.delta", "event_id": "ev_t", "delta": "Hi",
             "start_ms": 0, "end_ms": 100})),
        *planted,
        (T0 + 0.5, "server", json.dumps(
            {"type": "session.output_audio.delta", "event_id": "ev_a", "delta": chunk})),
    ]  # fmt: skip
    return sorted(frames, key=lambda f: f[0])


def record_frames(
    directory: Path, url: str, sessions: dict[str, Sequence[Frame]], keep_audio: bool = True
) -> RunRecorder:
    """Record sessions through a real :class:`RunRecorder`, each frame as its protocol sends
    it (Gemini's server: binary frames holding JSON)."""
    run = RunRecorder(directory, run_id="rt-test")
    gemini = "BidiGenerateContent" in url
    for session_id, frames in sessions.items():
        run.start_session(handshake_facts(session_id, "rt-test", url, [], [], T0, keep_audio))
        for seq, (time_s, direction, text) in enumerate(frames):
            is_text = direction == "client" or not gemini
            rec = build_frame(
                session_id,
                seq,
                time_s,
                direction == "client",
                is_text,
                text.encode(),
                keep_audio,
                run.audio_paths(session_id),
            )
            run.record_frame(rec)
        run.end_session(session_id, end_s=frames[-1][0] + 1, close_code=1000, closed_by_client=True)
    run.close()
    return run


def har_of(url: str, frames: Sequence[Frame], binary_server: bool) -> dict[str, Any]:
    """A HAR document (as browser DevTools write) of one WebSocket with these frames."""
    messages = []
    for time_s, direction, text in frames:
        binary = binary_server and direction == "server"
        data = base64.b64encode(text.encode()).decode() if binary else text
        messages.append(
            {
                "type": "send" if direction == "client" else "receive",
                "time": time_s,
                "opcode": 2 if binary else 1,
                "data": data,
            }
        )
    entry = {
        "startedDateTime": "2023-11-14T22:13:20Z",
        "request": {"method": "GET", "url": url.replace("wss://", "https://"), "headers": []},
        "response": {"status": 101, "headers": []},
        "_webSocketMessages": messages,
    }
    return {"log": {"version": "1.2", "entries": [entry]}}
