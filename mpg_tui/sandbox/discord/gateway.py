"""The gateway websocket: HELLO, IDENTIFY/READY, RESUME with replay, and intent-filtered dispatch.

A :class:`GatewaySession` outlives its websocket: it numbers the events it was sent and
keeps the recent ones, so a client that drops (or is told to RECONNECT) can RESUME from
the last sequence it saw and get everything it missed. A session the server can no
longer resume gets INVALID_SESSION (op 9). Each connection writes through one queue so
frames keep their order, and ``zlib-stream`` connections share one compressor for the
whole connection, flushed with ``Z_SYNC_FLUSH`` after every payload, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from mpg_tui.sandbox.discord.errors import json_response
from mpg_tui.sandbox.discord.spec import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGE_TYPING,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
)
from mpg_tui.sandbox.discord.state import SandboxState

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010
CLOSE_INVALID_API_VERSION = 4012
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014

ALL_INTENTS = (1 << 26) - 1

EVENT_INTENTS: dict[str, int] = {
    "GUILD_CREATE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "THREAD_CREATE": INTENT_GUILDS,
    "THREAD_UPDATE": INTENT_GUILDS,
    "THREAD_DELETE": INTENT_GUILDS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
    "TYPING_START": INTENT_GUILD_MESSAGE_TYPING,
}
"""The intent a session must have asked for to receive each event; others always go out."""

_CONTENT_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE"})
_TRACE = ['["sandbox-gateway",{"micros":0}]']


def encode(op: int, data: Any, *, seq: int | None = None, event: str | None = None) -> str:
    return json.dumps({"op": op, "d": data, "s": seq, "t": event}, separators=(",", ":"))


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class GatewayConnection:
    """One websocket. Everything it sends goes through :meth:`send`, in order."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, *, compress: bool) -> None:
        self.ws = ws
        self.request = request
        self.session: GatewaySession | None = None
        self.closed_by_server = False
        self._compressor = zlib.compressobj() if compress else None
        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._closing = False
        self.writer = asyncio.create_task(self._write(), name="sandbox-gateway-writer")

    def send(self, frame: str) -> None:
        if not self._closing:
            self._outbox.put_nowait(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued have gone out."""
        if not self._closing:
            self._closing = True
            self.closed_by_server = True
            self._outbox.put_nowait(_Close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection with no close frame, like a network failure."""
        self._closing = True
        self.closed_by_server = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _write(self) -> None:
        while True:
            item = await self._outbox.get()
            try:
                if isinstance(item, _Close):
                    await self.ws.close(code=item.code, message=item.reason.encode())
                    return
                if self._compressor is not None:
                    data = item.encode()
                    await self.ws.send_bytes(
                        self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    )
                else:
                    await self.ws.send_str(item)
            except ConnectionError:
                return  # the peer is gone; the reader side cleans up


class GatewaySession:
    """What a client can RESUME: its intents, its sequence and the events it was sent."""

    def __init__(self, session_id: str, intents: int, buffer_size: int) -> None:
        self.id = session_id
        self.intents = intents
        self.seq = 0
        self.buffer: deque[tuple[int, str]] = deque(maxlen=buffer_size)
        self.connection: GatewayConnection | None = None

    def wants(self, event: str) -> bool:
        required = EVENT_INTENTS.get(event, 0)
        return not required or bool(self.intents & required)

    def push(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        frame = encode(OP_DISPATCH, data, seq=self.seq, event=event)
        self.buffer.append((self.seq, frame))
        if self.connection is not None:
            self.connection.send(frame)

    def missed_since(self, seq: int) -> list[str] | None:
        """Frames after ``seq``, or None when they can no longer all be replayed."""
        if seq > self.seq or seq < 0:
            return None
        if seq < self.seq and (not self.buffer or self.buffer[0][0] > seq + 1):
            return None
        return [frame for s, frame in self.buffer if s > seq]


class Gateway:
    def __init__(
        self,
        state: SandboxState,
        *,
        heartbeat_interval_ms: int = 41_250,
        resume_buffer: int = 2_000,
        max_idle_sessions: int = 32,
    ) -> None:
        self.state = state
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.resume_buffer = resume_buffer
        self.max_idle_sessions = max_idle_sessions
        self.url = "ws://127.0.0.1/"
        """Advertised as the gateway and as ``resume_gateway_url``; the server sets it."""
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[GatewayConnection] = set()

    @property
    def connected_sessions(self) -> int:
        return sum(1 for s in self.sessions.values() if s.connection is not None)

    # -- outbound -------------------------------------------------------------------------

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        for session in list(self.sessions.values()):
            if not session.wants(event):
                continue
            payload = data
            if event in _CONTENT_EVENTS and not session.intents & INTENT_MESSAGE_CONTENT:
                payload = self.state.shapes.visible_to_bot(data)
            session.push(event, payload)

    def drop_connections(self, code: int | None = None) -> int:
        """Abort every connection (``code=None``) or close it with ``code``; sessions stay resumable."""
        dropped = 0
        for conn in list(self.connections):
            if conn.session is not None and conn.session.connection is conn:
                conn.session.connection = None
            if code is None:
                conn.abort()
            else:
                conn.close(code, "sandbox drop")
            dropped += 1
        return dropped

    def send_reconnect(self) -> int:
        """Send op 7 to every identified connection; clients close and RESUME."""
        targets = [c for c in self.connections if c.session is not None]
        for conn in targets:
            conn.send(encode(OP_RECONNECT, None))
        return len(targets)

    def invalidate_sessions(self, *, resumable: bool = False) -> int:
        """Send op 9 to every connection; unless ``resumable``, forget every session too."""
        for conn in list(self.connections):
            if conn.session is not None:
                conn.send(encode(OP_INVALID_SESSION, resumable))
        count = len(self.sessions)
        if not resumable:
            for session in self.sessions.values():
                if session.connection is not None:
                    session.connection.session = None
                    session.connection = None
            self.sessions.clear()
        return count

    async def close_all(self, code: int = 1001) -> None:
        conns = list(self.connections)
        for conn in conns:
            conn.close(code, "server shutting down")
        writers = [c.writer for c in conns]
        if writers:
            await asyncio.wait(writers, timeout=2.0)
        for conn in conns:
            if not conn.writer.done():
                conn.writer.cancel()
                conn.abort()

    # -- the websocket --------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, timeout=2.0, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return json_response(
                {"sandbox": "discord", "gateway": self.url, "api_base": f"{self.state.base_url}/api/v10"}
            )
        version = request.query.get("v", "10")
        encoding = request.query.get("encoding", "json")
        compression = request.query.get("compress")
        if compression not in (None, "zlib-stream"):
            # Frames then go out as plain text, which every client also accepts.
            log.warning("gateway compression %r is not supported; sending plain JSON", compression)
        await ws.prepare(request)
        conn = GatewayConnection(ws, request, compress=compression == "zlib-stream")
        self.connections.add(conn)
        log.debug("gateway connection from %s (v=%s, compress=%s)", request.remote, version, compression)
        if version not in ("9", "10"):
            conn.close(CLOSE_INVALID_API_VERSION, "Invalid API version.")
        elif encoding != "json":
            conn.close(CLOSE_DECODE_ERROR, "Only encoding=json is supported.")
        else:
            hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": _TRACE}
            conn.send(encode(OP_HELLO, hello))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._receive(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._receive(conn, msg.data.decode("utf-8", "replace"))
                else:
                    break
        finally:
            self._detach(conn, ws.close_code)
        return ws

    def _detach(self, conn: GatewayConnection, close_code: int | None) -> None:
        self.connections.discard(conn)
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            # Like Discord: a client that closes with 1000/1001 ends its session for good.
            if not conn.closed_by_server and close_code in (1000, 1001):
                self.sessions.pop(session.id, None)
        self._trim_idle_sessions()
        if not conn.writer.done():
            conn.writer.cancel()
        log.debug("gateway connection closed (code %s)", close_code)

    def _trim_idle_sessions(self) -> None:
        idle = [s for s in self.sessions.values() if s.connection is None]
        for session in idle[: max(0, len(idle) - self.max_idle_sessions)]:
            del self.sessions[session.id]

    def _receive(self, conn: GatewayConnection, text: str) -> None:
        try:
            payload = json.loads(text)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            log.warning("gateway: undecodable payload %.200r", text)
            conn.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            conn.send(encode(OP_HEARTBEAT_ACK, None))
        elif op == OP_IDENTIFY:
            self._identify(conn, data)
        elif op == OP_RESUME:
            self._resume(conn, data)
        elif op in (OP_PRESENCE_UPDATE, OP_VOICE_STATE_UPDATE, OP_REQUEST_GUILD_MEMBERS):
            if conn.session is None:
                conn.close(CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
            elif op == OP_REQUEST_GUILD_MEMBERS:
                self._members_chunk(conn.session, data if isinstance(data, dict) else {})
        else:
            log.warning("gateway: unknown opcode %r", op)
            conn.close(CLOSE_UNKNOWN_OPCODE, "Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        if not isinstance(token, str):
            return False
        token = token.removeprefix("Bot ")
        return secrets.compare_digest(token.encode(), self.state.spec.token.encode())

    def _identify(self, conn: GatewayConnection, data: Any) -> None:
        if conn.session is not None:
            conn.close(CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if not isinstance(data, dict) or not self._token_ok(data.get("token")):
            conn.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or not 0 <= intents <= ALL_INTENTS:
            conn.close(CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return
        spec = self.state.spec
        refused = [
            name for name, bit in PRIVILEGED_INTENTS.items() if intents & bit and name not in spec.privileged_intents
        ]
        if refused:
            log.info("gateway: refusing privileged intents not enabled for the bot: %s", ", ".join(refused))
            conn.close(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None and not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(x, int) for x in shard)
            and 0 <= shard[0] < shard[1]
        ):
            conn.close(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        on_this_shard = shard is None or (int(self.state.guild_id) >> 22) % shard[1] == shard[0]
        session = GatewaySession(secrets.token_hex(16), intents, self.resume_buffer)
        self.sessions[session.id] = session
        session.connection = conn
        conn.session = session
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.state.shapes.me_json(),
            "guilds": [{"id": self.state.guild_id, "unavailable": True}] if on_this_shard else [],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": self.state.bot_id, "flags": self.state.shapes.application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": _TRACE,
        }
        if shard is not None:
            ready["shard"] = shard
        session.push("READY", ready)
        if on_this_shard and session.wants("GUILD_CREATE"):
            session.push(
                "GUILD_CREATE", self.state.shapes.guild_create_json(with_members=bool(intents & INTENT_GUILD_MEMBERS))
            )
        log.info("gateway: session %s identified (intents %d)", session.id[:8], intents)

    def _resume(self, conn: GatewayConnection, data: Any) -> None:
        if conn.session is not None:
            conn.close(CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if not isinstance(data, dict) or not self._token_ok(data.get("token")):
            conn.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        missed = None
        if session is not None and (seq is None or isinstance(seq, int)):
            missed = session.missed_since(seq or 0)
        if session is None or missed is None:
            log.info("gateway: cannot resume session %s at seq %s; invalidating", data.get("session_id"), seq)
            if session is not None:
                self.sessions.pop(session.id, None)
            conn.send(encode(OP_INVALID_SESSION, False))
            return
        previous = session.connection
        if previous is not None and previous is not conn:
            previous.session = None
            previous.close(CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere.")
        session.connection = conn
        conn.session = session
        for frame in missed:
            conn.send(frame)
        # RESUMED carries no sequence, so a later replay never repeats it.
        conn.send(encode(OP_DISPATCH, {"_trace": _TRACE}, event="RESUMED"))
        log.info("gateway: session %s resumed from seq %s (%d replayed)", session.id[:8], seq, len(missed))

    def _members_chunk(self, session: GatewaySession, request: dict[str, Any]) -> None:
        if str(request.get("guild_id")) != self.state.guild_id:
            return
        users = [*self.state.spec.users, self.state.spec.bot]
        wanted_ids = request.get("user_ids")
        if isinstance(wanted_ids, str | int):
            wanted_ids = [wanted_ids]
        if isinstance(wanted_ids, list):
            ids = {str(i) for i in wanted_ids}
            found = [u for u in users if u.id in ids]
            not_found = sorted(ids - {u.id for u in found})
        elif session.intents & INTENT_GUILD_MEMBERS:
            query = str(request.get("query") or "").lower()
            found = [u for u in users if u.username.lower().startswith(query)]
            limit = request.get("limit")
            if isinstance(limit, int) and limit > 0:
                found = found[:limit]
            not_found = []
        else:
            found, not_found = [], []
        chunk: dict[str, Any] = {
            "guild_id": self.state.guild_id,
            "members": [self.state.shapes.member_json(u.id) for u in found],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": not_found,
        }
        if request.get("nonce") is not None:
            chunk["nonce"] = request["nonce"]
        session.push("GUILD_MEMBERS_CHUNK", chunk)
