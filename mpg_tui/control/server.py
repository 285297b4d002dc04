"""The control API of a running gateway: a snapshot, the event stream and the commands.

One set of routes (under :data:`~mpg_tui.control.protocol.API_PREFIX`) served through two
doors:

* a Unix socket in the profile's private run directory (the socket 0600, the directory
  0700), for local cockpits; a peer of another user is refused (``SO_PEERCRED``);
* the dashboard's HTTP port, behind the dashboard's own rules (loopback, or the token).
  A command there must be a JSON request from no foreign ``Origin``, so a web page the
  operator visits cannot send one.

``GET  /snapshot``                     the core's state (:func:`protocol.snapshot_json`)
``GET  /events?since=N&instance=ID``   newline-delimited JSON from the :class:`EventJournal`
``POST /commands/{name}``              ``{"args": {...}}`` -> ``{"ok", "result"}``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from mpg_tui.control import protocol
from mpg_tui.control.commands import COMMANDS, parse_args
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.protocol import API_PREFIX, MAX_REQUEST_BYTES, PROTOCOL_VERSION, ControlError
from mpg_tui.control.unixpath import bindable_path
from mpg_tui.core.api import CoreAPI

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
HEARTBEAT_S = 15.0
WRITE_TIMEOUT_S = 30.0
_PEERCRED = struct.Struct("3i")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def socket_path(run_dir: Path) -> Path:
    """Where a profile's gateway listens for local cockpits."""
    return run_dir / SOCKET_NAME


def peer_uid(request: web.Request) -> int | None:
    """The user ID of the process at the other end of a Unix socket request."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(raw)
    uid_value: int = uid
    return uid_value


def _error(exc: ControlError) -> web.Response:
    return web.json_response(exc.to_json(), status=exc.status, dumps=protocol.dumps)


class ControlService:
    """Serves the control routes on a Unix socket, and adds them to the dashboard's app."""

    def __init__(
        self,
        core: CoreAPI,
        journal: EventJournal,
        *,
        socket_file: Path | None = None,
        allowed_uid: int | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.core = core
        self.journal = journal
        self.socket_file = socket_file
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.heartbeat_s = heartbeat_s
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._streams: set[asyncio.Task[object]] = set()

    # -- routes ------------------------------------------------------------------------------

    def add_routes(self, app: web.Application, *, http: bool) -> None:
        """Put the control routes on ``app`` (``http``: the dashboard's door, with its CSRF guard)."""
        guard = self.guard_http_command if http else None
        app.router.add_get(f"{API_PREFIX}/snapshot", self._snapshot)
        app.router.add_get(f"{API_PREFIX}/events", self._events)
        app.router.add_post(f"{API_PREFIX}/commands/{{name}}", self._wrap(self._command, guard))
        app.router.add_route("*", f"{API_PREFIX}/{{tail:.*}}", self._not_found)

    def build_socket_app(self) -> web.Application:
        app = web.Application(middlewares=[self._peer_check()], client_max_size=MAX_REQUEST_BYTES)
        self.add_routes(app, http=False)
        return app

    def _peer_check(self) -> Middleware:
        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            uid = peer_uid(request)
            if uid != self.allowed_uid:
                log.warning("control socket: refused a peer of uid %s", uid)
                return _error(ControlError("forbidden", "this gateway answers only its own user", 403))
            return await handler(request)

        return check

    @staticmethod
    def _wrap(handler: Handler, guard: Callable[[web.Request], None] | None) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                if guard is not None:
                    guard(request)
            except ControlError as exc:
                return _error(exc)
            return await handler(request)

        return guarded

    @staticmethod
    def guard_http_command(request: web.Request) -> None:
        # Browsers send a cross-origin JSON POST only after a preflight we never answer, and
        # name its Origin; either way a page elsewhere cannot run a command.
        if request.content_type != "application/json":
            raise ControlError("bad_request", "commands must be sent as application/json", 415)
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1].rstrip("/") != request.host:
            raise ControlError("forbidden", "commands from another origin are refused", 403)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(ControlError("bad_request", f"no such control route: {request.method} {request.path}", 404))

    # -- snapshot and commands ------------------------------------------------------------

    async def _snapshot(self, _request: web.Request) -> web.Response:
        # Events published but not yet serialized are given seq numbers above this one, so a
        # client replays them: their attached state is at least as new as the snapshot.
        self.journal.flush()
        document = protocol.snapshot_json(
            self.core, instance=self.journal.instance, seq=self.journal.seq, pid=os.getpid()
        )
        return web.Response(text=self.journal.redact(protocol.dumps(document)), content_type="application/json")

    async def _command(self, request: web.Request) -> web.Response:
        try:
            return await self._run_command(request)
        except ControlError as exc:
            return _error(exc)

    async def _run_command(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        command = COMMANDS.get(name)
        if command is None:
            known = ", ".join(sorted(COMMANDS))
            raise ControlError("unknown_command", f"no command {name!r}; known: {known}", 404)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ControlError("too_large", f"requests are limited to {MAX_REQUEST_BYTES} bytes", 413) from None
        try:
            document = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ControlError("bad_request", "the body is not JSON") from None
        if not isinstance(document, dict):
            raise ControlError("bad_request", "the body must be a JSON object")
        version = document.get("v", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ControlError("bad_request", f"this gateway speaks control protocol v{PROTOCOL_VERSION}")
        if command.socket_only and request.transport is not None and peer_uid(request) is None:
            raise ControlError("forbidden", f"{name} is only served on the control socket", 403)
        args = parse_args(command, document.get("args", {}))
        try:
            result = await command.run(self.core, args)
        except ControlError:
            raise
        except Exception as exc:
            log.exception("control command %s failed", name)
            raise ControlError("failed", f"{name} failed: {type(exc).__name__}: {exc}", 500) from None
        log.info("control: %s %s -> %s", name, args.get("key", args.get("id", "")), result)
        return web.json_response({"v": PROTOCOL_VERSION, "ok": True, "result": result}, dumps=protocol.dumps)

    # -- the event stream ------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._closing.is_set():
            return _error(ControlError("unavailable", "the gateway is shutting down", 503))
        try:
            since = int(request.query["since"]) if "since" in request.query else None
        except ValueError:
            return _error(ControlError("bad_request", "'since' must be a whole number"))
        instance = request.query.get("instance")
        response = web.StreamResponse(
            headers={"Content-Type": "application/x-ndjson", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await self._pump(response, since, instance)
        except (ConnectionResetError, TimeoutError) as exc:
            log.debug("control stream client left: %s", type(exc).__name__)
        finally:
            self._streams.discard(task)
        return response

    async def _pump(self, response: web.StreamResponse, since: int | None, instance: str | None) -> None:
        journal = self.journal
        journal.flush()
        hello = {"type": "hello", "v": PROTOCOL_VERSION, "instance": journal.instance, "seq": journal.seq}
        await self._write(response, (protocol.dumps(hello) + "\n").encode())
        cursor = journal.seq if since is None else since
        if since is not None and instance not in (None, journal.instance):
            cursor = -1  # numbers from another life of the gateway: resync
        while not self._closing.is_set():
            entries = journal.after(cursor)
            if entries is None:
                await self._write(response, b'{"type":"resync"}\n')
                return
            if entries:
                await self._write(response, b"".join(e.line for e in entries))
                cursor = entries[-1].seq
                continue
            if not await self._wait(journal, cursor):
                await self._write(response, b'{"type":"ping"}\n')

    async def _wait(self, journal: EventJournal, cursor: int) -> bool:
        """Until something newer than ``cursor`` or shutdown; False after a quiet heartbeat."""
        newer = asyncio.ensure_future(journal.wait_newer(cursor))
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({newer, closing}, timeout=self.heartbeat_s, return_when="FIRST_COMPLETED")
        finally:
            newer.cancel()
            closing.cancel()
        return bool(done)

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await response.write(data)

    # -- the socket door ---------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the Unix socket (when one is configured)."""
        self.journal.attach()
        if self.socket_file is None or self._runner is not None:
            return
        path = self.socket_file
        with contextlib.suppress(FileNotFoundError):
            # Left by a gateway that died: we hold the profile's PID file, so it is no one's.
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with bindable_path(path) as where:
                sock.bind(where)
            os.chmod(path, 0o600)
            sock.listen(64)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        runner = web.AppRunner(self.build_socket_app(), handler_cancellation=True, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner
        log.info("control socket at %s", path)

    async def stop(self) -> None:
        """End the streams (clients see the link drop and reconnect later) and stop listening."""
        self._closing.set()
        streams = list(self._streams)
        if streams:
            _done, stuck = await asyncio.wait(streams, timeout=2.0)
            for task in stuck:  # writing to a client that reads nothing
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            if self.socket_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.socket_file.unlink()
        self.journal.detach()
