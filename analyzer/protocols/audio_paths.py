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
"""

from __future__ import annotations

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


def parse_path(text: str, urlsafe: bool = False) -> AudioPath:
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
    streamed = last if len(steps) == 1 and not optional and not urlsafe else None
    return AudioPath(text, tuple(steps), optional, urlsafe, last, f'"{last}"', streamed)


AudioPaths = tuple[AudioPath, ...]


def declare(paths: Mapping[str, Sequence[str]], urlsafe: bool = False) -> dict[str, AudioPaths]:
    """An adapter's declaration (event type -> path texts) parsed once, at import."""
    return {
        event_type: tuple(parse_path(text, urlsafe) for text in texts)
        for event_type, texts in paths.items()
    }


@dataclass(slots=True)
class Field:
    """A value found at an audio path: where it is (to empty it) and what it holds."""

    path: AudioPath
    holder: dict[str, Any]
    value: Any


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
    if at == len(path.steps) - 1:
        value = node.get(step)
        if value is not None or not path.optional:
            found.append(Field(path, node, value))
    elif step in node:
        _walk(node[step], path, at + 1, found)
