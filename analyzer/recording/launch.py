"""``rt-analyze record``: mitmdump with the packaged addon, and how to point a client at it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

# Where each preset's realtime traffic goes (reverse mode). Azure has one host per resource.
UPSTREAM_PRESETS = {
    "openai": "https://api.openai.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
AZURE_HOST = "https://{resource}.openai.azure.com"
MODES = ("regular", "local", "wireguard")
# mitmdump's line once it listens: "... listening at 127.0.0.1:8080." (reverse, regular,
# wireguard), or "... started." (local mode has no port).
READY = re.compile(r"listening at \S*?:(\d+)\.?\s*$|\bstarted\.\s*$")
STOP_TIMEOUT_S = 60.0


class RecordError(ValueError):
    """Bad options for ``rt-analyze record``, or mitmdump could not run."""


@dataclass(frozen=True)
class RecordPlan:
    """What ``rt-analyze record`` runs: mitmdump's mode, where it listens, its options."""

    mode: str  # mitmdump's --mode: reverse:URL, regular, local[:PROCESS], wireguard
    port: int
    listen_host: str
    rt_dir: Path
    settings: tuple[tuple[str, str], ...] = field(default=())  # --set NAME=VALUE, in order

    @property
    def upstream(self) -> str | None:
        return self.mode.removeprefix("reverse:") if self.mode.startswith("reverse:") else None

    @property
    def confdir(self) -> Path:
        """Where mitmproxy keeps its CA (``--set confdir=...``, else ``~/.mitmproxy``)."""
        for name, value in reversed(self.settings):
            if name == "confdir":
                return Path(value).expanduser()
        return Path("~/.mitmproxy").expanduser()

    @property
    def ca_file(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"


def resolve_upstream(value: str) -> str:
    """``openai``, ``gemini``, ``azure:RESOURCE`` or a URL -> the URL reverse mode forwards to."""
    if value in UPSTREAM_PRESETS:
        return UPSTREAM_PRESETS[value]
    if value == "azure" or value.startswith("azure:"):
        resource = value.partition(":")[2]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", resource):
            raise RecordError(
                "Azure OpenAI has one host per resource: pass --upstream azure:RESOURCE "
                "or --upstream https://RESOURCE.openai.azure.com."
            )
        return AZURE_HOST.format(resource=resource)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise RecordError(
            f"--upstream {value!r} is neither a preset (openai, gemini, azure:RESOURCE) "
            "nor a URL such as https://api.example.com."
        )
    # mitmproxy's reverse mode takes http(s); a WebSocket upgrade goes over either.
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def parse_settings(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--set NAME=VALUE`` options, checked for shape (mitmdump checks the names)."""
    settings = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise RecordError(f"--set {pair!r}: write NAME=VALUE, e.g. --set rt_audio=drop.")
        settings.append((name, value))
    return tuple(settings)


def make_plan(
    upstream: str | None,
    mode: str | None,
    port: int,
    listen_host: str | None,
    rt_dir: Path,
    settings: Sequence[str] = (),
) -> RecordPlan:
    if upstream is not None and mode is not None:
        raise RecordError("pass --upstream (reverse proxy) or --mode, not both.")
    if upstream is not None:
        mitm_mode = f"reverse:{resolve_upstream(upstream)}"
    else:
        mitm_mode = mode or "regular"
        if mitm_mode.partition(":")[0] not in MODES:
            raise RecordError(f"--mode must be one of {', '.join(MODES)} (or local:PROCESS).")
    if not 0 <= port <= 65535:
        raise RecordError(f"--port {port} is not a port number (0 picks a free one).")
    # Loopback unless the clients are elsewhere: a WireGuard peer is another device.
    host = (
        listen_host
        if listen_host is not None
        else ("" if mitm_mode == "wireguard" else "127.0.0.1")
    )
    return RecordPlan(mitm_mode, port, host, rt_dir, parse_settings(settings))


def mitmdump_executable() -> Path:
    """The mitmdump installed beside this Python (the one that can import the addon), else the
    first on PATH."""
    beside = Path(sys.executable).parent / "mitmdump"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("mitmdump")
    if found is None:
        raise RecordError("mitmdump not found beside Python or on PATH; pip install mitmproxy.")
    return Path(found)


def addon_file() -> Path:
    """The packaged addon's source file (mitmdump -s takes a path), found without importing it."""
    spec = importlib.util.find_spec("analyzer.recording.addon")
    if spec is None or spec.origin is None:
        raise RecordError("the rt-analyze package has no recording addon; reinstall it.")
    return Path(spec.origin)


def mitmdump_args(plan: RecordPlan, mitmdump: Path, addon: Path) -> list[str]:
    args = [str(mitmdump), "--mode", plan.mode, "-s", str(addon)]
    if not plan.mode.startswith("local"):
        args += ["-p", str(plan.port)]
        if plan.listen_host:
            args += ["--listen-host", plan.listen_host]
    # flow_detail=0: no line per WebSocket message (nor URLs with their query keys); the addon
    # logs one line per turn. Later --set options win, so users can still ask for more.
    args += ["--set", "flow_detail=0", "--set", f"rt_dir={plan.rt_dir}"]
    for name, value in plan.settings:
        args += ["--set", f"{name}={value}"]
    return args


def client_instructions(plan: RecordPlan, port: int | None) -> str:
    """The screen printed once mitmdump listens: how to send a client's traffic through it."""
    host = plan.listen_host or "127.0.0.1"
    proxy = f"http://{host}:{port}"
    ws_base = f"ws://{host}:{port}"
    ca = plan.ca_file
    lines = [f"rt-analyze is recording realtime sessions to {plan.rt_dir}/ (mode {plan.mode})."]
    upstream = plan.upstream
    if upstream is not None:
        lines += [
            f"Point your client at {ws_base} instead of {upstream}:",
            f'  openai SDK      OpenAI(websocket_base_url="{ws_base}/v1")  (AsyncOpenAI too)',
            f"  any WebSocket   {ws_base}/v1/realtime?model=gpt-realtime  (Azure: "
            f"{ws_base}/openai/realtime?api-version=...&deployment=...)",
            f'  google-genai    Client(http_options={{"base_url": "https://{host}:{port}"}}) '
            "(its Live API always uses wss://),",
            f"                  with SSL_CERT_FILE={ca} so it trusts the proxy",
            "Keys and headers go through unchanged; none of them is written to the capture.",
        ]
    elif plan.mode.startswith("regular"):
        lines += [
            "Send your client through the proxy and let it trust mitmproxy's CA:",
            f"  export HTTPS_PROXY={proxy}",
            f"  export SSL_CERT_FILE={ca}",
            "  (websockets >= 15 and the openai and google-genai SDKs read both; Node: "
            f"NODE_EXTRA_CA_CERTS={ca}; a browser or phone: open http://mitm.it through the "
            "proxy)",
            "Keep your client's usual URL (wss://api.openai.com/v1/realtime...).",
        ]
    else:
        what = "this machine's processes" if plan.mode.startswith("local") else "WireGuard peers"
        lines += [
            f"mitmproxy captures {what}' traffic; no proxy setting is needed"
            + (" (configure the peer with the WireGuard config above)." if what[0] == "W" else "."),
            f"Clients must still trust mitmproxy's CA: SSL_CERT_FILE={ca} (Node: "
            "NODE_EXTRA_CA_CERTS; a phone: http://mitm.it).",
        ]
    lines.append("Press Ctrl-C to stop: the capture is closed and its report command printed.")
    return "\n".join(lines)


def capture_files(rt_dir: Path, since_s: float) -> list[Path]:
    """The runs written under ``rt_dir`` since ``since_s`` (any layout), oldest first."""
    if not rt_dir.is_dir():
        return []
    found = []
    for path in rt_dir.rglob("rt-*.parquet"):
        try:
            if path.stat().st_mtime >= since_s:
                found.append(path)
        except OSError:
            continue
    return sorted(found)


@dataclass
class RecordResult:
    exit_code: int
    port: int | None
    files: list[Path]


def run_record(
    plan: RecordPlan, echo: Callable[[str], None], mitmdump: Path | None = None
) -> RecordResult:
    """Run mitmdump until it exits (Ctrl-C / SIGTERM are passed on to it), relaying its output
    and printing the client instructions once it listens."""
    args = mitmdump_args(plan, mitmdump or mitmdump_executable(), addon_file())
    started_s = time.time() - 1  # mtimes have a coarse clock on some filesystems
    try:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except OSError as exc:
        raise RecordError(f"cannot start {args[0]}: {exc.strerror}.") from exc

    # A Ctrl-C at a terminal reaches mitmdump too (same process group); one sent to this process
    # alone must be passed on. mitmdump shuts down once however many it gets.
    def pass_on(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    port: int | None = None
    ready = False
    try:
        assert process.stdout is not None
        for line in process.stdout:
            echo(line.rstrip("\n"))
            match = READY.search(line) if not ready else None
            if match:
                ready = True
                port = int(match.group(1)) if match.group(1) else None
                echo("")
                echo(client_instructions(plan, port))
                echo("")
        exit_code = process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:  # an error here: do not leave mitmdump behind
            process.kill()
            process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not ready:
        raise RecordError(
            f"mitmdump exited ({exit_code}) before it listened; see its output above."
        )
    return RecordResult(exit_code, port, capture_files(plan.rt_dir, started_s))
