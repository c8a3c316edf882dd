"""One session's audio frames as chunks, by item, with their formats and durations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzer.audio.chunks import Chunks, Index
from analyzer.audio.columns import ASSISTANT, USER, Pieces, Rows
from analyzer.audio.wav import is_wav, parse_wav
from analyzer.formats import AudioFormat


@dataclass(slots=True)
class SessionFrames:
    """A session's audio frames as chunks: the user's appends in seq order, then the assistant's
    deltas item by item (each item's in seq order). A frame recorded without its samples
    (rt_audio=drop) is a chunk with no bytes, ``dropped`` and its ``size`` as sent."""

    chunks: Chunks
    size: Index
    duration_ms: npt.NDArray[np.float64]  # 0 where size is not time
    dropped: npt.NDArray[np.bool_]
    position: Index  # of each chunk's frame among the session's rows
    users: int  # chunks[:users] are the user's
    items: list[tuple[str, int, int]]  # (key, first, end): the assistant's deltas by item
    bad_wav: bool  # some WAV payloads could not be read (kept as they are)


def _format_indexes(
    changes: list[tuple[int, AudioFormat, AudioFormat]],
) -> tuple[list[AudioFormat], Index, Index, Index]:
    """The session's formats (each once), the seqs the changes start at and, per change, the
    index of its input and of its output format."""
    formats: dict[AudioFormat, int] = {}
    inputs = [formats.setdefault(inp, len(formats)) for _, inp, _ in changes]
    outputs = [formats.setdefault(out, len(formats)) for _, _, out in changes]
    seqs = np.array([seq for seq, _, _ in changes], dtype=np.int64)
    return list(formats), seqs, np.array(inputs, np.int64), np.array(outputs, np.int64)


def _by_item(codes: Index, names: list[str]) -> tuple[Index, list[tuple[str, int, int]]]:
    """The order that groups deltas (with these item codes) by item, items in the order of their
    first delta, and each item's (name, first, end) in that order."""
    if not len(codes):
        return np.zeros(0, dtype=np.int64), []
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    rank = np.empty(len(unique), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(unique))  # first delta indexes are all different
    group = rank[inverse]
    ends = np.cumsum(np.bincount(group, minlength=len(unique))).tolist()
    codes_by_rank = unique[np.argsort(rank)].tolist()
    starts = [0, *ends[:-1]]
    items = [(names[c], a, e) for c, a, e in zip(codes_by_rank, starts, ends, strict=True)]
    return np.argsort(group, kind="stable"), items


def _unwrap_wavs(chunks: Chunks, valid: npt.NDArray[np.bool_]) -> bool:
    """Point WAV payloads' chunks at their samples, in the format their header gives; whether
    some could not be read (those are kept as they are)."""
    bad = False
    formats = {f: i for i, f in enumerate(chunks.formats)}
    for k in _maybe_wav(chunks, valid).tolist():
        view = chunks.view(k)
        if not is_wav(view):
            continue
        wav = parse_wav(view)
        if wav is None or wav.channels != 1:
            bad = True
            continue
        start = int(chunks.start[k])
        chunks.start[k], chunks.end[k] = start + wav.data_start, start + wav.data_end
        if wav.format not in formats:
            formats[wav.format] = len(chunks.formats)
            chunks.formats.append(wav.format)
        chunks.fmt[k] = formats[wav.format]
    return bad


def _maybe_wav(chunks: Chunks, valid: npt.NDArray[np.bool_]) -> Index:
    """The chunks of 12 bytes or more whose first byte is the R of RIFF (about one in 256 of
    other audio: those are then looked at one by one)."""
    candidates = np.flatnonzero(valid & (chunks.sizes >= 12))
    found = []
    for b, buffer in enumerate(chunks.buffers):
        mine = candidates[chunks.buffer[candidates] == b]
        if len(mine):
            first_bytes = np.frombuffer(buffer, dtype=np.uint8)[chunks.start[mine]]
            found.append(mine[first_bytes == ord("R")])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _durations_ms(chunks: Chunks, size: Index) -> npt.NDArray[np.float64]:
    """``format.duration_ms(size) or 0.0`` of every chunk, in one go."""
    rates = np.array([f.bytes_per_second or 0 for f in chunks.formats], dtype=np.int64)
    rate = rates[chunks.fmt]
    timed = rate > 0
    out = np.zeros(len(size))
    out[timed] = size[timed] * 1000.0 / rate[timed]
    return out


def session_frames(rows: Rows, pieces: Pieces, changes: list[Any]) -> SessionFrames:
    users = np.flatnonzero(rows.kind == USER)
    positions = np.concatenate([users, np.flatnonzero(rows.kind == ASSISTANT)])
    chunks, valid = pieces.gather(rows.row[positions])
    # a frame with no audio is no chunk; one recorded without samples is, with its size
    sent = rows.audio_bytes[positions]
    keep = np.flatnonzero(np.where(valid, chunks.sizes > 0, sent > 0))
    user_count = int(np.searchsorted(keep, len(users)))
    order, items = _by_item(rows.key[positions[keep[user_count:]]], rows.key_names)
    keep = np.concatenate([keep[:user_count], keep[user_count:][order]])
    chunks, valid, sent, positions = chunks.take(keep), valid[keep], sent[keep], positions[keep]
    formats, change_seqs, inputs, outputs = _format_indexes(changes)
    change = np.maximum(np.searchsorted(change_seqs, rows.seq[positions], side="right") - 1, 0)
    is_user = np.arange(len(positions)) < user_count
    chunks.fmt = np.where(is_user, inputs[change], outputs[change])
    chunks.time_s = rows.time_s[positions]
    chunks.formats = formats
    bad_wav = _unwrap_wavs(chunks, valid)
    size = np.where(valid, chunks.sizes, sent)
    return SessionFrames(
        chunks=chunks,
        size=size,
        duration_ms=_durations_ms(chunks, size),
        dropped=~valid,
        position=positions,
        users=user_count,
        items=[(key, user_count + a, user_count + e) for key, a, e in items],
        bad_wav=bad_wav,
    )
