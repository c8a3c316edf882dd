"""``convert`` finds speech a batch of frames at a time (analyzer.voice_deferred): exactly the
events the recorder's writer finds frame by frame, whatever the batches, speech crossing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from analyzer.kinds import Kind
from analyzer.recording import writers
from analyzer.recording.convert import convert_journal
from analyzer.voice_deferred import DeferredVoices
from bench.captures import generate_journal
from tests.test_voice_batch import (
    RATE,
    Frame,
    aligned,
    chunked,
    conversation,
    g711_session,
    long_chunk,
    pcm,
    pieces,
    reply,
    silence,
    tiny_chunks,
    user,
)


def new_input_format() -> list[Frame]:
    """The conversation, then the input switched to 8 kHz (a new user stream, its clock from
    0) and a reply's echo in it: the echo watch starts the new stream's ring where the writer
    made the stream, after the old stream's last chunks."""
    frames = conversation()
    time_s = frames[-1][0] + 0.5
    frames.append((time_s, [{"kind": Kind.CONFIG, "input_format": "pcm16/8000"}], None))
    story = pcm("reply_story")[: RATE * 2]
    for chunk in pieces(story, [2400]):
        frames.append((time_s, [reply(chunk, "r3")], chunk.tobytes()))
    echo = (story[::3].astype(np.float64) / 2).astype(np.int16)
    for chunk in pieces(np.concatenate([silence(90, 8000), echo, silence(400, 8000)]), [161]):
        time_s += chunk.size / 8000
        frames.append((time_s, [user(chunk, 0.0)], chunk.tobytes()))
    return frames


def odd_sizes() -> list[Frame]:
    """The conversation with sizes no adapter gives but a hostile journal may: a chunk said
    to be of -4 bytes (its audio goes to the next chunk of the frame) and one of 0 bytes."""
    frames = conversation()
    mic = [n for n, (_, events, _) in enumerate(frames) if events[0]["kind"] == Kind.USER_AUDIO]
    for n, size in ((mic[30], -4), (mic[31], 0)):
        time_s, events, audio = frames[n]
        odd = {"kind": Kind.USER_AUDIO, "audio_bytes": size, "stream_ms": 0.0}
        frames[n] = (time_s, [odd, *events], audio)
    return frames


def test_the_new_stream_s_echo_is_scored() -> None:
    """What the equality below covers of a new input format: a span of the new stream scored."""
    ends = [e for row in chunked(new_input_format()) for e in row if e["kind"] == Kind.VOICE_END]
    assert (ends[-1]["role"], ends[-1]["stream_ms"] < 3000) == ("user", True)
    assert ends[-1]["echo_score"] > 0.9


def deferred(frames: list[Frame], every: int) -> list[list[dict[str, Any]]]:
    """The frames' voice events found by :class:`DeferredVoices`, settled every ``every``
    frames (and at the end): appended to each frame's own list of events, after its own."""
    voices = DeferredVoices()
    lists: list[list[dict[str, Any]]] = []
    for n, (time_s, events, audio) in enumerate(frames, start=1):
        lists.append(list(events))
        assert voices.feed(time_s, lists[-1], audio) == []
        if n % every == 0:
            voices.settle()
    voices.settle()
    return [found[len(events) :] for found, (_, events, _) in zip(lists, frames, strict=True)]


SESSIONS = [conversation, aligned, g711_session, tiny_chunks, long_chunk, new_input_format]
SESSIONS += [odd_sizes]


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("every", [1, 2, 7, 50, 10**9])
def test_speech_found_in_batches_is_speech_found_chunk_by_chunk(session: Any, every: int) -> None:
    frames = session()
    assert deferred(frames, every) == chunked(frames)


def _spans(path: Path, every: int) -> tuple[int, int, int]:
    """The file's speech spans, those whose start and end frames are in different batches of
    ``every`` frames, and the user spans given an echo score."""
    table = pq.read_table(path, columns=["session_id", "events"])
    open_at: dict[tuple[Any, ...], int] = {}
    spans = crossing = scored = 0
    for row, (session, events) in enumerate(
        zip(table["session_id"].to_pylist(), table["events"].to_pylist(), strict=True)
    ):
        for event in events or []:
            stream = (session, event["role"], event["reply_id"])
            if event["kind"] == Kind.VOICE_START:
                open_at[stream] = row
            elif event["kind"] == Kind.VOICE_END:
                spans += 1
                crossing += open_at.pop(stream) // every != row // every
                scored += event.get("echo_score") is not None
    return spans, crossing, scored


def test_convert_in_small_batches_writes_the_file_found_frame_by_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six sessions interleaved (speech, replies, echo), their speech found frame by frame as
    the recorder does, in batches of 7 frames (every span crosses one), of ~50 KB, and in the
    default batches: the same file, byte for byte."""
    journal = generate_journal(tmp_path / "run.jsonl", 6_000_000)
    written: dict[str, bytes] = {}
    for name, batch in [
        ("frame by frame", None),
        ("7 frames", writers.RowGroupPolicy(max_rows=7)),
        ("50 KB", writers.RowGroupPolicy(max_bytes=50_000)),
        ("default", writers.VOICE_BATCH),
    ]:
        monkeypatch.setattr(writers, "VOICE_BATCH", batch)
        out, _ = convert_journal(journal, tmp_path / "out.parquet")
        written[name] = out.read_bytes()
    assert set(written.values()) == {written["frame by frame"]}
    spans, crossing, scored = _spans(tmp_path / "out.parquet", 7)
    assert (spans, crossing, scored) == (48, 48, 18)
