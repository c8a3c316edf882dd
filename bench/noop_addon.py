"""The least any recording addon costs: mitmdump calls a ``websocket_message`` hook that does
nothing but keep the flow flat (``python -m bench`` compares the capture addon with it)."""

from mitmproxy import http


def websocket_message(flow: http.HTTPFlow) -> None:
    assert flow.websocket is not None
    del flow.websocket.messages[:-1]
