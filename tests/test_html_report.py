"""The HTML report: one self-contained file that a real browser renders with plots and players,
no console errors, and captured markup shown as text (checked in headless Chromium over CDP)."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from analyzer.audio import load_item_audio
from analyzer.html_report import build_html_report, render_html_report
from analyzer.reader import read_capture
from tests.capture_factory import (
    T0,
    Event,
    appends,
    ga_response,
    ga_session_created,
    ga_vad_user_turn,
    ordered,
    record_sessions,
    usage,
)

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
ERROR_MESSAGE = "<svg onload=window.__pwned=3>"
BROWSER_TIMEOUT_S = 30.0


def hostile_session() -> list[Event]:
    """One VAD turn whose transcripts and server error carry markup, with real audio sizes."""
    error: Event = (
        T0 + 2.5,
        "server",
        {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "code": "<b>x</b>",
                "message": ERROR_MESSAGE,
            },
        },
    )
    return ordered(
        [ga_session_created(T0)],
        appends(T0 + 0.05, 10, 4800, gap_s=0.09),  # 10 x 100 ms of 24 kHz pcm16
        ga_vad_user_turn(T0 + 0.2, T0 + 0.95, "item_u1", None, 100, 900, SCRIPT, 0.2),
        ga_response(
            T0 + 1.1,
            "resp_1",
            "item_a1",
            "item_u1",
            IMG,
            [(0.1, 9600), (0.15, 9600), (0.2, 4800)],  # 500 ms of reply audio
            0.6,
            tokens=usage(10, 20, 5, 30, cached=4),
        ),
        [error],
    )


@pytest.fixture(scope="module")
def hostile_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hostile")
    run = record_sessions(
        directory,
        {"sess-<i>hostile</i>": hostile_session()},
        url="wss://api.openai.com/v1/realtime?model=gpt-realtime&x=<script>alert(1)</script>",
    )
    return Path(run.parquet_path)


@pytest.fixture(scope="module")
def report_path(hostile_capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = render_html_report(hostile_capture, out, progress=False)
    assert result.path == out and result.sessions == 1
    assert (result.audio_players, result.audio_skipped) == (3, 0)  # 2 items + the session mix
    return out


# --- without a browser ----------------------------------------------------------------------


def test_report_is_one_file_with_no_external_resources(report_path: Path) -> None:
    page = report_path.read_text(encoding="utf-8")
    assert oct(report_path.stat().st_mode & 0o777) == "0o600"  # personal data, like captures
    assert "<script" not in page.lower().replace("&lt;script", "")
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attribute.startswith(("data:image/png;base64,", "data:audio/wav;base64,", "#"))
    assert "default-src 'none'" in page  # the CSP forbids anything not inline


def test_every_captured_string_is_escaped(report_path: Path) -> None:
    page = report_path.read_text(encoding="utf-8")
    for hostile in (SCRIPT, IMG, ERROR_MESSAGE, "<b>x</b>", "<i>hostile</i>", "alert(1)</script>"):
        assert hostile not in page
    for hostile in (SCRIPT, IMG, ERROR_MESSAGE, "<i>hostile</i>"):
        assert html.escape(hostile) in page


def test_audio_beyond_the_budget_is_left_out_with_a_note(hostile_capture: Path) -> None:
    from analyzer.audio import load_audio

    capture = read_capture(hostile_capture)
    items = load_item_audio(hostile_capture)
    user_wav = len(items[0].file_bytes())
    page, budget = build_html_report(
        capture, load_audio(hostile_capture), max_audio_bytes=user_wav, progress=False
    )
    assert (budget.players, budget.skipped) == (1, 2)
    assert page.count("<audio") == 1
    assert "2 audio player(s) left out" in page
    players = re.findall(r'src="data:audio/wav;base64,([^"]+)"', page)
    assert base64.b64decode(players[0]) == items[0].file_bytes()


# --- in Chromium ----------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in (os.environ.get("RT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@dataclass
class Page:
    """A page target of a headless Chromium, driven over the DevTools protocol."""

    ws: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=BROWSER_TIMEOUT_S))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self.events.append(json.loads(self.ws.recv(timeout=deadline - time.monotonic())))

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Console messages, log entries of level warning or error, and uncaught exceptions."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                found.append(f"console.{params.get('type')}: {params.get('args')}")
            elif event.get("method") == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif event.get("method") == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") in ("warning", "error"):
                    found.append(f"log {entry.get('level')}: {entry.get('text')}")
        return found


@pytest.fixture
def chromium_page() -> Iterator[Page]:
    binary = find_chromium()
    if binary is None:
        pytest.skip(
            "no Chromium: run scripts/ensure-chromium.sh (as root) or set RT_CHROMIUM to a "
            "Chrome/Chromium binary"
        )
    with tempfile.TemporaryDirectory(prefix="rt-chromium-") as profile:
        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        # Its own process group: Chromium's helper processes outlive the browser for a moment
        # and kept writing into the profile while it was being removed.
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + BROWSER_TIMEOUT_S
            while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{binary} did not start (exit code {proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            (target,) = [t for t in targets if t["type"] == "page"]
            with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
                page = Page(ws)
                for domain in ("Page", "Runtime", "Log"):
                    page.call(f"{domain}.enable")
                yield page
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # helpers still running
            proc.wait()


# Waits (bounded) until every player has read its metadata or failed, then reports the page.
INSPECT = """
(async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.race([
    Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null : new Promise(done => {
      a.addEventListener('loadedmetadata', done, {once: true});
      a.addEventListener('error', done, {once: true});
    }))),
    new Promise(done => setTimeout(done, 8000)),
  ]);
  return {
    pwned: typeof window.__pwned,
    title: document.title,
    scripts: document.scripts.length,
    headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
    images: [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth,
                                            complete: i.complete})),
    audios: audios.map(a => ({duration: a.duration, error: a.error && a.error.code,
                              title: a.title})),
    text: document.body.innerText,
  };
})()
"""


def test_report_renders_in_chromium_with_plots_players_and_inert_markup(
    report_path: Path, hostile_capture: Path, chromium_page: Page
) -> None:
    chromium_page.call("Page.navigate", url=report_path.as_uri())
    chromium_page.wait_for("Page.loadEventFired")
    page = chromium_page.evaluate(INSPECT)

    assert page["pwned"] == "undefined" and page["scripts"] == 0
    assert page["title"] == "rt-analyze report"
    assert page["headings"][:4] == ["Summary", "Latency", "Tokens", "Payload"]
    alts = [i["alt"] for i in page["images"]]
    expected_plots = ["latency distribution", "tokens per turn", "payload by event type"]
    assert alts == [*expected_plots, "turn timeline"]
    assert all(i["complete"] and i["width"] > 300 for i in page["images"]), page["images"]

    items = load_item_audio(hostile_capture)
    players = page["audios"]
    assert [p["title"] for p in players] == [
        "whole session, stereo",
        "user audio, item item_u1",
        "assistant audio, item item_a1",
    ]
    assert all(p["error"] is None for p in players), players
    assert [i.duration_ms for i in items] == [800.0, 500.0]
    assert [p["duration"] for p in players] == pytest.approx([1.7, 0.8, 0.5], abs=0.01)

    text = page["text"]
    for hostile in (SCRIPT, IMG, ERROR_MESSAGE, "sess-<i>hostile</i>"):
        assert hostile in text  # shown as text, not parsed as markup
    assert chromium_page.problems() == []


def test_a_capture_recorded_without_audio_says_there_is_nothing_to_play(tmp_path: Path) -> None:
    run = record_sessions(tmp_path, {"quiet": hostile_session()}, keep_audio=False)
    result = render_html_report(Path(run.parquet_path), tmp_path / "r.html", progress=False)
    page = result.path.read_text(encoding="utf-8")
    assert result.audio_players == 0 and "<audio" not in page
    assert "Recorded without audio samples" in page
    assert html.escape(SCRIPT) in page  # the conversation is still there


# --- progress -------------------------------------------------------------------------------


def test_progress_yields_every_item_and_draws_on_stderr_only_when_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from analyzer.progress import NO_PROGRESS_ENV, progress_enabled, track

    assert list(track(range(3), "quiet", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")
    assert list(track([1, 2], "counting", enabled=True)) == [1, 2]
    out, _err = capsys.readouterr()
    assert out == ""  # stdout stays clean for JSON and CSV
    assert progress_enabled() is False  # pytest's stderr is not a terminal
    monkeypatch.setenv(NO_PROGRESS_ENV, "1")
    assert progress_enabled() is False and progress_enabled(True) is True
