"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools protocol, for the
tests that must see what a user's browser sees: a page's scripts run, its websockets connect,
its canvas is drawn.

Only the standard library and ``websocket-client`` are used: Chromium is started with
``--remote-debugging-port=0`` and its own profile directory, the port it chose is read from
``DevToolsActivePort``, a tab is opened on the URL and JavaScript is evaluated in it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket


class Browser:
    """One headless Chromium with one tab; use as a context manager."""

    def __init__(self) -> None:
        binary = shutil.which("chromium")
        assert binary, "chromium is not installed (the README's test command installs it)"
        self._profile = tempfile.TemporaryDirectory(prefix="ferrostack-chromium-")
        self._proc = subprocess.Popen(
            [
                binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", "--remote-debugging-port=0", "--remote-allow-origins=*",
                f"--user-data-dir={self._profile.name}", "--window-size=1024,768", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group: closing ends its renderers and helpers too.
            start_new_session=True,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            assert self._proc.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.1)
        self.port = int(port_file.read_text().splitlines()[0])
        self._ws: websocket.WebSocket | None = None
        self._next_id = 0

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait(timeout=10)
        shutil.rmtree(self._profile.name, ignore_errors=True)

    def open(self, url: str) -> None:
        """Opens ``url`` in a new tab that later calls act on."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{url}", method="PUT")
        target = json.loads(urllib.request.urlopen(req, timeout=10).read())
        self._ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)

    def _call(self, method: str, **params) -> dict:
        assert self._ws is not None, "open a page first"
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == self._next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        r = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        """Polls ``expression`` until it is truthy and returns it."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            assert time.monotonic() < deadline, f"never true in the page: {expression}"
            time.sleep(0.2)
