"""The sandbox server: one aiohttp application for REST, the gateway and the control API.

:class:`SandboxServer` is what tests, benchmarks and ``mpg-tui demo`` hold: start it, point
discord.py at :attr:`SandboxServer.api_base`, act as users with :meth:`post_as_user`, and
watch what the bot did through :attr:`actions` / :meth:`wait_for`. The same controls are
served as JSON under ``/_sandbox/`` for other processes (see :mod:`.control`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.sandbox.discord import errors
from mpg_tui.sandbox.discord.actions import Action, ActionLog
from mpg_tui.sandbox.discord.control import ControlApi
from mpg_tui.sandbox.discord.faults import Fault, FaultInjector, Hold, HoldBook
from mpg_tui.sandbox.discord.gateway import Gateway
from mpg_tui.sandbox.discord.interactions import InteractionRecord, Interactions
from mpg_tui.sandbox.discord.records import SandboxFile
from mpg_tui.sandbox.discord.rest import RestApi
from mpg_tui.sandbox.discord.spec import SandboxSpec
from mpg_tui.sandbox.discord.state import SandboxState

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 30 * 1024 * 1024


class SandboxServer:
    """A Discord-compatible server on loopback.

    ``port=0`` picks a free port; :attr:`base_url` is known after :meth:`start`.
    """

    def __init__(
        self,
        spec: SandboxSpec | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.spec = spec or SandboxSpec.default()
        self.host = host
        self.port = port
        self.state = SandboxState(self.spec, clock or SystemClock())
        self.action_log = ActionLog()
        self.faults = FaultInjector()
        self.holds = HoldBook()
        self.gateway = Gateway(self.state, heartbeat_interval_ms=heartbeat_interval_ms)
        self.state.sink = self.gateway
        self.interactions = Interactions(self.state)
        self.rest = RestApi(
            self.state,
            self.action_log,
            self.faults,
            lambda: self.gateway_url,
            holds=self.holds,
            interactions=self.interactions,
        )
        self.app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        self.rest.register(self.app)
        ControlApi(self).register(self.app)
        self.app.router.add_get("/", self.gateway.handle)
        self.app.on_shutdown.append(self._on_shutdown)
        self._runner: web.AppRunner | None = None

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("sandbox server already started")
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("sandbox server bound to %s: its control API has no authentication", self.host)
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.state.base_url = self.base_url
        self.gateway.url = self.gateway_url
        log.info("sandbox Discord server at %s", self.base_url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.gateway.close_all()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What discord.py's REST is pointed at (``discord.http.Route.BASE``)."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/"

    @property
    def token(self) -> str:
        return self.spec.token

    # -- acting as the world --------------------------------------------------------------

    async def post_as_user(
        self,
        channel_id: str,
        user_id: str,
        content: str = "",
        *,
        attachments: Sequence[SandboxFile] = (),
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Post as a (non-bot) member; dispatches MESSAGE_CREATE. Returns the message as REST shows it.

        Raises :class:`~.errors.ApiError` for what Discord would refuse (unknown channel,
        empty or over-long message) and :class:`KeyError` for a user not in the spec.
        """
        if user_id not in self.state.users:
            raise KeyError(f"no user {user_id!r} in the sandbox spec")
        reference = {"message_id": reply_to, "channel_id": channel_id} if reply_to else None
        msg = self.state.create_message(channel_id, user_id, content=content, files=attachments, reference=reference)
        return self.state.shapes.message_json(msg)

    def click(self, channel_id: str, message_id: str, user_id: str, custom_id: str) -> InteractionRecord:
        """A (non-bot) member presses a button of a message; dispatches INTERACTION_CREATE.

        The bot's answers collect in the returned record's ``responses``."""
        return self.interactions.click(channel_id, message_id, user_id, custom_id)

    def archive(self, thread_id: str, *, locked: bool = False) -> dict[str, Any]:
        """Archive a thread as Discord's auto-archive would (THREAD_UPDATE; not a bot action)."""
        channel = self.state.channel(thread_id)
        if not channel.is_thread:
            raise errors.wrong_channel_type()
        return self.state.shapes.channel_json(
            self.state.update_channel(thread_id, {"archived": True, "locked": locked})
        )

    def delete_message(self, channel_id: str, message_id: str) -> None:
        """Delete a message as a moderator would (MESSAGE_DELETE; not a bot action)."""
        self.state.delete_message(channel_id, message_id)

    def refuse_threads(self, channel_id: str, refuse: bool = True) -> None:
        """Make thread creation in ``channel_id`` fail with 403 Missing Permissions."""
        self.state.channel(channel_id).refuse_threads = refuse

    # -- looking at the world -------------------------------------------------------------

    @property
    def actions(self) -> list[Action]:
        """What the bot did, oldest first."""
        return self.action_log.snapshot()

    @property
    def last_seq(self) -> int:
        """The newest action's number: pass it as ``after`` to wait only for later ones."""
        return self.action_log.last_seq

    async def wait_for(
        self, predicate: Callable[[Action], bool] = lambda _a: True, timeout: float = 5.0, *, after: int = 0
    ) -> Action:
        return await self.action_log.wait_for(predicate, timeout, after=after)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Every message in a channel or thread, oldest first."""
        channel = self.state.channel(channel_id)
        return [self.state.shapes.message_json(m) for m in channel.messages.values()]

    def threads(self, parent_id: str) -> list[dict[str, Any]]:
        self.state.channel(parent_id)
        return [self.state.shapes.channel_json(t) for t in self.state.threads_of(parent_id)]

    def channel(self, channel_id: str) -> dict[str, Any]:
        return self.state.shapes.channel_json(self.state.channel(channel_id))

    @property
    def connected(self) -> int:
        """Gateway sessions with a live websocket."""
        return self.gateway.connected_sessions

    # -- faults and connection trouble ----------------------------------------------------

    def inject(
        self,
        method: str,
        route_pattern: str,
        status: int,
        count: int = 1,
        *,
        retry_after: float = 0.1,
        via: bool = True,
        is_global: bool = False,
        message: str | None = None,
    ) -> Fault:
        """Answer the next ``count`` matching REST calls with ``status`` instead.

        ``route_pattern`` is a path below ``/api/v10`` where ``*`` is one segment
        (``/channels/*/messages``); ``method`` may be ``*``. For 429, ``via=False`` makes
        discord.py raise ``HTTPException`` instead of sleeping ``retry_after`` and retrying.
        """
        return self.faults.add(Fault(method, route_pattern, status, count, retry_after, via, is_global, message))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.holds.clear()

    def hold(
        self,
        method: str,
        route_pattern: str,
        count: int = 1,
        *,
        seconds: float | None = None,
        content_prefix: str | None = None,
    ) -> Hold:
        """Hold the next ``count`` matching REST calls until :meth:`Hold.release` (or ``seconds``).

        Held calls then go on as normal, so a test can keep a call in flight for exactly as
        long as its scenario needs (``await hold.arrived.wait()``, do something, release).
        """
        return self.holds.add(Hold(method, route_pattern, count, seconds, content_prefix))

    def drop_connections(self, code: int | None = None) -> int:
        """Cut every gateway connection (abruptly, or with close ``code``); clients RESUME."""
        return self.gateway.drop_connections(code)

    def send_reconnect(self) -> int:
        """Send op 7 RECONNECT; clients close and RESUME."""
        return self.gateway.send_reconnect()

    def invalidate_sessions(self, *, resumable: bool = False) -> int:
        """Send op 9; unless ``resumable`` the sessions are forgotten and clients IDENTIFY again."""
        return self.gateway.invalidate_sessions(resumable=resumable)
