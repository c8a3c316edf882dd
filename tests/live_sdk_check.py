"""Run by the official ``openai`` SDK's Python (a venv of its own): validate GPT-Live events.

Reads ``{"server": [...], "client": [...], "sideband_server": [...], "sideband_client": [...]}``
(JSON on stdin) and prints one line per event the SDK's models reject, or that carries a field
they do not define (the SDK's models accept unknown fields silently; a peer speaking the
protocol exactly sends none). ``response.event`` payloads are checked as Responses stream events.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from openai.types.live import ClientEvent, ServerEvent
from openai.types.live.connect_client_event import ConnectClientEvent
from openai.types.live.connect_server_event import ConnectServerEvent
from openai.types.responses import ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

UNIONS: dict[str, Any] = {
    "server": ServerEvent,
    "client": ClientEvent,
    "sideband_server": ConnectServerEvent,
    "sideband_client": ConnectClientEvent,
}


def extras(value: Any, where: str) -> list[str]:
    """Fields no model declares, anywhere in a validated model (``response.event``'s free-form
    ``event`` is checked on its own)."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        for name in value.model_extra or {}:
            found.append(f"{where}.{name}")
        for name in type(value).model_fields:
            found += extras(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += extras(item, f"{where}[{index}]")
    return found


def main() -> int:
    batches = json.load(sys.stdin)
    nested = TypeAdapter(ResponseStreamEvent)
    failures = 0
    counts: dict[str, int] = {}
    for batch, events in batches.items():
        adapter = TypeAdapter(UNIONS[batch])
        for event in events:
            try:
                model = adapter.validate_python(event)
                problems = extras(model, event["type"])
                if event["type"] == "response.event":
                    inner = nested.validate_python(event["event"])
                    problems += extras(inner, f"response.event/{event['event']['type']}")
            except Exception as exc:
                problems = [f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]]
            for problem in problems:
                failures += 1
                print(f"{batch}: {event.get('type')}: {problem}")
            counts[batch] = counts.get(batch, 0) + 1
    print(json.dumps({"checked": counts, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
