"""Where the official google-genai SDK's Live message types carry audio bytes, as audio paths.

Run with a Python that has ``google-genai`` installed (not the project's venv), e.g.::

    python3 -m venv /tmp/genai-venv && /tmp/genai-venv/bin/pip install google-genai
    /tmp/genai-venv/bin/python scripts/sdk_gemini_audio_paths.py > tests/sdk/gemini_audio_paths.json

It walks ``LiveClientMessage`` and ``LiveServerMessage`` (``google/genai/types.py``), following
nested models, lists and unions, and lists each ``bytes`` field of a model that has a
``mime_type`` (a ``Blob``'s ``data``; a replicated voice's samples), by its camelCase wire name
(``[*]``: every element of a list; all are optional). ``audio``: fields that are audio whatever
their mime type says (reached through a key naming audio: ``realtimeInput.audio.data``,
``voiceSampleAudio``); ``blobs``: data that is audio only when its blob's mime type says so
(``inlineData`` may be an image). Other ``bytes`` fields (``thoughtSignature``, an avatar's
image) are not audio. ``tests/test_gemini_audio.py`` checks the Gemini adapter declares exactly
these.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from importlib.metadata import version
from typing import Any

from google.genai import types as genai
from pydantic import BaseModel


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold, Optional / Union / Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation]


def _walk(model: type[BaseModel], prefix: str, out: set[str], seen: tuple[type, ...]) -> None:
    if model in seen:
        return
    for name, field in model.model_fields.items():
        key = field.alias or name
        for member in _members(field.annotation):
            path = f"{prefix}{key}"
            inner = member
            while typing.get_origin(inner) in (list, typing.List):  # noqa: UP006
                path += "[*]"
                args = typing.get_args(inner)
                inner = args[0] if args else Any
            for leaf in _members(inner):
                if leaf is bytes and "mime_type" in model.model_fields:
                    out.add(path)
                elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    _walk(leaf, path + ".", out, (*seen, model))


def audio_paths() -> dict[str, list[str]]:
    found: set[str] = set()
    for message in (genai.LiveClientMessage, genai.LiveServerMessage):
        _walk(message, "", found, ())
    audio = {p for p in found if "audio" in p.lower().replace("[*]", "")}
    return {"audio": sorted(audio), "blobs": sorted(found - audio)}


def main() -> int:
    result = {"sdk": f"google-genai {version('google-genai')}", **audio_paths()}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
