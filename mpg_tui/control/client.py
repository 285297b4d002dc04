"""A client of the control API, through either door: a Unix socket path or an HTTP URL.

``unix:/path/to/control.sock`` (or a bare absolute path) reaches a local gateway;
``http://host:port`` reaches a gateway's dashboard port, with the dashboard token sent
as a bearer token. The token is never put in a URL, so it cannot end up in a log line.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from mpg_tui.control.protocol import (
    API_PREFIX,
    JSON,
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ControlError,
    ProtocolError,
    check_version,
)
from mpg_tui.control.unixpath import bindable_path

CONNECT_TIMEOUT_S = 10.0
STREAM_IDLE_TIMEOUT_S = 60.0
"""A stream with no line (not even a heartbeat ping) for this long is taken as lost."""


@dataclass(frozen=True)
class Endpoint:
    """Where a gateway's control API is, and how to prove we may use it."""

    url: str
    """``unix:/path`` or ``http(s)://host:port``."""
    label: str = ""
    """How the cockpit names this gateway (several gateways in one cockpit)."""
    token: str | None = field(default=None, repr=False)

    @property
    def socket_file(self) -> Path | None:
        if self.url.startswith("unix:"):
            return Path(self.url.removeprefix("unix:"))
        return Path(self.url) if self.url.startswith("/") else None

    @property
    def base_url(self) -> str:
        if self.socket_file is not None:
            return "http://localhost"
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not a gateway address: {self.url!r} (expected http://host:port or unix:/path)")
        return f"{parts.scheme}://{parts.netloc}"

    def describe(self) -> str:
        return str(self.socket_file) if self.socket_file is not None else self.base_url


def default_label(url: str) -> str:
    """A short name for a gateway when none is given: its host and port."""
    if url.startswith(("unix:", "/")):
        return "local"
    return urlsplit(url).netloc or url


class ControlClient:
    """``async with ControlClient(endpoint) as client:`` snapshot, events and commands."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._base = endpoint.base_url
        self._stack = AsyncExitStack()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ControlClient:
        connector: aiohttp.BaseConnector
        socket_file = self.endpoint.socket_file
        if socket_file is not None:
            where = self._stack.enter_context(bindable_path(socket_file))
            connector = aiohttp.UnixConnector(path=where)
        else:
            connector = aiohttp.TCPConnector()
        headers = {"Accept": "application/json"}
        if self.endpoint.token:
            headers["Authorization"] = f"Bearer {self.endpoint.token}"
        self._session = await self._stack.enter_async_context(
            aiohttp.ClientSession(
                connector=connector,
                headers=headers,
                read_bufsize=MAX_LINE_BYTES // 2,
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S),
            )
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._session = None
        await self._stack.aclose()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client inside `async with`")
        return self._session

    async def _refused(self, response: aiohttp.ClientResponse) -> ControlError:
        text = await response.text()
        try:
            error = json.loads(text)["error"]
            return ControlError(str(error["code"]), str(error["message"]), response.status)
        except (ValueError, KeyError, TypeError):
            code = "unauthorized" if response.status == 401 else "failed"
            return ControlError(code, f"HTTP {response.status}: {text[:200]}", response.status)

    async def snapshot(self) -> JSON:
        async with self.session.get(f"{self._base}{API_PREFIX}/snapshot") as response:
            if response.status != 200:
                raise await self._refused(response)
            document = await response.json(content_type=None)
        if not isinstance(document, dict):
            raise ProtocolError("the snapshot is not a JSON object")
        check_version(document)
        return document

    async def command(self, name: str, **args: str) -> Any:
        body = {"v": PROTOCOL_VERSION, "args": args}
        async with self.session.post(f"{self._base}{API_PREFIX}/commands/{name}", json=body) as response:
            if response.status != 200:
                raise await self._refused(response)
            document = await response.json(content_type=None)
        if not isinstance(document, dict) or document.get("ok") is not True:
            raise ProtocolError(f"unexpected reply to {name}: {str(document)[:200]}")
        return document.get("result")

    @contextlib.asynccontextmanager
    async def events(self, since: int | None = None, instance: str | None = None) -> AsyncIterator[AsyncIterator[JSON]]:
        """``async with client.events(since, instance) as lines: async for line in lines: ...``"""
        params = {}
        if since is not None:
            params["since"] = str(since)
        if instance is not None:
            params["instance"] = instance
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=STREAM_IDLE_TIMEOUT_S)
        async with self.session.get(f"{self._base}{API_PREFIX}/events", params=params, timeout=timeout) as response:
            if response.status != 200:
                raise await self._refused(response)
            yield _lines(response)


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[JSON]:
    while True:
        try:
            raw = await response.content.readline()
        except ValueError as exc:  # a line over the buffer limit
            raise ProtocolError(f"stream line too long: {exc}") from None
        if not raw:
            return
        try:
            message = json.loads(raw)
        except ValueError:
            raise ProtocolError(f"stream line is not JSON: {raw[:120]!r}") from None
        if not isinstance(message, dict):
            raise ProtocolError("stream line is not a JSON object")
        yield message
