"""A peer's own record of what it sent and received, to check the analyzer against.

JSONL, one object a line; ``record`` says which kind: ``session_start``, ``frame``, ``turn``,
``transcription``, ``session_end``. A frame's ``direction`` uses the capture's words:
``client`` for frames the client sent, ``server`` for frames the server sent; ``time_s`` is
``time.time()`` just before the send, or just after the receive.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def frame_fields(text: str) -> dict[str, Any]:
    """type, event_id, item_id, response_id of a frame, found the way the recorder finds them."""
    try:
        event = json.loads(text)
    except ValueError:
        return {"type": None, "event_id": None, "item_id": None, "response_id": None}
    if not isinstance(event, dict):
        event = {}

    def text_or_none(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    item_id = text_or_none(event.get("item_id"))
    if item_id is None and isinstance(event.get("item"), dict):
        item_id = text_or_none(event["item"].get("id"))
    response_id = text_or_none(event.get("response_id"))
    if response_id is None and isinstance(event.get("response"), dict):
        response_id = text_or_none(event["response"].get("id"))
    return {
        "type": text_or_none(event.get("type")),
        "event_id": text_or_none(event.get("event_id")),
        "item_id": item_id,
        "response_id": response_id,
    }


@dataclass
class Timeline:
    """Frames and per-turn facts, kept in memory and (optionally) appended to a JSONL file."""

    path: Path | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    _file: IO[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.path is not None:
            self._file = self.path.open("a", encoding="utf-8")

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.records.append(record)
            if self._file is not None:
                self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._file.flush()

    def frame(self, session: str, direction: str, text: str, time_s: float) -> None:
        self.add(
            {
                "record": "frame",
                "session": session,
                "time_s": time_s,
                "direction": direction,
                **frame_fields(text),
                "text": text,
            }
        )

    def frames(self, session: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r["record"] == "frame" and (session is None or r["session"] == session)
        ]

    def turns(self, session: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r["record"] == "turn" and (session is None or r["session"] == session)
        ]

    def transcriptions(self, session: str | None = None) -> list[dict[str, Any]]:
        """When each input transcription's deltas and completed event were sent."""
        return [
            r
            for r in self.records
            if r["record"] == "transcription" and (session is None or r["session"] == session)
        ]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_timeline(path: Path) -> Timeline:
    """A record file written by ``--record`` (the file stays closed)."""
    timeline = Timeline()
    with path.open(encoding="utf-8") as handle:
        timeline.records = [json.loads(line) for line in handle if line.strip()]
    return timeline
