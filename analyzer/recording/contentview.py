"""A mitmweb / mitmproxy console contentview for realtime frames (mitmproxy 11 and 12), chosen
automatically on the connections the addon records; loaded with the addon."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import contentviews, ctx, flowfilter, http
from mitmproxy.addonmanager import Loader
from mitmproxy.flow import Flow
from mitmproxy.websocket import WebSocketMessage

from analyzer.formats import AudioFormat, provider_of
from analyzer.recording.frame_text import render_frame, session_formats

log = logging.getLogger("rt_analyze.contentview")

VIEW_NAME = "Realtime"
# WebSocket frames have no content type: JSON scores 0 and mitmproxy's "auto" falls back to raw.
# Above 1 wins on the frames of realtime connections (as the built-in Socket.IO view does).
PRIORITY = 2.0
Wanted = Callable[[Flow], bool]


def frame_formats(
    flow: Flow | None, message: WebSocketMessage | None
) -> tuple[AudioFormat | None, AudioFormat | None]:
    """The audio formats in force at ``message`` (from the flow's frames kept before it)."""
    if not isinstance(flow, http.HTTPFlow) or flow.websocket is None:
        return None, None
    provider = provider_of(flow.request.host, flow.request.path.split("?")[0])
    earlier = []
    for kept in flow.websocket.messages:
        if kept is message:
            break
        earlier.append(kept.content)
    return session_formats(earlier, provider)


def prettify(data: bytes, flow: Flow | None, message: WebSocketMessage | None) -> tuple[str, str]:
    rendered = render_frame(data, frame_formats(flow, message))
    if rendered is None:
        raise ValueError("not a JSON object")  # mitmproxy falls back to raw
    return rendered


def priority(data: bytes, flow: Flow | None, message: Any, wanted: Wanted) -> float:
    if message is None or flow is None or not data.lstrip().startswith(b"{"):
        return -1.0
    return PRIORITY if wanted(flow) else -1.0


class RealtimeContentview:
    """mitmproxy 12's ``Contentview`` protocol (structural: no base class to import)."""

    name = VIEW_NAME
    syntax_highlight = "yaml"  # indented JSON reads as YAML: keys and values coloured

    def __init__(self, wanted: Wanted) -> None:
        self.wanted = wanted

    def prettify(self, data: bytes, metadata: Any) -> str:
        title, text = prettify(data, metadata.flow, metadata.websocket_message)
        return f"# {title}\n{text}"

    def render_priority(self, data: bytes, metadata: Any) -> float:
        return priority(data, metadata.flow, metadata.websocket_message, self.wanted)

    def __lt__(self, other: Any) -> bool:
        return bool(self.name < other.name)


class RealtimeView(contentviews.View):
    """mitmproxy 11's ``View`` API."""

    name = VIEW_NAME

    def __init__(self, wanted: Wanted) -> None:
        self.wanted = wanted

    def __call__(self, data: bytes, **metadata: Any) -> Any:
        try:
            title, text = prettify(data, metadata.get("flow"), metadata.get("websocket_message"))
        except ValueError:
            return None  # mitmproxy: "Couldn't parse: falling back to Raw"
        return f"{VIEW_NAME}: {title}", iter([[("text", line)] for line in text.splitlines()])

    def render_priority(self, data: bytes, **metadata: Any) -> float:
        return max(
            0.0,
            priority(data, metadata.get("flow"), metadata.get("websocket_message"), self.wanted),
        )


def make_view(wanted: Wanted) -> RealtimeContentview | RealtimeView:
    if hasattr(contentviews, "Contentview"):  # mitmproxy 12
        return RealtimeContentview(wanted)
    return RealtimeView(wanted)


class RealtimeViewAddon:
    """Registers the view while loaded; follows the capture addon's ``rt_filter``."""

    def __init__(self, default_filter: str) -> None:
        self.filter = flowfilter.parse(default_filter)
        self.view: RealtimeContentview | RealtimeView | None = None

    def _wanted(self, flow: Flow) -> bool:
        return isinstance(flow, http.HTTPFlow) and bool(self.filter(flow))

    def load(self, loader: Loader) -> None:
        view = make_view(self._wanted)
        try:
            contentviews.add(view)  # type: ignore[arg-type]
        except ValueError:  # mitmproxy 11: a second copy of the addon registered it already
            log.debug("rt-analyze: a %s contentview is already registered", VIEW_NAME)
            return
        self.view = view

    def configure(self, updated: set[str]) -> None:
        # An invalid filter: the capture addon refuses it with the error; keep the last one.
        if "rt_filter" in updated:
            with contextlib.suppress(ValueError):
                self.filter = flowfilter.parse(ctx.options.rt_filter)

    def done(self) -> None:
        # mitmproxy 12 cannot remove a view (its contentviews.remove is a no-op): a reloaded
        # addon's view replaces this one under the same name.
        if isinstance(self.view, RealtimeView):
            contentviews.remove(self.view)
        self.view = None
