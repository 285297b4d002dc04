"""A small Chrome DevTools Protocol client for headless Chromium (browser checks, screenshots).

Runs Chromium with ``--remote-debugging-port=0``, reads the port it chose from the
``DevToolsActivePort`` file in a private user-data directory, and speaks CDP over
aiohttp's websocket client (flat sessions: one browser socket, commands routed to a
page by ``sessionId``). Only what the dashboard needs: open a page, evaluate
JavaScript, wait for a condition in the page, collect console errors, take a PNG.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
STARTUP_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0

JSONDict = dict[str, Any]


class CDPError(Exception):
    """The browser could not be started, or a DevTools command failed."""


class Browser:
    """One headless Chromium process and its DevTools connection.

    ``async with Browser() as browser: page = await browser.new_page()``
    """

    def __init__(
        self,
        executable: str = CHROMIUM,
        *,
        extra_flags: tuple[str, ...] = (),
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.executable = executable
        self.extra_flags = extra_flags
        self.startup_timeout_s = startup_timeout_s
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JSONDict]] = {}
        self._listeners: list[Callable[[str, JSONDict, str | None], None]] = []

    async def __aenter__(self) -> Browser:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if not os.access(self.executable, os.X_OK):
            raise CDPError(f"{self.executable} is not an executable file (run scripts/ensure-chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="mpg-cdp-")
        profile = Path(self._profile.name)
        args = [*CHROMIUM_FLAGS, *self.extra_flags, f"--user-data-dir={profile}", "about:blank"]
        # Its own process group, so close() can end Chromium's helper processes with it.
        self._process = await asyncio.create_subprocess_exec(
            self.executable,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port, path = await self._devtools_address(profile / "DevToolsActivePort")
            self._http = aiohttp.ClientSession()
            self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        except BaseException:
            await self.close()
            raise
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def _devtools_address(self, port_file: Path) -> tuple[int, str]:
        """Chromium writes the port it chose (and the browser's socket path) once it is ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout_s
        while loop.time() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise CDPError(f"Chromium exited with status {self._process.returncode} during start-up")
            with contextlib.suppress(FileNotFoundError):
                lines = (await asyncio.to_thread(port_file.read_text)).split()
                if len(lines) >= 2 and lines[0].isdigit():
                    return int(lines[0]), lines[1]
            # Nothing to await: the file appears when Chromium has bound its port.
            await asyncio.sleep(0.05)
        raise CDPError(f"Chromium did not open its DevTools port within {self.startup_timeout_s:.0f}s")

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif "method" in data:
                for listener in list(self._listeners):
                    listener(data["method"], data.get("params", {}), data.get("sessionId"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CDPError("the DevTools connection closed"))
        self._pending.clear()

    async def send(
        self, method: str, params: JSONDict | None = None, *, session_id: str | None = None, timeout: float = 30.0
    ) -> JSONDict:
        if self._ws is None or self._ws.closed:
            raise CDPError("the browser is not connected")
        message_id = next(self._ids)
        message: JSONDict = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps(message))
        try:
            async with asyncio.timeout(timeout):
                reply = await future
        finally:
            self._pending.pop(message_id, None)
        if "error" in reply:
            raise CDPError(f"{method} failed: {reply['error'].get('message', reply['error'])}")
        result: JSONDict = reply.get("result", {})
        return result

    def listen(self, callback: Callable[[str, JSONDict, str | None], None]) -> Callable[[], None]:
        """Call ``callback(method, params, session_id)`` for every DevTools event."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def new_page(self, width: int = 1440, height: int = 900) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.setup(width, height)
        return page

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self.send("Browser.close", timeout=5.0)
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        if self._http is not None:
            await self._http.close()
        process = self._process
        if process is not None and process.returncode is None:
            try:
                async with asyncio.timeout(5.0):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self._profile is not None:
            self._profile.cleanup()
        self._ws = self._http = self._reader = self._process = self._profile = None


class Page:
    """One tab, driven through a flat DevTools session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id
        self.errors: list[str] = []
        """Uncaught exceptions, ``console.error`` calls and browser log errors (CSP violations among them)."""
        self._waiters: list[tuple[str, asyncio.Future[JSONDict]]] = []
        browser.listen(self._on_event)

    async def send(self, method: str, params: JSONDict | None = None, timeout: float = COMMAND_TIMEOUT_S) -> JSONDict:
        return await self.browser.send(method, params, session_id=self.session_id, timeout=timeout)

    async def setup(self, width: int, height: int) -> None:
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            await self.send(domain)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _on_event(self, method: str, params: JSONDict, session_id: str | None) -> None:
        if session_id != self.session_id:
            return
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "exception")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.errors.append(f"console.error: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip())
        for waited, future in list(self._waiters):
            if waited == method and not future.done():
                future.set_result(params)

    async def navigate(self, url: str, timeout: float = COMMAND_TIMEOUT_S) -> None:
        """Open ``url`` and wait for its load event."""
        loaded: asyncio.Future[JSONDict] = asyncio.get_running_loop().create_future()
        waiter = ("Page.loadEventFired", loaded)
        self._waiters.append(waiter)
        try:
            result = await self.send("Page.navigate", {"url": url})
            if result.get("errorText"):
                raise CDPError(f"navigation to {url} failed: {result['errorText']}")
            async with asyncio.timeout(timeout):
                await loaded
        finally:
            self._waiters.remove(waiter)

    async def evaluate(self, expression: str, *, timeout: float = COMMAND_TIMEOUT_S) -> Any:
        """The value of a JavaScript expression (promises are awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "error")
            raise CDPError(f"evaluate failed: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, condition: str, *, timeout: float = 10.0) -> Any:
        """Wait until the JavaScript expression ``condition`` is truthy in the page; returns its value.

        The waiting happens inside the page (checked on every DOM change and every 50 ms),
        so this is one awaited DevTools call, not a polling loop over the socket.
        """
        script = f"""
        new Promise((resolve, reject) => {{
          const check = () => {{ try {{ return ({condition}); }} catch (e) {{ return false; }} }};
          const first = check();
          if (first) {{ resolve(first); return; }}
          const done = (value) => {{
            observer.disconnect(); clearInterval(timer); clearTimeout(limit); resolve(value);
          }};
          const probe = () => {{ const value = check(); if (value) done(value); }};
          const observer = new MutationObserver(probe);
          observer.observe(document, {{ subtree: true, childList: true, characterData: true, attributes: true }});
          const timer = setInterval(probe, 50);
          const limit = setTimeout(() => {{
            observer.disconnect(); clearInterval(timer);
            reject(new Error('timed out waiting for: ' + {json.dumps(condition)}));
          }}, {int(timeout * 1000)});
        }})
        """
        return await self.evaluate(script, timeout=timeout + 5.0)

    async def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scrollable page when ``full_page``)."""
        params: JSONDict = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        result = await self.send("Page.captureScreenshot", params)
        png = base64.b64decode(result["data"])
        await asyncio.to_thread(_write_file, path, png)
        return path


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
