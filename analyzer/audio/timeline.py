"""A session as one stereo recording on the capture's timeline: user left, reply right."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from analyzer.audio.model import SessionAudio
from analyzer.audio.streams import pcm16_samples
from analyzer.codecs import resample, resampled_count

STEREO_RATE_HZ = 24000
# A user append that arrives less than this after the previous one ended plays right after it:
# a microphone streams without gaps, so a late frame is network jitter, not silence.
USER_JITTER_S = 0.2
# Deltas closer than this to the previous one's end play right after it (float noise, no stall).
ASSISTANT_GAP_S = 0.001

# A chunk to place: arrival time, samples at its own rate, that rate, its format
_Chunk = tuple[float, npt.NDArray[np.int16], int, object]


# A run of chunks that play back to back: its first output sample, its chunks' samples, their rate
_Run = tuple[int, list[npt.NDArray[np.int16]], int]


def _channel(chunks: Sequence[_Chunk], start_s: float, rate: int, tolerance_s: float) -> list[_Run]:
    """Chunks laid out in order, as (first output sample, samples at ``rate``) of each run of
    chunks that play back to back. A chunk starts when it arrived, but never before the
    previous one ended (right at that end when it arrived within the tolerance of it); a run
    never goes on past a change of format, and is resampled as one."""
    placed: list[_Run] = []
    tolerance = tolerance_s * rate
    end = 0.0  # where the previous chunk ends, in output samples
    run: list[npt.NDArray[np.int16]] = []
    run_start, run_rate, run_format = 0.0, 0, None

    def close() -> None:
        if run:
            placed.append((round(run_start), run, run_rate))

    for time_s, samples, chunk_rate, fmt in chunks:
        arrival = max(0.0, (time_s - start_s) * rate)
        advance = (len(samples) * rate) / chunk_rate
        if run and fmt == run_format and arrival <= end + tolerance:
            run.append(samples)
            end += advance
            continue
        close()
        run_start = max(arrival, end)
        run, run_rate, run_format = [samples], chunk_rate, fmt
        end = run_start + advance
    close()
    return placed


def session_stereo(
    session: SessionAudio, sample_rate: int = STEREO_RATE_HZ
) -> npt.NDArray[np.int16]:
    """The session as 16-bit stereo samples, shape (frames, 2), time 0 at the session start.

    Left: every chunk of the user's audio (cleared ones too), each placed at its capture time.
    Right: the reply's chunks from the capture time of each item's first chunk, played back in
    order (a chunk starts when it arrived or when the previous one ended, whichever is later),
    each item cut where the client truncated it (what the user heard). G.711 is decoded and
    other rates resampled to ``sample_rate``; mp3 is left out."""
    chunks = session.chunks
    user: list[_Chunk] = []
    heard: list[_Chunk] = []
    if chunks is not None:
        played = {i.item_id: i.played_ms for i in session.items if i.role == "assistant"}
        given: dict[str | None, int] = {}  # reply item -> bytes heard so far
        for k, is_user in enumerate(chunks.user):
            fmt, data = chunks.formats[k], chunks.data[k]
            if not is_user:
                item = chunks.item[k] or "unknown"
                limit_ms = played.get(item)
                at = given.get(item, 0)
                given[item] = at + len(data)
                if limit_ms is not None:
                    count = round(limit_ms * fmt.sample_rate / 1000.0)
                    limit = max(0, count * fmt.bytes_per_sample)
                    data = data[: max(0, limit - at)]
            decoded = pcm16_samples(data, fmt)
            if decoded is not None and len(decoded):
                entry = (chunks.time_s[k], decoded, fmt.sample_rate, fmt)
                (user if is_user else heard).append(entry)
    channels = (
        _channel(user, session.start_s, sample_rate, USER_JITTER_S),
        _channel(heard, session.start_s, sample_rate, ASSISTANT_GAP_S),
    )
    lengths = [
        [
            (start, resampled_count(sum(len(c) for c in run), run_rate, sample_rate))
            for start, run, run_rate in runs
        ]
        for runs in channels
    ]
    frames = max((start + n for spans in lengths for start, n in spans), default=0)
    mix = np.zeros((frames, 2), dtype="<i2")
    for channel, (runs, spans) in enumerate(zip(channels, lengths, strict=True)):
        out = mix[:, channel]
        for (start, run, run_rate), (_, length) in zip(runs, spans, strict=True):
            if run_rate == sample_rate:  # chunk by chunk: no copy of the run
                for samples in run:
                    out[start : start + len(samples)] = samples
                    start += len(samples)
            else:
                joined = run[0] if len(run) == 1 else np.concatenate(run)
                resample(joined, run_rate, sample_rate, out[start : start + length])
    return mix
