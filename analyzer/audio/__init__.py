"""Audio of captures, for every protocol: each session's user and reply streams, per-item audio
as sent, a stereo mix per session, WAV export."""

from analyzer.audio.export import ExportResult, export_audio, export_capture_audio
from analyzer.audio.items import load_audio, load_item_audio
from analyzer.audio.model import AudioCapture, AudioChunk, ItemAudio, SessionAudio, to_pcm16
from analyzer.audio.streams import SessionStreams, Stream, session_streams
from analyzer.audio.timeline import STEREO_RATE_HZ, session_stereo
from analyzer.audio.wav import encoded_wav_bytes, parse_wav, wav_bytes, wav_header

__all__ = [
    "STEREO_RATE_HZ",
    "AudioCapture",
    "AudioChunk",
    "ExportResult",
    "ItemAudio",
    "SessionAudio",
    "SessionStreams",
    "Stream",
    "encoded_wav_bytes",
    "export_audio",
    "export_capture_audio",
    "load_audio",
    "load_item_audio",
    "parse_wav",
    "session_stereo",
    "session_streams",
    "to_pcm16",
    "wav_bytes",
    "wav_header",
]
