"""The capture addon's options (``mitmdump -s addon/capture.py --set rt_...``) and the values
each one takes."""

from __future__ import annotations

from mitmproxy.addonmanager import Loader

from analyzer.protocols import default_filter

# Every endpoint the protocol adapters declare: Realtime paths ending in /realtime, GPT-Live's
# /v1/live/sessions (Azure /openai/v1/live/sessions) and its sideband .../{id}/attach, Gemini
# Live's BidiGenerateContent (analyzer/protocols/gemini_wire.py).
DEFAULT_FILTER = default_filter()
AUDIO_MODES = ("keep", "drop")
LAYOUTS = ("flat", "partitioned")
WRITERS = ("process", "inline")
KEEP_MESSAGES = ("auto", "all", "last")


def add_options(loader: Loader) -> None:
    """The addon's options (``--set rt_...``)."""
    loader.add_option(
        "rt_dir",
        str,
        "./captures",
        "Directory for realtime captures (created 0700; files 0600).",
    )
    loader.add_option(
        "rt_filter",
        str,
        DEFAULT_FILTER,
        "mitmproxy filter expression selecting the WebSocket flows to record "
        "(default: the Realtime, GPT-Live and Gemini Live endpoints).",
    )
    loader.add_option(
        "rt_audio",
        str,
        "keep",
        "keep: record audio samples; drop: record sizes and durations but no samples.",
    )
    loader.add_option(
        "rt_layout",
        str,
        "flat",
        "flat: runs directly in rt_dir; partitioned: rt_dir/date=YYYY-MM-DD/host=HOSTNAME/ "
        "(hive partitions, so many proxies' runs read as one dataset).",
    )
    loader.add_option(
        "rt_strict",
        bool,
        False,
        "Kill a realtime connection when its frames cannot be recorded "
        "(default: log loudly, count, and let the traffic flow).",
    )
    loader.add_option(
        "rt_live_log",
        bool,
        True,
        "Log one line per finished turn with speech_stopped -> first audio latency.",
    )
    loader.add_option(
        "rt_writer",
        str,
        "process",
        "process: write the capture in a process of its own (mitmdump only hands frames "
        "over); inline: write it inside mitmdump. rt_strict implies inline.",
    )
    loader.add_option(
        "rt_keep_messages",
        str,
        "auto",
        "What recorded flows keep of their WebSocket messages once recorded. all: every "
        "message (mitmproxy's own behaviour: memory grows with the traffic); last: only the "
        "last (flat memory); auto: all when something else reads them (mitmweb, the "
        "console, -w / save_stream_file, hardump), else last.",
    )
