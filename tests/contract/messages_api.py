"""A loopback stand-in of the Anthropic Messages API, for driving the real claude CLI.

It answers what Claude Code calls when pointed at it with ``ANTHROPIC_BASE_URL``:
``HEAD /`` (a reachability probe), ``POST /v1/messages`` with any query (``?beta=true``),
streamed as server-sent events when the request says ``stream: true`` and as one JSON
message otherwise, and ``POST /v1/messages/count_tokens``. Anything else gets a JSON 404
and is logged and kept in :attr:`MessagesAPI.unknown`, so a test can notice a new call.

Replies are scripted per test: :meth:`MessagesAPI.script` queues replies that are used
one per ``/v1/messages`` request, in order; once the queue is empty, :attr:`fallback`
answers (a short text unless a test changes it). A reply is a :class:`Text`, a
:class:`ToolUse`, an :class:`ApiError`, a :class:`Held` reply (sent when the test says),
or a callable that picks one from the request.

Every ``/v1/messages`` request body is recorded (:attr:`MessagesAPI.requests`), so tests
can check what reached the model: the system prompt, the messages (earlier turns when a
session is resumed) and the tools offered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
_REMINDER = "<system-reminder>"


@dataclass(frozen=True)
class Text:
    """An assistant turn that says ``text`` and ends (``stop_reason: end_turn``)."""

    text: str
    input_tokens: int = 11
    output_tokens: int = 7


@dataclass(frozen=True)
class ToolUse:
    """An assistant turn that calls one tool (``stop_reason: tool_use``), after ``text`` if any."""

    name: str
    input: dict[str, Any]
    text: str = ""
    input_tokens: int = 13
    output_tokens: int = 9


@dataclass(frozen=True)
class ApiError:
    """An HTTP error with the API's JSON error body."""

    status: int
    type: str
    message: str

    @classmethod
    def for_status(cls, status: int) -> ApiError:
        """The error the real API sends with ``status``."""
        kinds = {
            400: ("invalid_request_error", "Invalid request"),
            401: ("authentication_error", "invalid x-api-key"),
            403: ("permission_error", "Your API key does not have permission to use the specified resource."),
            429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
            500: ("api_error", "Internal server error"),
            529: ("overloaded_error", "Overloaded"),
        }
        kind, message = kinds.get(status, ("api_error", f"HTTP {status}"))
        return cls(status, kind, message)


Reply = Text | ToolUse | ApiError


@dataclass(frozen=True, eq=False)
class Held:
    """``reply``, sent only once the test sets ``release``: a slow model, for interrupt and
    timeout tests. ``arrived`` is set when the request that gets it comes in."""

    reply: Text | ToolUse
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


Responder = Reply | Held | Callable[["RecordedRequest"], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One ``POST /v1/messages`` as the stand-in received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system_text(self) -> str:
        """Every system prompt block, joined (the field may be a string or a list of blocks)."""
        return _joined_text(self.body.get("system"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools")
        if not isinstance(tools, list):
            return []
        return [str(tool.get("name")) for tool in tools if isinstance(tool, dict)]

    @property
    def prompt(self) -> str:
        """The prompt of the newest user turn: the text the CLI read from its input."""
        prompts = self.user_prompts()
        return prompts[-1] if prompts else ""

    def user_prompts(self) -> list[str]:
        """The prompt of every user turn, oldest first.

        The CLI sends a turn's prompt as a text block of its own, next to blocks it adds
        (``<system-reminder>`` notes); user messages that only carry tool results are no turn.
        """
        prompts: list[str] = []
        for message in self.messages:
            if message.get("role") != "user":
                continue
            texts = [text for text in _texts(message.get("content")) if not text.startswith(_REMINDER)]
            if texts:
                prompts.append(texts[-1])
        return prompts

    def assistant_texts(self) -> list[str]:
        """The text of every earlier assistant turn the CLI sent back, oldest first."""
        return ["\n".join(_texts(m.get("content"))) for m in self.messages if m.get("role") == "assistant"]

    def tool_results(self) -> list[dict[str, Any]]:
        """Every ``tool_result`` block sent back by the CLI, in order."""
        found: list[dict[str, Any]] = []
        for message in self.messages:
            content = message.get("content")
            if message.get("role") == "user" and isinstance(content, list):
                found += [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]
        return found


@dataclass
class MessagesAPI:
    """The stand-in server; ``async with MessagesAPI() as api`` starts it on a free loopback port."""

    host: str = "127.0.0.1"
    fallback: Responder = field(default_factory=lambda: Text("ok"))
    requests: list[RecordedRequest] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """``"METHOD /path"`` of every request the stand-in had no answer for."""
    _script: deque[Responder] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("the Messages API stand-in is not started")
        return f"http://{self.host}:{self._port}"

    def script(self, *replies: Responder) -> None:
        """Queue replies for the next ``/v1/messages`` requests, one each, in order."""
        self._script.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    async def __aenter__(self) -> MessagesAPI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("HEAD", "/", self._head)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = 0

    # -- routes --------------------------------------------------------------------------

    async def _head(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return web.json_response({"input_tokens": max(1, len(json.dumps(body)) // 4)})

    async def _unknown(self, request: web.Request) -> web.Response:
        route = f"{request.method} {request.path}"
        log.warning("Messages API stand-in: no answer for %s", route)
        self.unknown.append(route)
        error = {"type": "error", "error": {"type": "not_found_error", "message": f"no route {route}"}}
        return web.json_response(error, status=404)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        recorded = RecordedRequest(
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
        )
        self.requests.append(recorded)
        responder = self._script.popleft() if self._script else self.fallback
        if isinstance(responder, Held):
            responder.arrived.set()
            await responder.release.wait()
            if request.transport is None or request.transport.is_closing():
                # The client gave up meanwhile (an interrupted claude): nobody to answer.
                raise asyncio.CancelledError
            responder = responder.reply
        reply = responder(recorded) if callable(responder) else responder
        message_id = f"msg_standin{next(self._ids):04d}"
        model = str(body.get("model") or DEFAULT_MODEL)
        if isinstance(reply, ApiError):
            error = {"type": "error", "error": {"type": reply.type, "message": reply.message}}
            headers = {"request-id": f"req_{message_id}", "x-should-retry": "false"}
            return web.json_response(error, status=reply.status, headers=headers)
        blocks = _blocks(reply, message_id)
        stop_reason = "tool_use" if isinstance(reply, ToolUse) else "end_turn"
        if body.get("stream") is True:
            return await self._stream(request, message_id, model, reply, blocks, stop_reason)
        message = _message(message_id, model, [b for b, _ in blocks], stop_reason, reply)
        return web.json_response(message)

    async def _stream(
        self,
        request: web.Request,
        message_id: str,
        model: str,
        reply: Text | ToolUse,
        blocks: list[tuple[dict[str, Any], dict[str, Any]]],
        stop_reason: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "request-id": f"req_{message_id}",
            }
        )
        await response.prepare(request)

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        start = _message(message_id, model, [], None, reply)
        start["usage"]["output_tokens"] = 1
        await send("message_start", {"type": "message_start", "message": start})
        for index, (block, delta) in enumerate(blocks):
            empty = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
            await send("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty})
            await send("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; a 400 in the API's error shape for anything else."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        error = {"type": "error", "error": {"type": "invalid_request_error", "message": "expected a JSON object"}}
        raise web.HTTPBadRequest(text=json.dumps(error), content_type="application/json")
    return body


def _blocks(reply: Text | ToolUse, message_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each content block of the reply, with the one delta that streams its content."""
    blocks: list[tuple[dict[str, Any], dict[str, Any]]] = []
    text = reply.text
    if text:
        blocks.append(({"type": "text", "text": text}, {"type": "text_delta", "text": text}))
    if isinstance(reply, ToolUse):
        tool = {"type": "tool_use", "id": f"toolu_{message_id}", "name": reply.name, "input": reply.input}
        blocks.append((tool, {"type": "input_json_delta", "partial_json": json.dumps(reply.input)}))
    return blocks


def _message(
    message_id: str, model: str, content: list[dict[str, Any]], stop_reason: str | None, reply: Text | ToolUse
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _texts(content: object) -> list[str]:
    """The text blocks of a message's content (a plain string is one block)."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        ]
    return []


def _joined_text(content: object) -> str:
    return "\n".join(_texts(content))
