"""Audio planted in every field the official SDK types say carries it, and a search for it in
whatever the project wrote (issue 20: ``rt_audio=drop`` keeps no sample anywhere)."""

from __future__ import annotations

import base64
import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from analyzer.protocols.audio_paths import EVERY, parse_path
from analyzer.protocols.realtime_events import CLIENT_EVENTS

SDK_PATHS_FILE = Path(__file__).resolve().parent / "sdk" / "realtime_audio_paths.json"
# Client events of the SDK's translation sessions (types/realtime/realtime_translation_*).
_TRANSLATION_CLIENT = {"session.input_audio_buffer.append"}


def sdk_audio_fields() -> list[tuple[str, str]]:
    """(event type, path) of every audio field of the SDK's Realtime events."""
    paths = json.loads(SDK_PATHS_FILE.read_text(encoding="utf-8"))["audio_paths"]
    return [(event_type, path) for event_type, texts in paths.items() for path in texts]


def direction_of(event_type: str) -> str:
    return "client" if event_type in CLIENT_EVENTS | _TRANSLATION_CLIENT else "server"


def sample(seed: int, size: int = 600) -> bytes:
    """Audio bytes that cannot be mistaken for anything else in a capture."""
    return random.Random(seed).randbytes(size)


def event_with_audio(event_type: str, path: str, audios: list[str], n: int = 0) -> dict[str, Any]:
    """An event of ``event_type`` holding each base64 text of ``audios`` at ``path``: a list
    step gets one element per text (the first list on the path does; deeper ones hold one),
    beside fields a real event has (ids, a transcript) so the text around the audio is real."""
    steps = parse_path(path).steps
    first_list = steps.index(EVERY) if EVERY in steps else None

    def build(at: int, value: str) -> Any:
        """What stands at ``steps[at:]``: dicts and one-element lists down to the text."""
        if at == len(steps):
            return value
        step = steps[at]
        if step is EVERY:
            return [build(at + 1, value)]
        node: dict[str, Any] = {step: build(at + 1, value)}
        if at == len(steps) - 1 and at > 0:  # a content part
            node.update({"type": "input_audio", "transcript": f"part {n}"})
        if step == "content":  # an item
            node.update({"id": f"item_{n}", "type": "message", "role": "user"})
        return node

    event: dict[str, Any] = {"type": event_type, "event_id": f"event_{n}"}
    tree = build(0, audios[0])
    if first_list is None:
        assert len(audios) == 1
    else:
        holder = _at(tree, steps[:first_list])
        for text in audios[1:]:
            holder.extend(_at(build(0, text), steps[:first_list]))
    event.update(tree)
    if isinstance(event.get("response"), dict):
        event["response"]["id"] = f"resp_{n}"
    return event


def _at(tree: Any, keys: tuple[str | None, ...]) -> Any:
    for key in keys:
        tree = tree[key]
    return tree


@dataclass
class Needles:
    """What must not be found: each sample raw, in base64 of both alphabets, and in pieces."""

    raw: list[bytes]

    def each(self) -> Iterator[bytes]:
        """Whole samples of 32 bytes or more (shorter ones could match by chance), and pieces
        of the longer ones; not digital silence (one byte value throughout: it tells nothing,
        and any file's padding or run of zero values matches it)."""
        for audio in self.raw:
            if len(audio) < 32:
                continue
            std = base64.b64encode(audio)
            url = base64.urlsafe_b64encode(audio)
            if _says_something(audio):
                yield from (audio, std, url)
            if len(audio) >= 200 and _says_something(audio[64:112]):
                yield from (audio[64:112], std[100:164], url[100:164])

    def informative(self) -> int:
        """How many samples are looked for (not silence)."""
        return sum(1 for audio in self.raw if len(audio) >= 32 and _says_something(audio))


def _says_something(audio: bytes) -> bool:
    return len(set(audio)) > 1


def _data_uris(data: bytes) -> Iterator[bytes]:
    """The payloads of ``data:...;base64,`` URIs in an HTML page, decoded."""
    for match in re.finditer(rb"data:[a-z/]+;base64,([A-Za-z0-9+/=]+)", data):
        yield base64.b64decode(match.group(1))


def _parquet_cells(path: Path) -> bytes:
    """Every value of every column of a Parquet file, decompressed, as bytes."""
    table = pq.read_table(path)
    parts: list[bytes] = []
    for column in table.columns:
        for value in column.to_pylist():
            if isinstance(value, bytes):
                parts.append(value)
            elif value is not None:
                parts.append(json.dumps(value, default=str).encode())
    return b"\n".join(parts)


def written_bytes(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root`` as stored, and what it holds decoded: Parquet cells
    (compressed on disk), the audio players of an HTML page."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if path.suffix == ".parquet":
            yield f"{path} (cells)", _parquet_cells(path)
        if path.suffix == ".html":
            for i, payload in enumerate(_data_uris(data)):
                yield f"{path} (data URI {i})", payload


def leaks(needles: Needles, places: Iterable[tuple[str, bytes]]) -> list[str]:
    """Where any needle was found (empty: nowhere)."""
    found = []
    for name, data in places:
        for needle in needles.each():
            if needle in data:
                found.append(f"{name}: {needle[:24]!r}...")
                break
    return found
