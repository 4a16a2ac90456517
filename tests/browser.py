"""Open a report in real headless Chromium and say what a reader would see.

How it works (standard library only, no Selenium/Playwright/websocket package):

1. Start ``chromium --headless --remote-debugging-port=0 --user-data-dir=<tmp>`` (plus the flags that keep
   it quiet and offline-friendly: --no-sandbox --disable-gpu --disable-quic --no-first-run
   --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage).
   Port 0 lets Chromium pick a free port; it writes the port and the browser's websocket path into
   ``<tmp>/DevToolsActivePort``, which we poll.
2. Speak the Chrome DevTools Protocol over that websocket with a ~70-line RFC 6455 client (text frames,
   client-side masking, fragmentation, ping/pong). We create a page target, attach to it in "flattened"
   session mode, and enable the Page, Runtime, Log and Network domains.
3. Navigate to ``file://<report>``, wait for ``Page.loadEventFired``, then poll until every figure div
   (``.bs-plot``, the report's plot containers) holds a plotly ``svg.main-svg`` (or time out).
4. Collect: console errors (``Runtime.consoleAPICalled`` of type error/assert), uncaught exceptions
   (``Runtime.exceptionThrown``), browser log errors (``Log.entryAdded`` level error, e.g. a failed
   resource), JavaScript dialogs (``Page.javascriptDialogOpening``: an ``alert()`` means script injection
   worked; the dialog is dismissed), and every request whose URL is not file:/data:/blob:/about: (a
   self-contained report makes none).
5. Save a full-page PNG (``Page.captureScreenshot`` with captureBeyondViewport) for a person or CI artefact.

Use from tests: ``check_report_in_browser(path, screenshot_path)``; from a shell:
``python tests/browser.py report.html [shot.png]`` prints the result as JSON.
Chromium is found at $BEYONDSCALE_CHROMIUM, /usr/bin/chromium, or chromium/chromium-browser/google-chrome
on PATH (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    # headless Chromium reports (hover: none) like a touch screen, which makes plotly pin its mode bar
    # over the figure titles; declare a desktop mouse (Blink bitmasks: hover=2, fine pointer=4)
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4",
)
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:", "chrome-error:")

# JS evaluated in the page: what the figures look like once rendered.
FIGURE_STATE_JS = """(() => {
  const plots = Array.from(document.querySelectorAll('.bs-plot'));
  const rendered = plots.filter(p => p.querySelector('svg.main-svg') && p.classList.contains('js-plotly-plot'));
  return {n_figures: plots.length, n_rendered: rendered.length, title: document.title,
          ready: document.readyState};
})()"""

# JS evaluated in the page: every top-level section of the report, with what it shows (for
# "every section rendered": a heading, no "empty" placeholder, its tables and plots).
SECTIONS_JS = """Array.from(document.querySelectorAll('main > section')).map(s => ({
  id: s.id, title: (s.querySelector('h2') || {}).textContent || '',
  empty: Array.from(s.querySelectorAll('.empty')).map(e => e.textContent.trim()),
  subsections: Array.from(s.querySelectorAll('h3')).map(h => h.textContent.trim()),
  n_tables: s.querySelectorAll('table').length, n_plots: s.querySelectorAll('.bs-plot').length,
  n_rendered: Array.from(s.querySelectorAll('.bs-plot')).filter(p => p.querySelector('svg.main-svg')).length,
  height: s.getBoundingClientRect().height}))"""


def artifacts_dir() -> Path:
    """CI artefact folder: $BEYONDSCALE_ARTIFACTS, default ./artifacts/ (created)."""
    path = Path(os.environ.get("BEYONDSCALE_ARTIFACTS", "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None."""
    env = os.environ.get("BEYONDSCALE_CHROMIUM")
    if env and Path(env).exists():
        return env
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    """Chromium could not be started or stopped answering."""


class _WebSocket:
    """Just enough of RFC 6455 for the DevTools protocol on localhost."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BrowserError("DevTools websocket closed during the handshake")
            head += chunk
        head, self._buf = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise BrowserError(f"DevTools websocket handshake refused: {head[:200]!r}")

    def _frame(self) -> tuple[int, bool, bytes]:
        """Next frame (opcode, fin, payload). Bytes are consumed only once a whole frame is buffered,
        so a timeout in the middle of a frame loses nothing."""
        while True:
            buf = self._buf
            if len(buf) >= 2:
                n, pos = buf[1] & 0x7F, 2
                if n == 126 and len(buf) >= 4:
                    n, pos = struct.unpack(">H", buf[2:4])[0], 4
                elif n == 127 and len(buf) >= 10:
                    n, pos = struct.unpack(">Q", buf[2:10])[0], 10
                masked = bool(buf[1] & 0x80)
                if (buf[1] & 0x7F) < 126 or pos > 2:
                    end = pos + (4 if masked else 0) + n
                    if len(buf) >= end:
                        payload = buf[end - n:end]
                        if masked:
                            mask = buf[pos:pos + 4]
                            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                        self._buf = buf[end:]
                        return buf[0] & 0x0F, bool(buf[0] & 0x80), payload
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise BrowserError("DevTools websocket closed")
            self._buf += chunk

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header.append(0x80 | n)
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes(header) + mask + masked)

    def send(self, message: str) -> None:
        self._send_frame(0x1, message.encode("utf-8"))

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            opcode, fin, payload = self._frame()
            if opcode == 0x8:
                raise BrowserError("DevTools websocket closed by the browser")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode("utf-8")

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(max(seconds, 0.01))

    def close(self) -> None:
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class _DevTools:
    """A DevTools session: commands with ids, events buffered for the caller."""

    def __init__(self, ws: _WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0,
             browser_level: bool = False) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not browser_level:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply is None:
                raise BrowserError(f"no answer to {method} within {timeout:.0f}s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _next(self, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.ws.settimeout(remaining)
        try:
            msg = json.loads(self.ws.recv())
        except TimeoutError:
            return None
        if "method" in msg:
            self.events.append(msg)
            self._on_event(msg)
        return msg

    def _on_event(self, msg: dict[str, Any]) -> None:
        if msg["method"] == "Page.javascriptDialogOpening":  # never let alert() block the page
            self.ws.send(json.dumps({"id": 10**9 + len(self.events), "sessionId": self.session,
                                     "method": "Page.handleJavaScriptDialog", "params": {"accept": False}}))

    def wait_for(self, method: str, timeout: float, since: int = 0) -> dict[str, Any] | None:
        """First event ``method`` at index >= ``since`` of the event log, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        for ev in self.events[since:]:
            if ev["method"] == method:
                return ev
        while time.monotonic() < deadline:
            msg = self._next(deadline)
            if msg is None:
                break
            for ev in self.events[seen:]:
                if ev["method"] == method:
                    return ev
            seen = len(self.events)
        return None

    def pump(self, seconds: float) -> None:
        """Read events for a while (lets late console messages arrive)."""
        deadline = time.monotonic() + seconds
        while self._next(deadline) is not None:
            pass

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluate failed: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")


def _console_text(params: dict[str, Any]) -> str:
    out = []
    for arg in params.get("args", []):
        out.append(str(arg.get("value", arg.get("description", arg.get("type", "")))))
    return " ".join(out)


def _collect(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    errors, dialogs, external = [], [], []
    for ev in events:
        method, p = ev["method"], ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append("console." + p["type"] + ": " + _console_text(p))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            errors.append(f"log.{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Page.javascriptDialogOpening":
            dialogs.append(f"{p.get('type')}: {p.get('message')}")
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                external.append(url)
    return {"console_errors": errors, "dialogs": dialogs, "external_requests": external}


def check_report_in_browser(
    path: str | os.PathLike[str],
    screenshot_path: str | os.PathLike[str] | None = None,
    *,
    expressions: dict[str, str] | None = None,
    width: int = 1280,
    height: int = 900,
    render_timeout: float = 60.0,
    max_screenshot_height: int = 16000,
    tile_height: int | None = None,
    chromium: str | None = None,
) -> dict[str, Any]:
    """Open ``path`` from disk in headless Chromium; report what rendered and what went wrong.

    Returns ``dict(console_errors, n_figures, n_rendered, title, dialogs, external_requests, screenshot,
    values)`` where ``values`` holds the results of ``expressions`` ({name: JS expression}) evaluated in
    the page after rendering. With ``tile_height`` the page is also saved in tiles of that height
    (``<stem>-01.png``, ...; listed under ``tiles``), easier to look at than one very tall image.
    Raises `BrowserError` when Chromium is missing or does not start.
    """
    binary = chromium or find_chromium()
    if not binary:
        raise BrowserError("no Chromium found (set BEYONDSCALE_CHROMIUM or apt-get install chromium)")
    report = Path(path).resolve()
    if not report.is_file():
        raise FileNotFoundError(report)
    profile = Path(tempfile.mkdtemp(prefix="bs-chromium-"))
    log_path = profile / "chromium.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--window-size={width},{height}", "about:blank"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    ws = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BrowserError(f"Chromium did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.05)
        port, ws_path = port_file.read_text().splitlines()[:2]
        ws = _WebSocket(f"ws://127.0.0.1:{port.strip()}{ws_path.strip()}")
        cdp = _DevTools(ws)
        target = cdp.call("Target.createTarget", {"url": "about:blank"}, browser_level=True)["targetId"]
        cdp.session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                               browser_level=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable")
        cdp.call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        since = len(cdp.events)
        cdp.call("Page.navigate", {"url": report.as_uri()})
        if cdp.wait_for("Page.loadEventFired", render_timeout, since) is None:
            raise BrowserError(f"{report} did not finish loading within {render_timeout:.0f}s")
        state: dict[str, Any] = {}
        deadline = time.monotonic() + render_timeout
        while time.monotonic() < deadline:
            state = cdp.evaluate(FIGURE_STATE_JS) or {}
            if state.get("n_rendered", 0) >= state.get("n_figures", 0):
                break
            cdp.pump(0.25)
        cdp.pump(0.5)  # late console messages
        values = {name: cdp.evaluate(expr) for name, expr in (expressions or {}).items()}
        shot, tiles = None, []
        if screenshot_path is not None:
            metrics = cdp.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics.get("contentSize") or {}
            full_h = int(min(max(size.get("height", height), height), max_screenshot_height))
            data = cdp.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": full_h, "scale": 1},
            }, timeout=120)["data"]
            shot = Path(screenshot_path)
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(data))
            for i, top in enumerate(range(0, full_h, tile_height) if tile_height else []):
                tile = cdp.call("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": top, "width": width, "height": min(tile_height, full_h - top),
                             "scale": 1},
                }, timeout=120)["data"]
                tiles.append(str(shot.with_name(f"{shot.stem}-{i + 1:02d}{shot.suffix}")))
                Path(tiles[-1]).write_bytes(base64.b64decode(tile))
        out: dict[str, Any] = {
            **_collect(cdp.events),
            "n_figures": int(state.get("n_figures", 0)),
            "n_rendered": int(state.get("n_rendered", 0)),
            "title": state.get("title", ""),
            "screenshot": str(shot) if shot else None,
            "tiles": tiles,
            "values": values,
        }
        try:
            cdp.call("Browser.close", browser_level=True, timeout=5)
        except (BrowserError, OSError):
            pass
        return out
    finally:
        if ws is not None:
            ws.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python tests/browser.py REPORT.html [SCREENSHOT.png]")
    result = check_report_in_browser(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["console_errors"] or result["n_rendered"] < result["n_figures"] else 0)
