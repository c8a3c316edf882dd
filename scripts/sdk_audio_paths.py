"""Where the official OpenAI SDK's Realtime event types carry base64 audio, as audio paths.

Run with a Python that has ``openai`` installed (not the project's venv: the SDK's h11 pin
clashes with mitmproxy's), e.g.::

    python3 -m venv /tmp/sdk-venv && /tmp/sdk-venv/bin/pip install openai
    /tmp/sdk-venv/bin/python scripts/sdk_audio_paths.py > tests/sdk/realtime_audio_paths.json

It walks every event model of the client and server event unions (GA ``types/realtime``, its
translation sessions, and beta ``types/beta/realtime``), following nested models and lists, and
lists each ``str`` field whose docstring says it holds base64 audio, in the syntax of
``analyzer.protocols.audio_paths`` (``[*]``: every element of a list; a trailing ``?``: the
field is optional). ``tests/test_audio_paths.py`` checks the Realtime adapter declares exactly
these.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import sys
import types
import typing
from typing import Any

from openai import __version__
from openai.types.beta.realtime.realtime_client_event import (
    RealtimeClientEvent as BetaClientEvent,
)
from openai.types.beta.realtime.realtime_server_event import (
    RealtimeServerEvent as BetaServerEvent,
)
from openai.types.realtime.realtime_client_event import RealtimeClientEvent
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from openai.types.realtime.realtime_translation_client_event import (
    RealtimeTranslationClientEvent,
)
from openai.types.realtime.realtime_translation_server_event import (
    RealtimeTranslationServerEvent,
)
from pydantic import BaseModel

UNIONS = {
    "ga client": RealtimeClientEvent,
    "ga server": RealtimeServerEvent,
    "ga translation client": RealtimeTranslationClientEvent,
    "ga translation server": RealtimeTranslationServerEvent,
    "beta client": BetaClientEvent,
    "beta server": BetaServerEvent,
}


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold, Optional / Union / Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _members(a)]
    return [annotation]


def _docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Attribute docstrings of a model's own fields (the SDK documents fields this way)."""
    try:
        tree = ast.parse(inspect.getsource(model))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = after.value.value
    return docs


def _is_audio(doc: str) -> bool:
    words = doc.lower()
    return "base64" in words and "audio" in words


def _walk(model: type[BaseModel], prefix: str, out: set[str], seen: tuple[type, ...]) -> None:
    if model in seen:
        return
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseModel) and klass is not BaseModel:
            docs.update(_docstrings(klass))
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
                if leaf is str and _is_audio(docs.get(name, "")):
                    out.add(path + ("" if field.is_required() else "?"))
                elif isinstance(leaf, type) and issubclass(leaf, BaseModel):
                    _walk(leaf, path + ".", out, (*seen, model))


def audio_paths() -> dict[str, list[str]]:
    by_type: dict[str, set[str]] = {}
    for union in UNIONS.values():
        for model in _members(union):
            event_type = typing.get_args(model.model_fields["type"].annotation)[0]
            found: set[str] = set()
            _walk(model, "", found, ())
            if found:
                by_type.setdefault(event_type, set()).update(found)
    return {t: sorted(paths) for t, paths in sorted(by_type.items())}


def main() -> int:
    result = {"sdk": f"openai {__version__}", "audio_paths": audio_paths()}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
