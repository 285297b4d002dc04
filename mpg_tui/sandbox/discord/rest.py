"""Discord's REST API under ``/api/v10``: the routes discord.py calls to run a bot.

One aiohttp route catches ``/api/v{N}/...``; :class:`RestApi` checks the bot token, applies
injected faults, then dispatches on its own route table so that every unknown route is
logged loudly and answered with Discord's 404 shape. Each call that changes something is
recorded in the :class:`~.actions.ActionLog`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.actions import ActionKind, ActionLog
from mpg_tui.sandbox.discord.errors import ApiError, json_response
from mpg_tui.sandbox.discord.faults import FaultInjector, HoldBook
from mpg_tui.sandbox.discord.interactions import Interactions
from mpg_tui.sandbox.discord.records import MAX_FILE_BYTES, SandboxFile
from mpg_tui.sandbox.discord.state import SandboxState

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[web.StreamResponse]]
_FILE_FIELD = re.compile(r"files\[([0-9]+)\]")
_UNAUTHENTICATED = {("GET", "/gateway")}
# Interaction answers carry their token in the path, never the bot's.
_TOKEN_IN_PATH = re.compile(r"/(interactions/[^/]+/[^/]+/callback|webhooks/[^/]+/[^/]+(/messages/[^/]+)?)")


def _template(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


def _no_content() -> web.Response:
    return web.Response(status=204)


def _snowflake_param(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise errors.invalid_form({name: ("NUMBER_TYPE_COERCE", f"Value {value!r} is not snowflake.")})
    return str(value)


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(400, "The request body contains invalid JSON.", 50109) from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body contains invalid JSON.", 50109)
    return data


async def _message_body(request: web.Request) -> tuple[dict[str, Any], list[SandboxFile]]:
    """A message payload from JSON, or from multipart ``payload_json`` + ``files[n]``."""
    if request.content_type != "multipart/form-data":
        return await _json_body(request), []
    payload: dict[str, Any] = {}
    uploads: dict[int, SandboxFile] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "payload_json":
            try:
                payload = json.loads(await part.text())
            except ValueError:
                raise ApiError(400, "The request body contains invalid JSON.", 50109) from None
            continue
        match = _FILE_FIELD.fullmatch(part.name or "")
        if match is None:
            log.warning("sandbox REST: ignoring multipart field %r", part.name)
            continue
        data = bytearray()
        while chunk := await part.read_chunk():
            data += chunk
            if len(data) > MAX_FILE_BYTES:
                raise errors.too_large()
        index = int(match.group(1))
        uploads[index] = SandboxFile(part.filename or f"file{index}", bytes(data), part.headers.get("Content-Type"))
    if not isinstance(payload, dict):
        raise ApiError(400, "The request body contains invalid JSON.", 50109)
    # ``attachments`` in the payload describes the uploads by index (descriptions, renames).
    described = {a.get("id"): a for a in payload.get("attachments") or [] if isinstance(a, dict)}
    files = []
    for index in sorted(uploads):
        upload = uploads[index]
        meta = described.get(index) or described.get(str(index)) or {}
        files.append(
            SandboxFile(
                str(meta.get("filename") or upload.filename), upload.data, upload.content_type, meta.get("description")
            )
        )
    return payload, files


class RestApi:
    def __init__(
        self,
        state: SandboxState,
        actions: ActionLog,
        faults: FaultInjector,
        gateway_url: Callable[[], str],
        holds: HoldBook | None = None,
        interactions: Interactions | None = None,
    ):
        self.state = state
        self.interactions = interactions or Interactions(state)
        self.actions = actions
        self.faults = faults
        self.holds = holds or HoldBook()
        self._gateway_url = gateway_url
        self.unknown_routes: list[str] = []
        """``METHOD /path`` of every request no route answered (tests assert it stays empty)."""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        add = self._add
        add("GET", "/gateway", self.get_gateway)
        add("GET", "/gateway/bot", self.get_gateway_bot)
        add("GET", "/users/@me", self.get_me)
        add("GET", "/users/{user_id}", self.get_user)
        add("GET", "/oauth2/applications/@me", self.get_application)
        add("GET", "/applications/@me", self.get_application)
        add("GET", "/guilds/{guild_id}", self.get_guild)
        add("GET", "/guilds/{guild_id}/channels", self.get_guild_channels)
        add("GET", "/guilds/{guild_id}/roles", self.get_guild_roles)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)
        add("GET", "/guilds/{guild_id}/threads/active", self.get_active_threads)
        add("GET", "/channels/{channel_id}", self.get_channel)
        add("PATCH", "/channels/{channel_id}", self.patch_channel)
        add("POST", "/channels/{channel_id}/typing", self.post_typing)
        add("GET", "/channels/{channel_id}/messages", self.get_messages)
        add("POST", "/channels/{channel_id}/messages", self.post_message)
        add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.patch_message)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        add("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.post_thread)
        add("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.put_reaction)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.delete_reaction)
        add("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback)
        add("POST", "/webhooks/{application_id}/{token}", self.follow_up)
        add("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}", self.edit_follow_up)

    def _add(self, method: str, path: str, handler: Handler) -> None:
        self._routes.append((method, _template(path), handler))

    def register(self, app: web.Application) -> None:
        app.router.add_route("*", r"/api/v{version:[0-9]+}/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"].strip("/")
        method = request.method.upper()
        try:
            public = (method, path) in _UNAUTHENTICATED or _TOKEN_IN_PATH.fullmatch(path) is not None
            if not public and request.headers.get("Authorization") != (f"Bot {self.state.spec.token}"):
                raise errors.unauthorized()
            if self.holds.pending:
                hold = self.holds.take(method, path, await self._content_of(request))
                if hold is not None:
                    await hold.wait()
            injected = self.faults.take(method, path)
            if injected is not None:
                raise injected
            allowed = False
            for route_method, pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if match is None:
                    continue
                if route_method == method:
                    return await handler(request, **match.groupdict())
                allowed = True
            if allowed:
                raise ApiError(405, "405: Method Not Allowed", 0)
            self.unknown_routes.append(f"{method} {path}")
            log.warning("sandbox REST: unknown Discord route %s %s (answering 404)", method, path)
            raise errors.route_not_found()
        except ApiError as exc:
            if exc.status >= 400:
                log.debug("sandbox REST: %s %s -> %s %s", method, path, exc.status, exc.message)
            return exc.response()

    async def _content_of(self, request: web.Request) -> str | None:
        """The ``content`` of a JSON body, when a hold needs it (the body is cached for the handler)."""
        if not self.holds.wants_content or request.content_type != "application/json":
            return None
        with contextlib.suppress(ApiError):
            content = (await _json_body(request)).get("content")
            return content if isinstance(content, str) else None
        return None

    async def _record(self, kind: ActionKind, channel_id: str, message_id: str | None, payload: dict[str, Any]) -> None:
        await self.actions.record(kind, channel_id, message_id, payload, at=self.state.clock.now())

    def _readable(self, data: dict[str, Any]) -> dict[str, Any]:
        # Without the message content intent enabled for the app, REST blanks content too.
        if "message_content" in self.state.spec.privileged_intents:
            return data
        return self.state.shapes.visible_to_bot(data)

    def _guild(self, guild_id: str) -> None:
        if guild_id != self.state.guild_id:
            raise errors.unknown_guild()

    # -- identity -------------------------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.StreamResponse:
        return json_response({"url": self._gateway_url()})

    async def get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        limit = {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1}
        return json_response({"url": self._gateway_url(), "shards": 1, "session_start_limit": limit})

    async def get_me(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.state.shapes.me_json())

    async def get_user(self, request: web.Request, user_id: str) -> web.StreamResponse:
        return json_response(self.state.shapes.user_json(user_id))

    async def get_application(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.state.shapes.application_json())

    # -- guild ----------------------------------------------------------------------------

    async def get_guild(self, request: web.Request, guild_id: str) -> web.StreamResponse:
        self._guild(guild_id)
        return json_response(self.state.shapes.guild_json())

    async def get_guild_channels(self, request: web.Request, guild_id: str) -> web.StreamResponse:
        self._guild(guild_id)
        channels = [self.state.shapes.channel_json(c) for c in self.state.channels.values() if not c.is_thread]
        return json_response(channels)

    async def get_guild_roles(self, request: web.Request, guild_id: str) -> web.StreamResponse:
        self._guild(guild_id)
        return json_response(self.state.shapes.roles_json())

    async def get_member(self, request: web.Request, guild_id: str, user_id: str) -> web.StreamResponse:
        self._guild(guild_id)
        if user_id not in self.state.users:
            raise errors.unknown_member()
        return json_response(self.state.shapes.member_json(user_id))

    async def get_active_threads(self, request: web.Request, guild_id: str) -> web.StreamResponse:
        self._guild(guild_id)
        threads = [
            self.state.shapes.channel_json(c) for c in self.state.channels.values() if c.is_thread and not c.archived
        ]
        return json_response({"threads": threads, "members": []})

    # -- channels -------------------------------------------------------------------------

    async def get_channel(self, request: web.Request, channel_id: str) -> web.StreamResponse:
        return json_response(self.state.shapes.channel_json(self.state.channel(channel_id)))

    async def patch_channel(self, request: web.Request, channel_id: str) -> web.StreamResponse:
        self.state.channel(channel_id)
        changes = await _json_body(request)
        channel = self.state.update_channel(channel_id, changes)
        data = self.state.shapes.channel_json(channel)
        await self._record("channel_updated", channel_id, None, data)
        return json_response(data)

    async def post_typing(self, request: web.Request, channel_id: str) -> web.StreamResponse:
        self.state.channel(channel_id)
        await self._record("typing", channel_id, None, {})
        return _no_content()

    async def post_thread(self, request: web.Request, channel_id: str, message_id: str) -> web.StreamResponse:
        body = await _json_body(request)
        duration = body.get("auto_archive_duration") or 1440
        name = body.get("name")
        thread = self.state.create_thread(
            channel_id, message_id, name if isinstance(name, str) else "", self.state.bot_id, duration
        )
        data = {
            **self.state.shapes.channel_json(thread),
            "member": self.state.shapes.thread_member_json(thread, self.state.bot_id),
        }
        await self._record("thread_created", channel_id, message_id, data)
        return json_response(data, status=201)

    # -- messages -------------------------------------------------------------------------

    async def get_messages(self, request: web.Request, channel_id: str) -> web.StreamResponse:
        self.state.channel(channel_id)
        raw_limit = request.query.get("limit", "50")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise errors.invalid_form({"limit": ("NUMBER_TYPE_MAX", "int value should be between 1 and 100.")})
        found = self.state.history(
            channel_id,
            int(raw_limit),
            before=_snowflake_param(request.query, "before"),
            after=_snowflake_param(request.query, "after"),
            around=_snowflake_param(request.query, "around"),
        )
        return json_response([self._readable(self.state.shapes.message_json(m)) for m in found])

    async def get_message(self, request: web.Request, channel_id: str, message_id: str) -> web.StreamResponse:
        return json_response(self._readable(self.state.shapes.message_json(self.state.message(channel_id, message_id))))

    async def post_message(self, request: web.Request, channel_id: str) -> web.StreamResponse:
        self.state.channel(channel_id)
        payload, files = await _message_body(request)
        embeds = list(payload.get("embeds") or [])
        if isinstance(payload.get("embed"), dict):
            embeds.append(payload["embed"])
        flags = payload.get("flags")
        content = payload.get("content")
        msg = self.state.create_message(
            channel_id,
            self.state.bot_id,
            content="" if content is None else content,
            embeds=embeds,
            files=files,
            reference=payload.get("message_reference") if isinstance(payload.get("message_reference"), dict) else None,
            nonce=payload.get("nonce"),
            tts=bool(payload.get("tts")),
            flags=flags if isinstance(flags, int) else 0,
            components=[c for c in payload.get("components") or [] if isinstance(c, dict)],
        )
        data = self.state.shapes.message_json(msg)
        await self._record("message_sent", channel_id, msg.id, data)
        return json_response(data)

    async def patch_message(self, request: web.Request, channel_id: str, message_id: str) -> web.StreamResponse:
        self.state.message(channel_id, message_id)
        changes = await _json_body(request)
        msg = self.state.edit_message(channel_id, message_id, self.state.bot_id, changes)
        data = self.state.shapes.message_json(msg)
        await self._record("message_edited", channel_id, message_id, data)
        return json_response(data)

    async def interaction_callback(self, request: web.Request, interaction_id: str, token: str) -> web.StreamResponse:
        payload, _files = await _message_body(request)
        answer = self.interactions.callback(interaction_id, token, payload)
        return json_response(answer) if request.query.get("with_response") in ("1", "true") else _no_content()

    async def follow_up(self, request: web.Request, application_id: str, token: str) -> web.StreamResponse:
        payload, _files = await _message_body(request)
        return json_response(self.interactions.follow_up(token, payload))

    async def edit_follow_up(
        self, request: web.Request, application_id: str, token: str, message_id: str
    ) -> web.StreamResponse:
        payload, _files = await _message_body(request)
        return json_response(self.interactions.edit(token, message_id, payload))

    async def delete_message(self, request: web.Request, channel_id: str, message_id: str) -> web.StreamResponse:
        self.state.delete_message(channel_id, message_id)
        await self._record("message_deleted", channel_id, message_id, {"id": message_id, "channel_id": channel_id})
        return _no_content()

    async def put_reaction(
        self, request: web.Request, channel_id: str, message_id: str, emoji: str
    ) -> web.StreamResponse:
        self.state.add_reaction(channel_id, message_id, emoji, self.state.bot_id)
        await self._record("reaction", channel_id, message_id, {"emoji": emoji})
        return _no_content()

    async def delete_reaction(
        self, request: web.Request, channel_id: str, message_id: str, emoji: str
    ) -> web.StreamResponse:
        self.state.remove_reaction(channel_id, message_id, emoji, self.state.bot_id)
        await self._record("reaction_removed", channel_id, message_id, {"emoji": emoji})
        return _no_content()
