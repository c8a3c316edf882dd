"""The mitmproxy addon that records realtime voice sessions to JSONL + Parquet.

Usage: ``rt-analyze record`` starts mitmdump with it; or ``mitmdump -s <this file>`` (the path
``python -c "import analyzer.recording.addon as a; print(a.__file__)"`` prints), with
``--set rt_dir=./captures --set rt_audio=drop ...``.

By default the files are written by a process of their own (``analyzer.recording.worker``):
mitmdump's event loop only hands each frame over a pipe. ``--set rt_writer=inline`` records
inside mitmdump instead (``rt_strict`` does too: it must know at once when a frame is lost).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmproxy import ctx, exceptions, flowfilter, http
from mitmproxy.addonmanager import Loader
from mitmproxy.websocket import WebSocketMessage

from analyzer.recording.contentview import RealtimeViewAddon
from analyzer.recording.frames import build_frame
from analyzer.recording.imports import TRIMMED_METADATA_KEY
from analyzer.recording.mitm_runtime import close_connections, message_readers
from analyzer.recording.naming import new_run_id, partition_dir
from analyzer.recording.options import (
    AUDIO_MODES,
    DEFAULT_FILTER,
    KEEP_MESSAGES,
    LAYOUTS,
    WRITERS,
    add_options,
)
from analyzer.recording.pipe import FROM_CLIENT, IS_TEXT, KEEP_AUDIO, LIVE_LOG, WriterProcess
from analyzer.recording.session import handshake_facts

if TYPE_CHECKING:
    from analyzer.recording.run import RunRecorder

log = logging.getLogger("rt_analyze.capture")

# The next seq of a session, kept on its flow (see _start).
SEQ_METADATA_KEY = "rt_analyze.next_seq"


class RealtimeCapture:
    def __init__(self) -> None:
        self.recorder: RunRecorder | None = None  # rt_writer=inline, or after the process failed
        self.writer: WriterProcess | None = None  # rt_writer=process
        self.directory: Path | None = None
        self.writer_mode: str | None = None
        self.facts: dict[str, dict[str, Any]] = {}  # open sessions handed to the writer process
        self.handles: dict[str, int] = {}
        self.proxy_running = False
        self.filter: flowfilter.TFilter | None = None
        self.keep_audio = True
        self.strict = False
        self.live_log = True
        self.seq: dict[str, int] = {}  # next seq of each session this instance records
        self.strict_closed: set[str] = set()
        self.faults = 0
        self.trim_messages = True
        self.trim_reason: str | None = None  # what was last logged about trimming

    def load(self, loader: Loader) -> None:
        add_options(loader)

    @property
    def closed(self) -> bool:
        if self.writer is not None:
            return self.writer.closed
        return self.recorder is None or self.recorder.closed

    def configure(self, updated: set[str]) -> None:
        first = self.directory is None
        if "rt_audio" in updated or first:
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
        if ctx.options.rt_writer not in WRITERS:
            raise exceptions.OptionsError(
                f"rt_writer must be 'process' or 'inline', not {ctx.options.rt_writer!r}."
            )
        # rt_strict must know at once that a frame could not be written: only inline can say.
        mode = "inline" if ctx.options.rt_strict else ctx.options.rt_writer
        if "rt_dir" in updated or "rt_layout" in updated or first or mode != self.writer_mode:
            if not ctx.options.rt_dir:
                raise exceptions.OptionsError("rt_dir must name a directory for the captures.")
            directory = Path(ctx.options.rt_dir).expanduser()
            if directory.exists() and not directory.is_dir():
                raise exceptions.OptionsError(f"rt_dir {directory} exists and is not a directory.")
            self._close_run("rt_dir changed")
            if ctx.options.rt_layout == "partitioned":
                directory = partition_dir(directory, time.time(), socket.gethostname())
            self.directory = directory
            self.writer_mode = mode
            self.seq.clear()  # sessions still open go on in the new run from their next frame
            self.writer = self.recorder = None
            if mode == "process" and not getattr(sys, "frozen", False):
                self.writer = WriterProcess(directory, new_run_id(), log_level=_log_level())
                if self.proxy_running:
                    self.writer.start()
            else:
                self.recorder = _inline_recorder(directory)
        self.strict = ctx.options.rt_strict
        self.live_log = ctx.options.rt_live_log
        self._configure_trimming()

    def _configure_trimming(self) -> None:
        choice = ctx.options.rt_keep_messages
        if choice not in KEEP_MESSAGES:
            raise exceptions.OptionsError(
                f"rt_keep_messages must be auto, all or last, not {choice!r}."
            )
        readers = message_readers() if choice == "auto" else []
        self.trim_messages = choice == "last" or (choice == "auto" and not readers)
        if self.trim_messages:
            reason = (
                "rt-analyze: recorded flows keep only their last WebSocket message "
                f"(rt_keep_messages={choice}"
                + (": nothing else reads them" if choice == "auto" else "")
                + "), so the proxy's memory stays flat"
            )
        else:
            why = f"read by {', '.join(readers)}" if readers else "rt_keep_messages=all"
            reason = (
                f"rt-analyze: recorded flows keep all their WebSocket messages ({why}); "
                "the proxy's memory grows with the traffic"
            )
        if reason != self.trim_reason:  # once at start, and again only if it changes
            log.info(reason)
            self.trim_reason = reason

    def running(self) -> None:
        # Start the writer process now, not at the first session: it takes a second or two to
        # import pyarrow, and frames that arrive meanwhile would fill its pipe.
        self.proxy_running = True
        if self.writer is not None and not self.closed:
            self.writer.start()

    def _wanted(self, flow: http.HTTPFlow) -> bool:
        return flow.websocket is not None and self.filter is not None and self.filter(flow)

    def _run_id(self) -> str:
        if self.writer is not None:
            return self.writer.run_id
        assert self.recorder is not None
        return self.recorder.run_id

    def _start(self, flow: http.HTTPFlow) -> None:
        response_headers = list(flow.response.headers.items(multi=True)) if flow.response else []
        facts = handshake_facts(
            session_id=flow.id,
            run_id=self._run_id(),
            url=flow.request.pretty_url,
            request_headers=flow.request.headers.items(multi=True),
            response_headers=response_headers,
            start_s=(flow.response.timestamp_end if flow.response else None) or time.time(),
            audio_kept=self.keep_audio,
        )
        # The counter lives on the flow too, so a session that outlives an addon reload goes on
        # numbering where the previous instance stopped and reads back in order.
        self.seq[flow.id] = flow.metadata.get(SEQ_METADATA_KEY, 0)
        if self.writer is not None:
            self.facts[flow.id] = facts
            handle = self.writer.start_session(facts)
            if handle is not None:
                self.handles[flow.id] = handle
                return
            self._fall_back()  # it starts this session too, from self.facts
            return
        assert self.recorder is not None
        self.recorder.start_session(facts)

    def _fall_back(self) -> None:
        """The writer process is gone: record the rest of the run inside the proxy, in a new
        run (the process closes its own with what it had read)."""
        assert self.writer is not None and self.directory is not None
        self.writer.close(timeout_s=0)
        self.writer = None
        self.handles.clear()
        self.recorder = _inline_recorder(self.directory)
        for facts in self.facts.values():
            self.recorder.start_session({**facts, "run_id": self.recorder.run_id})
        self.facts.clear()

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        try:
            if not self.closed and self._wanted(flow):
                self._start(flow)
        except Exception:
            self._fault("websocket_start", flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        if self.closed:
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
            writer = self.writer
            if writer is not None:
                flags = (
                    (FROM_CLIENT if message.from_client else 0)
                    | (IS_TEXT if message.is_text else 0)
                    | (KEEP_AUDIO if self.keep_audio else 0)
                    | (LIVE_LOG if self.live_log else 0)
                )
                handle = self.handles[flow.id]
                if writer.frame(handle, seq, message.timestamp, flags, message.content):
                    return
                self._fall_back()  # this frame did not reach the process: record it here
            self._record_inline(flow, seq, message)
        except Exception:
            self._fault("websocket_message", flow)
        finally:
            # mitmproxy keeps every message of a flow until it closes; we have recorded them.
            # The last stays: mitmproxy's dumper and the hooks after this one read it.
            if self.trim_messages and flow.id in self.seq:
                del flow.websocket.messages[:-1]
                flow.metadata[TRIMMED_METADATA_KEY] = True

    def _record_inline(self, flow: http.HTTPFlow, seq: int, message: WebSocketMessage) -> None:
        assert self.recorder is not None
        rec = build_frame(
            flow.id,
            seq,
            message.timestamp,
            message.from_client,
            message.is_text,
            message.content,
            keep_audio=self.keep_audio,
            audio_paths=self.recorder.audio_paths(flow.id),
        )
        self.recorder.log_turns(self.live_log)
        if not self.recorder.record_frame(rec) and self.strict:
            message.drop()
            self._close_unrecordable(flow)

    def _close_unrecordable(self, flow: http.HTTPFlow) -> None:
        self.strict_closed.add(flow.id)
        log.error("rt-analyze: rt_strict is set; closing session %s", flow.id)
        if not close_connections(flow):
            log.error("rt-analyze: could not close %s; dropping its frames instead", flow.id)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        try:
            if self.closed or flow.id not in self.seq:
                return
            ws = flow.websocket
            assert ws is not None
            end = {
                "end_s": ws.timestamp_end or time.time(),
                "close_code": ws.close_code,
                "close_reason": ws.close_reason,
                "closed_by_client": ws.closed_by_client,
            }
            handle = self.handles.pop(flow.id, None)
            if self.writer is None or handle is None or not self.writer.end_session(handle, **end):
                if self.writer is not None:
                    self._fall_back()  # the session was started again in the new run: end it
                assert self.recorder is not None
                self.recorder.end_session(flow.id, **end)
            self.seq.pop(flow.id, None)
            self.facts.pop(flow.id, None)
        except Exception:
            self._fault("websocket_end", flow)

    def done(self) -> None:
        # Runs before websocket_end of sessions still open: the recorder ends them itself and
        # ignores anything later.
        self._close_run("proxy shut down")

    def _close_run(self, reason: str) -> None:
        if self.writer is not None:
            writer = self.writer
            if not writer.started:  # no session yet: no process, no files
                writer.closed = True
            else:
                # The process ends the open sessions, writes the summary and the Parquet footer,
                # and logs the run's closing lines itself.
                writer.close(faults=self.faults)
            if writer.stalls:
                log.info(
                    "rt-analyze: the writer process of run %s made the proxy wait %d times "
                    "(longest %.1f ms)",
                    writer.run_id,
                    writer.stalls,
                    writer.max_stall_s * 1000,
                )
        if self.recorder is not None:
            summary = self.recorder.close(end_open_sessions_reason=reason)
            if summary["frames_not_recorded"] or self.faults:
                log.error(
                    "rt-analyze: %d frames NOT recorded and %d addon faults in run %s",
                    summary["frames_not_recorded"],
                    self.faults,
                    summary["run_id"],
                )
        self.facts.clear()
        self.handles.clear()

    def _fault(self, hook: str, flow: http.HTTPFlow) -> None:
        self.faults += 1
        log.exception(
            "rt-analyze: addon fault in %s for %s (traffic keeps flowing; fault #%d)",
            hook,
            flow.request.pretty_url,
            self.faults,
        )


def _inline_recorder(directory: Path) -> RunRecorder:
    """A run written inside mitmdump (rt_writer=inline, or after the writer process failed).
    Its writers need pyarrow and pandas (~85 MB of mitmdump's memory), imported only now: with
    the writer process, mitmdump never loads them. Falling back mid-session pays the import
    (~0.5 s) once, on the event loop; mitmproxy holds the frames meanwhile."""
    from analyzer.recording.run import RunRecorder

    return RunRecorder(directory)


def _log_level() -> str:
    """mitmdump's own verbosity, so the writer process is as quiet as mitmdump."""
    try:
        return str(ctx.options.termlog_verbosity)
    except (AttributeError, KeyError):
        return "info"


def make_addons() -> list[object]:
    """The recorder and the realtime contentview for mitmweb and the console."""
    return [RealtimeCapture(), RealtimeViewAddon(DEFAULT_FILTER)]


# mitmdump -s loads this file as a script of its own and takes its addons from here.
addons = make_addons()
