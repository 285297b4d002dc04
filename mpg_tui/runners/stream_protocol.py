"""The host's side of claude's stream-json input protocol: user message lines and control requests.

With ``--input-format stream-json`` claude reads one JSON object a line on stdin and
prints one a line on stdout. Besides user messages and the turn's output, both sides
exchange control messages (observed with Claude Code 2.1.330):

* host → claude ``{"type":"control_request","request_id":ID,"request":{"subtype":...}}``,
  answered by ``{"type":"control_response","response":{"subtype":"success"|"error",
  "request_id":ID,"response"|"error":...}}`` (``interrupt`` answers ``{"still_queued":[]}``);
* claude → host, the same shape the other way (``can_use_tool`` with
  ``--permission-prompt-tool stdio``), which the host answers with a ``control_response``;
  claude may withdraw one with ``{"type":"control_cancel_request","request_id":ID}``.

:class:`ControlChannel` keeps both directions: :meth:`ControlChannel.request` sends a
request and awaits its response by ``request_id``; requests from claude go to a handler
(none by default: they are answered with an error) whose answer is written back, and a
withdrawn one has its handler cancelled. The channel never reads or writes pipes itself:
its owner feeds it the lines it read and gives it a function that writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

CONTROL_TIMEOUT_S = 60.0
"""How long a request of ours waits for claude's response (the official SDK's figure)."""
CONTROL_TYPES = frozenset({"control_request", "control_response", "control_cancel_request"})

RequestHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers a request from claude: ``(request_id, request) -> response body``; raising answers an error."""


class ControlError(Exception):
    """Claude answered a control request with an error, never answered it, or went away."""


def user_message(text: str, *, uuid: str | None = None) -> bytes:
    """The stdin line for one user message (a ``uuid`` makes claude report its lifecycle)."""
    line: dict[str, Any] = {"type": "user", "message": {"role": "user", "content": text}}
    if uuid is not None:
        line["uuid"] = uuid
    return _encode(line)


def _encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class ControlChannel:
    """Control requests in both directions over one process's pipes."""

    def __init__(self, write: Callable[[bytes], None], *, handler: RequestHandler | None = None) -> None:
        """``write`` puts one whole line on claude's stdin (it may raise if the pipe is gone)."""
        self._write = write
        self._handler = handler
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._handling: dict[str, asyncio.Task[None]] = {}
        self._closed: str | None = None

    async def request(self, subtype: str, *, timeout_s: float = CONTROL_TIMEOUT_S, **fields: Any) -> dict[str, Any]:
        """Send a ``subtype`` request and return the body of claude's success response.

        Raises :class:`ControlError` on an error response, on no response within
        ``timeout_s``, or when the process goes away first.
        """
        if self._closed is not None:
            raise ControlError(self._closed)
        request_id = f"req_{next(self._ids)}_{self._prefix}"
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            self._write(
                _encode(
                    {"type": "control_request", "request_id": request_id, "request": {"subtype": subtype, **fields}}
                )
            )
            async with asyncio.timeout(timeout_s):
                response = await answer
        except TimeoutError:
            raise ControlError(f"claude did not answer the {subtype} request within {timeout_s:g} s") from None
        except OSError as exc:
            raise ControlError(f"could not send the {subtype} request: {exc}") from exc
        finally:
            self._waiting.pop(request_id, None)
        if response.get("subtype") != "success":
            raise ControlError(str(response.get("error") or f"claude refused the {subtype} request"))
        body = response.get("response")
        return body if isinstance(body, dict) else {}

    def handle(self, line: dict[str, Any]) -> bool:
        """Take a line claude printed if it is a control message; False when it is not one."""
        kind = line.get("type")
        if kind == "control_response":
            response = line.get("response")
            if isinstance(response, dict):
                waiting = self._waiting.get(str(response.get("request_id")))
                if waiting is not None and not waiting.done():
                    waiting.set_result(response)
            return True
        if kind == "control_request":
            request_id, request = line.get("request_id"), line.get("request")
            if isinstance(request_id, str) and isinstance(request, dict):
                task = asyncio.get_running_loop().create_task(self._answer(request_id, request))
                self._handling[request_id] = task
                task.add_done_callback(self._forget_handler)
            return True
        if kind == "control_cancel_request":
            withdrawn = self._handling.get(str(line.get("request_id")))
            if withdrawn is not None:
                withdrawn.cancel()
            return True
        return False

    def _forget_handler(self, task: asyncio.Task[None]) -> None:
        for request_id, running in list(self._handling.items()):
            if running is task:
                del self._handling[request_id]

    def close(self, reason: str) -> None:
        """The process is gone: fail every request still waiting, stop every handler."""
        self._closed = reason
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(ControlError(reason))
        for task in list(self._handling.values()):
            task.cancel()

    async def _answer(self, request_id: str, request: dict[str, Any]) -> None:
        subtype = request.get("subtype")
        try:
            if self._handler is None:
                raise ControlError(f"this host does not handle {subtype} requests")
            body = await self._handler(request_id, request)
            response: dict[str, Any] = {"subtype": "success", "request_id": request_id, "response": body}
        except asyncio.CancelledError:
            return  # withdrawn by claude (control_cancel_request), or the process is gone: no answer
        except Exception as exc:
            if not isinstance(exc, ControlError):
                log.exception("answering claude's %s request failed", subtype)
            response = {"subtype": "error", "request_id": request_id, "error": str(exc)}
        with contextlib.suppress(OSError):
            self._write(_encode({"type": "control_response", "response": response}))
