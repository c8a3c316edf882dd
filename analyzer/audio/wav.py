"""WAV files: writing PCM and G.711 headers ourselves, and unwrapping WAV payloads."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from analyzer.formats import ALAW, PCM16, ULAW, AudioFormat

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7

_TAG_BY_ENCODING = {PCM16: WAVE_FORMAT_PCM, ULAW: WAVE_FORMAT_MULAW, ALAW: WAVE_FORMAT_ALAW}
_ENCODING_BY_TAG = {tag: encoding for encoding, tag in _TAG_BY_ENCODING.items()}


def wav_header(
    data_bytes: int, sample_rate: int, channels: int = 1, encoding: str = PCM16
) -> bytes:
    """The RIFF header to put before ``data_bytes`` of samples. PCM gets the classic 44-byte
    header; G.711 (which Python's ``wave`` cannot write) the 18-byte ``fmt`` chunk and the
    ``fact`` chunk that non-PCM WAV files must have. An odd-sized data chunk needs one pad byte
    after it (see :func:`wav_padding`), counted in the RIFF size."""
    tag = _TAG_BY_ENCODING.get(encoding)
    if tag is None:
        raise ValueError(f"WAV files here hold pcm16, g711_ulaw or g711_alaw, not {encoding}.")
    sample_bytes = 2 if tag == WAVE_FORMAT_PCM else 1
    block_align = channels * sample_bytes
    fmt = struct.pack(
        "<HHIIHH",
        tag,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        8 * sample_bytes,
    )
    chunks = b""
    if tag == WAVE_FORMAT_PCM:
        chunks += b"fmt " + struct.pack("<I", len(fmt)) + fmt
    else:
        fmt += struct.pack("<H", 0)  # cbSize: no extra format bytes
        chunks += b"fmt " + struct.pack("<I", len(fmt)) + fmt
        chunks += b"fact" + struct.pack("<II", 4, data_bytes // block_align)
    chunks += b"data" + struct.pack("<I", data_bytes)
    riff_size = 4 + len(chunks) + data_bytes + data_bytes % 2
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks


def wav_padding(data_bytes: int) -> bytes:
    """The pad byte RIFF wants after an odd-sized data chunk."""
    return b"\x00" * (data_bytes % 2)


def wav_bytes(pcm16: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """A whole 16-bit PCM WAV file (e.g. for an HTML ``<audio>`` data URL)."""
    return wav_header(len(pcm16), sample_rate, channels) + pcm16 + wav_padding(len(pcm16))


def encoded_wav_bytes(data: bytes, audio_format: AudioFormat) -> bytes:
    """A mono WAV file holding ``data`` exactly as it is in ``audio_format`` (pcm16 or G.711)."""
    header = wav_header(len(data), audio_format.sample_rate, 1, audio_format.encoding)
    return header + data + wav_padding(len(data))


def is_wav(payload: bytes | memoryview) -> bool:
    return bytes(payload[:4]) == b"RIFF" and bytes(payload[8:12]) == b"WAVE"


@dataclass(frozen=True, slots=True)
class WavPayload:
    """What a WAV file holds: its samples' format, channel count and where the data lies."""

    format: AudioFormat
    channels: int
    data_start: int
    data_end: int


def parse_wav(payload: bytes | memoryview) -> WavPayload | None:
    """Find the ``fmt`` and ``data`` chunks of a WAV file; None when it is not one we can read
    (not RIFF/WAVE, no data chunk, or samples other than 16-bit PCM or G.711). A data size of 0
    or past the end (streaming writers) means "to the end of the payload"."""
    view = memoryview(payload)
    if len(view) < 12 or not is_wav(view):
        return None
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(view):
        chunk_id = bytes(view[pos : pos + 4])
        (size,) = struct.unpack_from("<I", view, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(view):
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", view, body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                return None
            tag, channels, rate, bits = fmt
            encoding = _ENCODING_BY_TAG.get(tag)
            if encoding is None or bits != (16 if encoding == PCM16 else 8):
                return None
            end = len(view) if size == 0 or body + size > len(view) else body + size
            return WavPayload(AudioFormat(encoding, rate), channels, body, end)
        pos = body + size + size % 2
    return None
