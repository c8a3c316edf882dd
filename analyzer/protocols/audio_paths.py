"""Where a protocol's events carry base64 audio: paths into the event's JSON, and finding them.

Each adapter declares, once, every field path where audio can sit, per event type; the recorder
looks there, and only there, to count the audio, cut it out of the JSON and drop it when asked.

Path syntax (dots between object keys; no key may contain ``.``, ``[`` or ``?``):

* ``delta``: the event's own ``delta`` field.
* ``item.content[*].audio``: ``[*]`` is every element of a list (lists may nest:
  ``serverContent.modelTurn.parts[*].inlineData.data``).
* A trailing ``?``: the field is optional (may be absent or null, as ``Optional[str]`` in the
  SDK). Without it, an event lacking the field, or holding anything but a string there, is
  recorded with a problem.

An adapter whose clients may send URL-safe base64 (``-`` and ``_`` for ``+`` and ``/``, as
pydantic writes bytes) declares its paths with ``urlsafe=True``: each field is then read in
whichever alphabet it is written in, and recorded so it can be put back byte for byte.

Two more options, for protocols read by a protobuf JSON parser (Gemini Live):

* ``snake_case=True``: every key of the path may also be spelled in snake_case
  (``realtime_input.media_chunks[*].data``), as such a parser accepts either spelling (and the
  official client sends some of each).
* ``audio_mime=True``: the field is a blob's data, audio only when the object holding it says so;
  it counts unless its mime type (``mimeType`` / ``mime_type``) is stated and not ``audio/*``
  (an unstated type may be audio: privacy errs on the side of dropping it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EVERY = None  # a path step meaning "every element of the list here"


@dataclass(frozen=True, slots=True)
class AudioPath:
    """One place audio can sit in an event."""

    text: str  # as declared, e.g. "item.content[*].audio?"
    steps: tuple[str | None, ...]  # keys, and EVERY for ``[*]``; the last is always a key
    optional: bool
    urlsafe: bool  # the field may be URL-safe base64
    key: str  # the key the audio string stands under (the last step)
    quoted_key: str  # '"key"': an event whose text lacks it (and any \u escape) has no field
    # The key of a required standard-base64 field of the event itself (the streaming events'
    # ``delta`` / ``audio``, most frames of a session: the recorder has a fast way for them).
    streamed: str | None
    snake_case: bool = False  # each key may also be spelled in snake_case
    audio_mime: bool = False  # only when the holder's mime type, if stated, is audio/*
    quoted_keys: tuple[str, ...] = ()  # every spelling of ``quoted_key``


_UPPER = re.compile(r"([A-Z])")


@functools.cache  # a few dozen field names, looked up for every Gemini frame
def snake(key: str) -> str:
    """``mediaChunks`` -> ``media_chunks``."""
    return _UPPER.sub(lambda m: "_" + m.group(1).lower(), key)


def parse_path(
    text: str, urlsafe: bool = False, snake_case: bool = False, audio_mime: bool = False
) -> AudioPath:
    """An :class:`AudioPath` from its text; ValueError when it is not one."""
    body = text.removesuffix("?")
    steps: list[str | None] = []
    for part in body.split("."):
        key, _, rest = part.partition("[")
        if not key or "?" in key or "]" in key:
            raise ValueError(f"bad audio path {text!r}: empty or odd key in {part!r}")
        steps.append(key)
        while rest:
            if not rest.startswith("*]"):
                raise ValueError(f"bad audio path {text!r}: only [*] may follow a key")
            steps.append(EVERY)
            rest = rest[2:].removeprefix("[")
    last = steps[-1]
    if last is None:
        raise ValueError(f"bad audio path {text!r}: it must end with a key")
    optional = text.endswith("?")
    plain = not (optional or urlsafe or snake_case or audio_mime)
    streamed = last if len(steps) == 1 and plain else None
    spellings = dict.fromkeys((last, snake(last) if snake_case else last))
    quoted = tuple(f'"{key}"' for key in spellings)
    return AudioPath(
        text, tuple(steps), optional, urlsafe, last, quoted[0], streamed, snake_case, audio_mime,
        quoted,
    )  # fmt: skip


AudioPaths = tuple[AudioPath, ...]


def declare(
    paths: Mapping[str, Sequence[str]],
    urlsafe: bool = False,
    snake_case: bool = False,
    audio_mime: bool = False,
) -> dict[str, AudioPaths]:
    """An adapter's declaration (event type -> path texts) parsed once, at import."""
    return {
        event_type: tuple(parse_path(text, urlsafe, snake_case, audio_mime) for text in texts)
        for event_type, texts in paths.items()
    }


@dataclass(slots=True)
class Field:
    """A value found at an audio path: where it is (to empty it) and what it holds."""

    path: AudioPath
    holder: dict[str, Any]
    value: Any
    key: str  # the key it stands under in ``holder`` (the path's, or its snake_case spelling)


def find_fields(event: Mapping[str, Any], paths: AudioPaths) -> list[Field]:
    """Every value standing at one of ``paths`` in a parsed event, path by path, lists in
    order. A missing optional field gives nothing; a missing required one gives a Field whose
    value is None, when the object that should hold it is there."""
    found: list[Field] = []
    for path in paths:
        _walk(event, path, 0, found)
    return found


def _walk(node: Any, path: AudioPath, at: int, found: list[Field]) -> None:
    step = path.steps[at]
    if step is EVERY:
        if isinstance(node, list):
            for element in node:
                _walk(element, path, at + 1, found)
        return
    if not isinstance(node, dict):
        return
    keys = (step, snake(step)) if path.snake_case and not step.islower() else (step,)
    last = at == len(path.steps) - 1
    if last and path.audio_mime and not _may_be_audio(node):
        return
    for key in keys:
        if last:
            value = node.get(key)
            # A required field missing (or null) under every spelling is reported once.
            missing = not path.optional and key == step and node.get(keys[-1]) is None
            if value is not None or missing:
                found.append(Field(path, node, value, key))
        elif key in node:
            _walk(node[key], path, at + 1, found)


def _may_be_audio(blob: dict[str, Any]) -> bool:
    """Whether a blob may hold audio: its mime type, if it states one, is audio/*."""
    mime = blob.get("mimeType", blob.get("mime_type"))
    return not isinstance(mime, str) or mime.lower().lstrip().startswith("audio/")
