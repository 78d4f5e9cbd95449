"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: open a page as a logged-in
Label Studio user, wait until it shows some text, and take a screenshot, as a person would see it."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket  # websocket-client

START_SECONDS = 60


def chromium() -> str:
    """The browser's path, "" when none is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or ""


class Browser:
    def __init__(self, executable: str, width: int = 1280, height: int = 1000):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-"))
        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",  # tests run as root here
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self.socket = websocket.create_connection(self._page_socket(), timeout=60)

    def _page_socket(self) -> str:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                    pages = [t for t in json.load(reply) if t["type"] == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.2)
        raise RuntimeError(f"chromium opened no DevTools port within {START_SECONDS}s")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are dropped."""
        number = next(self._ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def set_cookies(self, url: str, cookies: dict[str, str]) -> None:
        for name, value in cookies.items():
            self.send("Network.setCookie", name=name, value=value, url=url)

    def open(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", expression=expression).get("result", {}).get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def wait_until(self, expression: str, timeout: float = 30) -> Any:
        """The expression's value once it is truthy; the last value when it never was."""
        deadline = time.monotonic() + timeout
        value = self.evaluate(expression)
        while not value and time.monotonic() < deadline:
            time.sleep(0.5)
            value = self.evaluate(expression)
        return value

    def wait_for_text(self, *needles: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                return text
            time.sleep(0.5)
        raise AssertionError(f"the page never showed {needles} within {timeout:g}s; it shows: {text[:1500]}")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.kill()
            self.process.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)
