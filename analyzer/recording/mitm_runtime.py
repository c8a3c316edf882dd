"""What the addon asks of the running mitmproxy: who else reads flows, how to cut a connection."""

from __future__ import annotations

from mitmproxy import ctx, http


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


def message_readers() -> list[str]:
    """What in this mitmproxy reads flows' WebSocket messages after they pass: an interactive
    flow list (mitmweb, the console), a flow file (-w), a HAR dump."""
    readers = []
    if ctx.master.addons.get("view") is not None:
        readers.append("the flow view (mitmweb / console)")
    options = ctx.options
    if "save_stream_file" in options and options.save_stream_file:
        readers.append("-w / save_stream_file")
    if "hardump" in options and options.hardump:
        readers.append("hardump")
    return readers
