"""The HTTP dashboard: an aiohttp app served inside the caller's event loop.

:class:`Dashboard` reads the gateway only through :class:`~mpg_tui.core.api.CoreAPI`
and its event bus. Routes:

``GET /``               the page (server-rendered; live over ``/api/events`` with JS)
``GET /health``         status, uptime, session and queue counts, Discord state
``GET /api/sessions``   every session with its details
``GET /api/projects``   configured projects and their agents
``GET /api/budgets``    today's spend per project against its budget; threads paused at a limit
``GET /api/chains``     agent handoff chains
``GET /api/status``     all of the above, the version and the totals, in one document
``GET /api/events``     server-sent events from the bus
``GET /metrics``        Prometheus text exposition
``GET|POST /login``     sign in with the token (only when a token is set)
``/control/v1/...``     the control API (:mod:`mpg_tui.control.server`), when the runtime serves it

Every response carries security headers (a CSP without inline scripts, no framing,
no referrer, no MIME sniffing). Static files are served from an in-memory table of the
package's ``static`` directory, so no request path can reach any other file.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from mpg_tui.control.protocol import ControlError
from mpg_tui.core.api import CoreAPI
from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.dashboard import payloads
from mpg_tui.dashboard.auth import (
    LOGIN_PATH,
    LOGIN_STYLE_PATH,
    Authenticator,
    UnsafeBindError,
    check_bind,
    is_loopback,
)
from mpg_tui.dashboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mpg_tui.dashboard.metrics import Metrics
from mpg_tui.dashboard.page import EVENT_LIMIT, render_login, render_page
from mpg_tui.dashboard.stream import HEARTBEAT_S, QUEUE_SIZE, EventStreams, RecentEvents

if TYPE_CHECKING:
    from mpg_tui.control.server import ControlService

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


class DashboardError(Exception):
    """The dashboard cannot start; the message is meant for the operator."""


@dataclass(frozen=True)
class _StaticFile:
    body: bytes
    content_type: str
    etag: str


def _load_static() -> dict[str, _StaticFile]:
    """Every servable file of the package's ``static`` directory, by bare file name."""
    files: dict[str, _StaticFile] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        content_type = STATIC_TYPES.get("." + entry.name.rpartition(".")[2])
        if entry.is_file() and content_type is not None:
            body = entry.read_bytes()
            files[entry.name] = _StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


class _AccessLogger(AbstractAccessLogger):
    """Logs method, path and status at debug level; never the query string (it may hold a token)."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.debug("%s %s %s %.1fms", request.method, request.path, response.status, time * 1000)


def _dumps(data: Any) -> str:
    return json.dumps(data, default=str)


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")


class Dashboard:
    """The web dashboard and JSON API over a :class:`CoreAPI`.

    ``start()`` binds and serves on the running loop; ``stop()`` ends open event streams
    and closes the listener. It is also an async context manager.
    """

    def __init__(
        self,
        core: CoreAPI,
        *,
        host: str = "127.0.0.1",
        port: int = 3100,
        token: str | None = None,
        clock: Clock | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        stream_queue_size: int = QUEUE_SIZE,
        control: ControlService | None = None,
    ) -> None:
        self.core = core
        self._control = control
        self.host = host
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self._token = token
        self._auth = Authenticator(token)
        self.recent = RecentEvents(core.bus)
        self.streams = EventStreams(
            core.bus, self.clock, heartbeat_s=heartbeat_s, queue_size=stream_queue_size, on_dropped=self._dropped
        )
        self.metrics = Metrics(core, self.clock, stream_clients=lambda: self.streams.client_count)
        self._static = _load_static()
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    def _dropped(self, count: int) -> None:
        self.metrics.record_dropped(count)

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        """Where to open the dashboard; the real port once started (even when ``port`` was 0)."""
        host = self.host
        if host in ("", "0.0.0.0"):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        port = self._bound_port if self._bound_port is not None else self.port
        return f"http://{host}:{port}/"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the dashboard is already running")
        try:
            check_bind(self.host, self._token)
        except UnsafeBindError as exc:
            raise DashboardError(f"Dashboard not started: {exc}") from None
        # handler_cancellation: a client that disconnects cancels its handler, so an idle event stream
        # gives its bus subscription back at once instead of at its next write.
        runner = web.AppRunner(
            self.build_app(), access_log_class=_AccessLogger, shutdown_timeout=5.0, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host or None, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise DashboardError(
                    f"Dashboard port {self.port} is already in use; set defaults.httpPort to another port or false"
                ) from exc
            reason = exc.strerror or str(exc)
            raise DashboardError(f"Dashboard cannot listen on {self.host}:{self.port}: {reason}") from exc
        self._runner = runner
        self._bound_port = next((addr[1] for addr in runner.addresses if isinstance(addr, tuple)), self.port)
        self.metrics.attach()
        self.recent.attach()
        self.streams.start()
        if not is_loopback(self.host):
            log.warning("dashboard is reachable from the network at %s (token required)", self.url)
        log.info("dashboard listening on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await self.streams.close()
        self.metrics.detach()
        self.recent.detach()
        await runner.cleanup()
        log.info("dashboard stopped")

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the app ---------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth.middleware(self._unauthorised)], client_max_size=64 * 1024)
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self._page)
        app.router.add_get("/health", self._health)
        app.router.add_get("/api/sessions", self._sessions)
        app.router.add_get("/api/projects", self._projects)
        app.router.add_get("/api/budgets", self._budgets)
        app.router.add_get("/api/chains", self._chains)
        app.router.add_get("/api/messages", self._messages)
        app.router.add_get("/api/threads/{thread_id}/conversation", self._conversation)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/approvals", self._approvals)
        app.router.add_post("/api/approvals/{id}", self._decide)
        app.router.add_post("/api/threads/{thread_id}/continue", self._continue)
        app.router.add_get("/api/events", self.streams.handle)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get(LOGIN_PATH, self._login)
        app.router.add_post(LOGIN_PATH, self._login)
        app.router.add_get(LOGIN_STYLE_PATH, self._login_style)
        if self._control is not None:
            # The control API's HTTP door, behind the same token rules as every other route.
            self._control.add_routes(app, http=True)
        return app

    def _status_document(self) -> dict[str, Any]:
        return payloads.status_json(self.core, self.clock, self.recent.newest_first(EVENT_LIMIT))

    async def _page(self, request: web.Request) -> web.Response:
        thread_id = request.query.get("thread", "").strip()
        thread = await self._conversation_document(thread_id) if thread_id else None
        return web.Response(text=render_page(self._status_document(), thread), content_type="text/html")

    async def _conversation_document(self, thread_id: str) -> dict[str, Any]:
        return payloads.conversation_json(thread_id, await self.core.conversation(thread_id))

    async def _conversation(self, request: web.Request) -> web.Response:
        document = await self._conversation_document(request.match_info["thread_id"])
        return web.json_response(document, dumps=_dumps)

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response(payloads.health_json(self.core, self.clock), dumps=_dumps)

    async def _sessions(self, _request: web.Request) -> web.Response:
        names = payloads.project_names(self.core.projects())
        return web.json_response(payloads.sessions_json(self.core.sessions(), names), dumps=_dumps)

    async def _projects(self, _request: web.Request) -> web.Response:
        return web.json_response([payloads.project_json(p) for p in self.core.projects()], dumps=_dumps)

    async def _budgets(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(payloads.budgets_json(self.core.budgets()), dumps=_dumps)

    async def _chains(self, _request: web.Request) -> web.Response:
        names = payloads.project_names(self.core.projects())
        return web.json_response([payloads.chain_json(c, names) for c in self.core.chains()], dumps=_dumps)

    async def _messages(self, request: web.Request) -> web.Response:
        try:
            limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be a number") from None
        document = payloads.messages_json(self.core.recent_messages(limit), self.core.message_counts())
        return web.json_response(document, dumps=_dumps)

    async def _approvals(self, _request: web.Request) -> web.Response:
        return web.json_response([dataclasses.asdict(a) for a in self.core.approvals()], dumps=_dumps)

    async def _json_command(self, request: web.Request) -> dict[str, Any] | web.Response:
        """A command's JSON body, or the response refusing it: the control API's rule for commands
        (behind the token, JSON only, from no other web origin)."""
        from mpg_tui.control.server import ControlService

        try:
            ControlService.guard_http_command(request)
            body = await request.json()
        except ControlError as exc:
            return web.json_response({"error": exc.message}, status=exc.status)
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        return body

    async def _continue(self, request: web.Request) -> web.Response:
        """``{"amountUsd": number?}``: as the operator, raise a paused thread's limit once."""
        body = await self._json_command(request)
        if isinstance(body, web.Response):
            return body
        amount = body.get("amountUsd")
        if amount is not None and (
            isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < 1e6
        ):
            return web.json_response({"error": "amountUsd: a positive number of dollars"}, status=400)
        thread_id = request.match_info["thread_id"]
        paused = {p.thread_id for p in self.core.budgets().paused}
        reply = await self.core.continue_thread(thread_id, None if amount is None else float(amount))
        log.info("dashboard: continue %s (%s)", thread_id, "default amount" if amount is None else f"${amount}")
        return web.json_response({"continued": thread_id in paused, "text": reply}, dumps=_dumps)

    async def _decide(self, request: web.Request) -> web.Response:
        """``{"choice": "allow" | "allow_session" | "deny" | "option:<n>"}``: decide as the operator.

        Behind the dashboard's token like every route, and, like the control API's commands,
        only as JSON from no other web origin."""
        body = await self._json_command(request)
        if isinstance(body, web.Response):
            return body
        choice = body.get("choice")
        if choice not in ("allow", "allow_session", "deny") and not (
            isinstance(choice, str) and choice.startswith("option:") and choice[7:].isdigit()
        ):
            return web.json_response({"error": "choice: allow, allow_session, deny or option:<n>"}, status=400)
        waiting = {a.id for a in self.core.approvals()}
        request_id = request.match_info["id"]
        reply = await self.core.decide(request_id, str(choice))
        log.info("dashboard: approval %s decided %s", request_id, choice)
        return web.json_response({"decided": request_id in waiting, "text": reply}, dumps=_dumps)

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(self._status_document(), dumps=_dumps)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _static_file(self, request: web.Request) -> web.Response:
        # Looked up by exact name in a table built at start-up: "..", "/" or encoded tricks match nothing.
        entry = self._static.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        headers = {"Content-Type": entry.content_type, "ETag": entry.etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == entry.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=entry.body, headers=headers)

    async def _login_style(self, _request: web.Request) -> web.Response:
        entry = self._static["style.css"]
        return web.Response(body=entry.body, headers={"Content-Type": entry.content_type, "Cache-Control": "no-cache"})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        if not self._auth.required:
            raise web.HTTPSeeOther("/")
        if request.method == "POST":
            form = await request.post()
            candidate = form.get("token")
        else:
            candidate = request.query.get("token")
        if candidate is None:
            return web.Response(text=render_login(), content_type="text/html")
        if not isinstance(candidate, str) or not self._auth.check_token(candidate):
            log.warning("dashboard sign-in with a wrong token from %s", request.remote)
            return web.Response(status=401, text=render_login("That token is not right."), content_type="text/html")
        # 303 to "/" also takes the token out of the address bar and the history.
        response = web.Response(status=303, headers={"Location": "/"})
        self._auth.set_login_cookie(response)
        return response

    async def _unauthorised(self, request: web.Request) -> web.StreamResponse:
        challenge = {"WWW-Authenticate": 'Bearer realm="mpg-dashboard"'}
        if request.path == "/" and "text/html" in request.headers.get("Accept", ""):
            return web.Response(status=401, text=render_login(), content_type="text/html", headers=challenge)
        return web.json_response(
            {"error": "unauthorized", "hint": "send 'Authorization: Bearer <token>' or sign in at /login"},
            status=401,
            headers=challenge,
        )
