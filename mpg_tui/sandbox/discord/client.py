"""A small aiohttp client for the sandbox's control API, for tests and tools in other processes.

It mirrors :class:`~.server.SandboxServer`'s controls: play a user, read the bot's
actions (waiting with the server's long poll, not by polling), cut connections and
inject faults.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp

from mpg_tui.sandbox.discord.actions import Action
from mpg_tui.sandbox.discord.records import SandboxFile


class SandboxClientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sandbox control API answered {status}: {message}")
        self.status = status


class SandboxClient:
    """``async with SandboxClient("http://127.0.0.1:PORT") as sandbox: ...``."""

    def __init__(self, base_url: str, *, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None if self._owns_session else self._session

    async def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        async with self._session.request(method, f"{self.base_url}/_sandbox{path}", json=json, params=params) as resp:
            if resp.status == 204:
                return None
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                message = data.get("message", str(data)) if isinstance(data, dict) else str(data)
                raise SandboxClientError(resp.status, message)
            return data

    async def info(self) -> dict[str, Any]:
        """Base URLs, token, and the IDs of channels, users and roles by name."""
        result: dict[str, Any] = await self._call("GET", "")
        return result

    async def post_as_user(
        self,
        channel_id: str,
        user_id: str,
        content: str = "",
        *,
        attachments: Sequence[SandboxFile] = (),
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Post as a member; ``user_id`` and ``channel_id`` may also be names from the spec."""
        body: dict[str, Any] = {
            "channel_id": channel_id,
            "user": user_id,
            "content": content,
            "attachments": [
                {"filename": f.filename, "content_type": f.content_type, "base64": base64.b64encode(f.data).decode()}
                for f in attachments
            ],
        }
        if not channel_id.isdigit():
            body["channel"] = body.pop("channel_id")
        if reply_to:
            body["reply_to"] = reply_to
        result: dict[str, Any] = await self._call("POST", "/messages", json=body)
        return result

    async def actions(self, after: int = 0, wait: float = 0.0) -> list[Action]:
        data = await self._call("GET", "/actions", params={"after": str(after), "wait": str(wait)})
        return [Action.from_dict(a) for a in data["actions"]]

    async def wait_for(
        self, predicate: Callable[[Action], bool] = lambda _a: True, timeout: float = 5.0, *, after: int = 0
    ) -> Action:
        """The first action after ``after`` matching ``predicate``; long-polls the server for new ones."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    batch = await self.actions(after, wait=max(timeout, 0.1))
                    for action in batch:
                        if predicate(action):
                            return action
                    if batch:
                        after = batch[-1].seq
        except TimeoutError:
            raise TimeoutError(f"no matching sandbox action within {timeout}s") from None

    async def messages(self, channel_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", f"/channels/{channel_id}/messages")
        return result

    async def threads(self, parent_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", f"/channels/{parent_id}/threads")
        return result

    async def channel(self, channel_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/channels/{channel_id}")
        return result

    async def delete_message(self, channel_id: str, message_id: str) -> None:
        await self._call("DELETE", f"/channels/{channel_id}/messages/{message_id}")

    async def refuse_threads(self, channel_id: str, refuse: bool = True) -> None:
        await self._call("POST", f"/channels/{channel_id}/refuse-threads", json={"refuse": refuse})

    async def archive(self, thread_id: str, *, locked: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", f"/threads/{thread_id}/archive", json={"locked": locked})
        return result

    async def drop_connections(self, code: int | None = None) -> int:
        data = await self._call("POST", "/drop", json={"code": code})
        return int(data["dropped"])

    async def send_reconnect(self) -> int:
        data = await self._call("POST", "/reconnect")
        return int(data["sent"])

    async def invalidate_sessions(self, *, resumable: bool = False) -> int:
        data = await self._call("POST", "/invalidate", json={"resumable": resumable})
        return int(data["sessions"])

    async def inject(
        self,
        method: str,
        route_pattern: str,
        status: int,
        count: int = 1,
        *,
        retry_after: float = 0.1,
        via: bool = True,
        is_global: bool = False,
    ) -> dict[str, Any]:
        body = {
            "method": method,
            "route": route_pattern,
            "status": status,
            "count": count,
            "retry_after": retry_after,
            "via": via,
            "global": is_global,
        }
        result: dict[str, Any] = await self._call("POST", "/faults", json=body)
        return result

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/faults")
