"""Record realtime voice sessions (OpenAI Realtime and compatible APIs) to JSONL + Parquet.

Usage: mitmdump -s addon/capture.py [--set rt_dir=./captures] [--set rt_audio=drop] ...
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

from mitmproxy import ctx, exceptions, flowfilter, http
from mitmproxy.addonmanager import Loader

try:
    import analyzer  # noqa: F401
except ImportError:  # run from a checkout without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer.recording.frames import build_frame
from analyzer.recording.live import LiveTurnLog
from analyzer.recording.run import RunRecorder, partition_dir
from analyzer.recording.session import handshake_facts

log = logging.getLogger("rt_analyze.capture")

# Every realtime endpoint we know ends its path in /realtime: OpenAI /v1/realtime, Azure
# /openai/realtime and /openai/v1/realtime, DashScope /api-ws/v1/realtime, Zhipu
# /api/paas/v4/realtime.
DEFAULT_FILTER = r'~websocket & ~u "/realtime($|[?])"'
AUDIO_MODES = ("keep", "drop")
SEQ_METADATA_KEY = "rt_analyze.next_seq"
LAYOUTS = ("flat", "partitioned")


def close_connections(flow: http.HTTPFlow) -> bool:
    """Cut both sides of a live WebSocket. flow.kill() does not reach the WebSocket layer
    (mitmproxy 11 and 12), so ask the connection handler to close the connections itself."""
    try:
        proxyserver = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections[flow.client_conn.id]
        for conn in (flow.server_conn, flow.client_conn):
            if conn in handler.transports:
                handler.close_connection(conn)
        return True
    except Exception:  # a mitmproxy without these internals: the caller drops frames instead
        return False


class RealtimeCapture:
    def __init__(self) -> None:
        self.recorder: RunRecorder | None = None
        self.filter: flowfilter.TFilter | None = None
        self.keep_audio = True
        self.strict = False
        self.live_log = True
        self.turns = LiveTurnLog()
        self.seq: dict[str, int] = {}  # next seq of each session this instance records
        self.strict_closed: set[str] = set()
        self.faults = 0

    def load(self, loader: Loader) -> None:
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
            "(default: paths ending in /realtime).",
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

    def configure(self, updated: set[str]) -> None:
        if "rt_audio" in updated or self.recorder is None:
            if ctx.options.rt_audio not in AUDIO_MODES:
                raise exceptions.OptionsError(
                    f"rt_audio must be 'keep' or 'drop', not {ctx.options.rt_audio!r}."
                )
            self.keep_audio = ctx.options.rt_audio == "keep"
        if "rt_filter" in updated or self.filter is None:
            try:
                self.filter = flowfilter.parse(ctx.options.rt_filter)
            except ValueError as exc:
                raise exceptions.OptionsError(
                    f"rt_filter is not a valid mitmproxy filter expression: {exc}"
                ) from exc
        if "rt_layout" in updated and ctx.options.rt_layout not in LAYOUTS:
            raise exceptions.OptionsError(
                f"rt_layout must be 'flat' or 'partitioned', not {ctx.options.rt_layout!r}."
            )
        if "rt_dir" in updated or "rt_layout" in updated or self.recorder is None:
            if not ctx.options.rt_dir:
                raise exceptions.OptionsError("rt_dir must name a directory for the captures.")
            directory = Path(ctx.options.rt_dir).expanduser()
            if directory.exists() and not directory.is_dir():
                raise exceptions.OptionsError(f"rt_dir {directory} exists and is not a directory.")
            if self.recorder is not None:
                self.recorder.close(end_open_sessions_reason="rt_dir changed")
            if ctx.options.rt_layout == "partitioned":
                directory = partition_dir(directory, time.time(), socket.gethostname())
            self.recorder = RunRecorder(directory)
        self.strict = ctx.options.rt_strict
        self.live_log = ctx.options.rt_live_log

    def _wanted(self, flow: http.HTTPFlow) -> bool:
        return flow.websocket is not None and self.filter is not None and self.filter(flow)

    def _start(self, flow: http.HTTPFlow) -> None:
        assert self.recorder is not None
        response_headers = list(flow.response.headers.items(multi=True)) if flow.response else []
        self.recorder.start_session(
            handshake_facts(
                session_id=flow.id,
                run_id=self.recorder.run_id,
                url=flow.request.pretty_url,
                request_headers=flow.request.headers.items(multi=True),
                response_headers=response_headers,
                start_s=(flow.response.timestamp_end if flow.response else None) or time.time(),
                audio_kept=self.keep_audio,
            )
        )
        # The counter lives on the flow too, so a session that outlives an addon reload goes on
        # numbering where the previous instance stopped and reads back in order.
        self.seq[flow.id] = flow.metadata.get(SEQ_METADATA_KEY, 0)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        try:
            if self.recorder is not None and self._wanted(flow):
                self._start(flow)
        except Exception:
            self._fault("websocket_start", flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        if self.recorder is None or self.recorder.closed:
            return
        try:
            if flow.id not in self.seq:
                # A session opened before this addon (re)loaded: record from here on.
                if not self._wanted(flow):
                    return
                self._start(flow)
            message = flow.websocket.messages[-1]
            if flow.id in self.strict_closed:
                message.drop()  # rt_strict: nothing passes unrecorded
                return
            seq = self.seq[flow.id]
            self.seq[flow.id] = flow.metadata[SEQ_METADATA_KEY] = seq + 1
            rec = build_frame(
                flow.id,
                seq,
                message.timestamp,
                message.from_client,
                message.is_text,
                message.content,
                keep_audio=self.keep_audio,
            )
            if not self.recorder.record_frame(rec) and self.strict:
                message.drop()
                self._close_unrecordable(flow)
            if self.live_log:
                line = self.turns.observe(rec)
                if line:
                    log.info(line)
        except Exception:
            self._fault("websocket_message", flow)
        finally:
            # mitmproxy keeps every message of a flow until it closes; we have recorded them.
            del flow.websocket.messages[:-1]

    def _close_unrecordable(self, flow: http.HTTPFlow) -> None:
        self.strict_closed.add(flow.id)
        log.error("rt-analyze: rt_strict is set; closing session %s", flow.id)
        if not close_connections(flow):
            log.error("rt-analyze: could not close %s; dropping its frames instead", flow.id)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        try:
            if self.recorder is None or flow.id not in self.seq:
                return
            ws = flow.websocket
            assert ws is not None
            self.recorder.end_session(
                flow.id,
                end_s=ws.timestamp_end or time.time(),
                close_code=ws.close_code,
                close_reason=ws.close_reason,
                closed_by_client=ws.closed_by_client,
            )
            self.seq.pop(flow.id, None)
            self.turns.forget(flow.id)
        except Exception:
            self._fault("websocket_end", flow)

    def done(self) -> None:
        # Runs before websocket_end of sessions still open: the recorder ends them itself and
        # ignores anything later.
        if self.recorder is not None:
            summary = self.recorder.close()
            if summary["frames_not_recorded"] or self.faults:
                log.error(
                    "rt-analyze: %d frames NOT recorded and %d addon faults in run %s",
                    summary["frames_not_recorded"],
                    self.faults,
                    summary["run_id"],
                )

    def _fault(self, hook: str, flow: http.HTTPFlow) -> None:
        self.faults += 1
        log.exception(
            "rt-analyze: addon fault in %s for %s (traffic keeps flowing; fault #%d)",
            hook,
            flow.request.pretty_url,
            self.faults,
        )


addons = [RealtimeCapture()]
