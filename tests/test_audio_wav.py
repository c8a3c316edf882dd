"""WAV headers we write ourselves (G.711) and WAV payloads we unwrap (Zhipu)."""

from __future__ import annotations

import io
import struct
import wave

from analyzer.audio.wav import encoded_wav_bytes, parse_wav, wav_bytes, wav_header
from analyzer.formats import ALAW, PCM16, ULAW, AudioFormat


def test_pcm_header_is_the_classic_44_bytes_python_reads() -> None:
    pcm = bytes(range(256)) * 4
    blob = wav_bytes(pcm, 16000)
    assert len(wav_header(len(pcm), 16000)) == 44
    with wave.open(io.BytesIO(blob)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.readframes(w.getnframes()) == pcm


def test_g711_header_has_its_format_tag_cbsize_and_fact_chunk() -> None:
    data = bytes(range(255))  # odd: needs a pad byte
    blob = encoded_wav_bytes(data, AudioFormat(ULAW, 8000))
    assert blob[:4] == b"RIFF" and blob[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<IHHIIHHH", blob, 16) == (18, 7, 1, 8000, 8000, 1, 8, 0)
    assert blob[38:42] == b"fact" and struct.unpack_from("<II", blob, 42) == (4, 255)
    assert blob[50:54] == b"data" and struct.unpack_from("<I", blob, 54)[0] == 255
    assert blob[58:] == data + b"\x00"
    assert struct.unpack_from("<I", blob, 4)[0] == len(blob) - 8
    alaw = encoded_wav_bytes(data, AudioFormat(ALAW, 8000))
    assert struct.unpack_from("<H", alaw, 20)[0] == 6


def test_parse_wav_finds_the_data_past_other_chunks_and_rejects_what_it_cannot_read() -> None:
    pcm = b"\x01\x02" * 100
    header = wav_header(len(pcm), 16000)
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde\x00"  # odd chunk, padded
    blob = header[:36] + extra + header[36:] + pcm
    info = parse_wav(blob)
    assert info is not None
    assert (info.format, info.channels) == (AudioFormat(PCM16, 16000), 1)
    assert blob[info.data_start : info.data_end] == pcm
    streaming = header[:40] + b"\xff\xff\xff\xff" + pcm  # size unknown when written
    info = parse_wav(streaming)
    assert info is not None and streaming[info.data_start : info.data_end] == pcm
    assert parse_wav(b"not a wav file at all") is None
    float_wav = bytearray(header + pcm)
    struct.pack_into("<H", float_wav, 20, 3)  # IEEE float: not ours
    assert parse_wav(bytes(float_wav)) is None
