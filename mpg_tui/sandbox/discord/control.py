"""The sandbox's control API: the Python controls of :class:`SandboxServer`, as JSON over HTTP.

Served under ``/_sandbox/`` so the headless gateway running in another process, shell
scripts and benchmarks can play users, read what the bot did (with a long poll), cut
connections and inject faults. Also serves the files attached to messages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mpg_tui.sandbox.discord.errors import ApiError, json_response
from mpg_tui.sandbox.discord.records import SandboxFile

if TYPE_CHECKING:
    from mpg_tui.sandbox.discord.server import SandboxServer

log = logging.getLogger(__name__)

MAX_LONG_POLL_SECONDS = 60.0
PREFIX = "/_sandbox"


def _bad_request(message: str) -> ApiError:
    return ApiError(400, message, 0)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _bad_request("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad_request("request body must be a JSON object")
    return data


def _attachment(index: int, item: Any) -> SandboxFile:
    where = f"attachments[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("filename"), str) or not item["filename"]:
        raise _bad_request(f"{where}: expected an object with a 'filename'")
    if isinstance(item.get("text"), str):
        data = item["text"].encode()
    elif isinstance(item.get("base64"), str):
        try:
            data = base64.b64decode(item["base64"], validate=True)
        except binascii.Error:
            raise _bad_request(f"{where}.base64: not valid base64") from None
    else:
        raise _bad_request(f"{where}: give the content as 'text' or 'base64'")
    content_type = item.get("content_type")
    return SandboxFile(item["filename"], data, content_type if isinstance(content_type, str) else None)


class ControlApi:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server

    def register(self, app: web.Application) -> None:
        routes = [
            web.get(f"{PREFIX}", self.info),
            web.get(f"{PREFIX}/spec", self.spec),
            web.post(f"{PREFIX}/messages", self.post_message),
            web.post(f"{PREFIX}/click", self.click),
            web.get(f"{PREFIX}/interactions/{{interaction_id}}", self.interaction),
            web.get(f"{PREFIX}/actions", self.actions),
            web.get(f"{PREFIX}/channels/{{channel_id}}", self.channel),
            web.get(f"{PREFIX}/channels/{{channel_id}}/messages", self.messages),
            web.delete(f"{PREFIX}/channels/{{channel_id}}/messages/{{message_id}}", self.delete_message),
            web.get(f"{PREFIX}/channels/{{channel_id}}/threads", self.threads),
            web.post(f"{PREFIX}/channels/{{channel_id}}/refuse-threads", self.refuse_threads),
            web.post(f"{PREFIX}/threads/{{thread_id}}/archive", self.archive),
            web.post(f"{PREFIX}/drop", self.drop),
            web.post(f"{PREFIX}/reconnect", self.reconnect),
            web.post(f"{PREFIX}/invalidate", self.invalidate),
            web.get(f"{PREFIX}/faults", self.list_faults),
            web.post(f"{PREFIX}/faults", self.add_fault),
            web.delete(f"{PREFIX}/faults", self.clear_faults),
            web.post(f"{PREFIX}/holds", self.add_hold),
            web.get(f"{PREFIX}/attachments/{{file_id}}/{{filename}}", self.attachment),
        ]
        for route in routes:
            route.register(app.router)
        app.middlewares.append(self._errors)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(PREFIX):
            response: web.StreamResponse = await handler(request)
            return response
        try:
            response = await handler(request)
            return response
        except ApiError as exc:
            return exc.response()
        except KeyError as exc:
            return _bad_request(str(exc.args[0]) if exc.args else "not found").response()

    def _channel_id(self, data: dict[str, Any]) -> str:
        if isinstance(data.get("channel_id"), str):
            return str(data["channel_id"])
        if isinstance(data.get("channel"), str):
            return self.server.spec.channel(data["channel"]).id
        raise _bad_request("give 'channel_id' (or a channel name as 'channel')")

    def _user_id(self, data: dict[str, Any]) -> str:
        given = data.get("user_id") or data.get("user")
        if not isinstance(given, str):
            raise _bad_request("give 'user_id' (or a username as 'user')")
        return self.server.spec.user(given).id

    async def info(self, request: web.Request) -> web.StreamResponse:
        server = self.server
        spec = server.spec
        return json_response(
            {
                "base_url": server.base_url,
                "api_base": server.api_base,
                "gateway_url": server.gateway_url,
                "token": spec.token,
                "guild_id": spec.guild.id,
                "bot_id": spec.bot.id,
                "channels": {c.name: c.id for c in spec.channels},
                "users": {u.username: u.id for u in spec.users},
                "roles": {r.name: r.id for r in spec.roles},
                "connected": server.connected,
                "last_seq": server.last_seq,
            }
        )

    async def spec(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.server.spec.to_dict())

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        content = data.get("content", "")
        if not isinstance(content, str):
            raise _bad_request("content: expected a string")
        raw_attachments = data.get("attachments") or []
        if not isinstance(raw_attachments, list):
            raise _bad_request("attachments: expected a list")
        reply_to = data.get("reply_to")
        message = await self.server.post_as_user(
            self._channel_id(data),
            self._user_id(data),
            content,
            attachments=[_attachment(i, item) for i, item in enumerate(raw_attachments)],
            reply_to=reply_to if isinstance(reply_to, str) else None,
        )
        return json_response(message)

    async def click(self, request: web.Request) -> web.StreamResponse:
        """``{"channel_id"|"channel", "message_id", "user_id"|"user", "custom_id"}``: press a button."""
        data = await _body(request)
        message_id, custom_id = data.get("message_id"), data.get("custom_id")
        if not isinstance(message_id, str) or not isinstance(custom_id, str):
            raise _bad_request("give 'message_id' and 'custom_id'")
        record = self.server.click(self._channel_id(data), message_id, self._user_id(data), custom_id)
        return json_response(record.to_json())

    async def interaction(self, request: web.Request) -> web.StreamResponse:
        """An interaction and the bot's answers to it so far."""
        record = self.server.interactions.records.get(request.match_info["interaction_id"])
        if record is None:
            raise KeyError("no such interaction")
        return json_response(record.to_json())

    async def actions(self, request: web.Request) -> web.StreamResponse:
        try:
            after = int(request.query.get("after", "0"))
            wait = float(request.query.get("wait", "0"))
        except ValueError:
            raise _bad_request("'after' must be an integer and 'wait' a number of seconds") from None
        wait = min(max(wait, 0.0), MAX_LONG_POLL_SECONDS)
        actions = self.server.action_log
        if wait and actions.last_seq <= after:
            with contextlib.suppress(TimeoutError):
                await actions.wait_for(timeout=wait, after=after)
        return json_response({"actions": [a.to_dict() for a in actions.snapshot(after)], "last_seq": actions.last_seq})

    async def channel(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.server.channel(request.match_info["channel_id"]))

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.server.messages(request.match_info["channel_id"]))

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        self.server.delete_message(request.match_info["channel_id"], request.match_info["message_id"])
        return web.Response(status=204)

    async def threads(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.server.threads(request.match_info["channel_id"]))

    async def refuse_threads(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        self.server.refuse_threads(request.match_info["channel_id"], bool(data.get("refuse", True)))
        return web.Response(status=204)

    async def archive(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return json_response(self.server.archive(request.match_info["thread_id"], locked=bool(data.get("locked"))))

    async def drop(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        code = data.get("code")
        if code is not None and (not isinstance(code, int) or not 1000 <= code <= 4999):
            raise _bad_request("code: expected a websocket close code (1000-4999) or null")
        return json_response({"dropped": self.server.drop_connections(code)})

    async def reconnect(self, request: web.Request) -> web.StreamResponse:
        return json_response({"sent": self.server.send_reconnect()})

    async def invalidate(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        return json_response({"sessions": self.server.invalidate_sessions(resumable=bool(data.get("resumable")))})

    async def list_faults(self, request: web.Request) -> web.StreamResponse:
        return json_response([f.to_dict() for f in self.server.faults.pending])

    async def add_fault(self, request: web.Request) -> web.StreamResponse:
        data = await _body(request)
        try:
            fault = self.server.inject(
                str(data.get("method", "*")),
                str(data["route"]),
                int(data["status"]),
                int(data.get("count", 1)),
                retry_after=float(data.get("retry_after", 0.1)),
                via=bool(data.get("via", True)),
                is_global=bool(data.get("global", False)),
                message=data.get("message") if isinstance(data.get("message"), str) else None,
            )
        except KeyError as exc:
            raise _bad_request(f"missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise _bad_request(str(exc)) from None
        return json_response(fault.to_dict(), status=201)

    async def add_hold(self, request: web.Request) -> web.StreamResponse:
        """Delay matching REST calls by ``seconds`` (cleared with the faults)."""
        data = await _body(request)
        prefix = data.get("content_prefix")
        try:
            hold = self.server.hold(
                str(data.get("method", "*")),
                str(data["route"]),
                int(data.get("count", 1)),
                seconds=float(data["seconds"]),
                content_prefix=prefix if isinstance(prefix, str) else None,
            )
        except KeyError as exc:
            raise _bad_request(f"missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise _bad_request(str(exc)) from None
        return json_response(hold.to_dict(), status=201)

    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.server.clear_faults()
        return web.Response(status=204)

    async def attachment(self, request: web.Request) -> web.StreamResponse:
        stored = self.server.state.files.get(request.match_info["file_id"])
        if stored is None or stored.filename != request.match_info["filename"]:
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        headers = {
            "Content-Type": stored.content_type,
            "Content-Disposition": f'attachment; filename="{stored.filename}"',
        }
        return web.Response(body=stored.data, headers=headers)
