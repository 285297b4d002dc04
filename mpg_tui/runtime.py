"""Builds one running gateway from a config: store, runners, sessions, core, Discord, dashboard.

Used by every face: headless ``--no-ui`` drives :meth:`Runtime.run` directly, the cockpit
runs it as a Textual worker. Nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mpg_tui.config import GatewayConfig
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.gateway import Gateway, Poster, Recovered
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.dashboard.server import Dashboard, DashboardError
from mpg_tui.discord_adapter.client import DiscordStartError, GatewayClient
from mpg_tui.discord_adapter.endpoint import point_discord_py_at
from mpg_tui.runners.base import Runner
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.worktrees import WorktreeManager

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 5.0
"""How long shutdown lets message handlers post their last words before Discord is closed."""


class StartupError(Exception):
    """The gateway cannot start; the message tells the operator what to fix."""


@dataclass
class RuntimeSettings:
    config: GatewayConfig
    token: str
    sessions_path: Path
    run_dir: Path
    api_base: str | None = None
    """A Discord-compatible server to use instead of discord.com (the sandbox)."""
    dashboard: bool = True
    dashboard_token: str | None = None
    claude_command: tuple[str, ...] = ("claude",)
    child_env: Mapping[str, str] | None = None
    poster: Poster | None = None
    guild_ready_timeout: float = 2.0
    extra: dict[str, object] = field(default_factory=dict)


class Runtime:
    """One gateway process's parts, started and stopped together."""

    def __init__(self, settings: RuntimeSettings, *, clock: Clock | None = None, bus: EventBus | None = None) -> None:
        self.settings = settings
        config = settings.config
        defaults = config.defaults
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus()
        self.store = SessionStore(
            settings.sessions_path,
            clock=self.clock,
            ttl_ms=defaults.session_ttl_ms,
            max_entries=defaults.max_persisted_sessions,
        )
        self.runners: dict[RunnerKind, Runner] = {"direct": DirectRunner(self.clock)}
        if config.uses_tmux:
            self.runners["tmux"] = self._tmux_runner()
        self.sessions = SessionManager(
            config=config,
            store=self.store,
            runners=self.runners,
            bus=self.bus,
            clock=self.clock,
            worktrees=WorktreeManager(),
            command=settings.claude_command,
            child_env=settings.child_env,
        )
        self.gateway = Gateway(
            config=config, sessions=self.sessions, bus=self.bus, clock=self.clock, poster=settings.poster
        )
        self.client = GatewayClient(
            handler=self.gateway.handle_message,
            bus=self.bus,
            members_intent=config.needs_members_intent,
            guild_ready_timeout=settings.guild_ready_timeout,
        )
        self.gateway.attach_chat(self.client.chat)
        self.dashboard: Dashboard | None = None
        port = defaults.http_port
        if settings.dashboard and port is not False:
            self.dashboard = Dashboard(
                self.gateway,
                host=defaults.http_host,
                port=port,
                token=settings.dashboard_token or defaults.dashboard_token,
                clock=self.clock,
            )
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _tmux_runner(self) -> Runner:
        from mpg_tui.runners.tmux import TmuxRunner, TmuxUnavailable, ensure_tmux

        try:
            ensure_tmux()
        except TmuxUnavailable as exc:
            raise StartupError(str(exc)) from exc
        return TmuxRunner(self.settings.config.defaults.tmux_socket, self.settings.run_dir, clock=self.clock)

    @property
    def dashboard_url(self) -> str | None:
        return self.dashboard.url if self.dashboard is not None and self.dashboard.running else None

    def request_stop(self) -> None:
        self._stop.set()

    async def start_dashboard(self) -> None:
        if self.dashboard is None:
            return
        try:
            await self.dashboard.start()
        except DashboardError as exc:
            log.error("%s (the gateway keeps running without it)", exc)
            self.dashboard = None
        else:
            log.info("Dashboard at %s", self.dashboard.url)

    async def run(self) -> None:
        """Serve until :meth:`request_stop` or the Discord client ends; then shut down cleanly."""
        if self.settings.api_base:
            point_discord_py_at(self.settings.api_base)
        await self.sessions.load()
        await self.start_dashboard()
        client = asyncio.create_task(self.client.run_until_closed(self.settings.token), name="discord")
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        ready = asyncio.create_task(self._after_ready(), name="after-ready")
        try:
            done, _ = await asyncio.wait({client, stop}, return_when=asyncio.FIRST_COMPLETED)
            if client in done:
                client.result()  # DiscordStartError and friends surface here
        finally:
            ready.cancel()
            stop.cancel()
            await self.shutdown()
            if not client.done():
                client.cancel()
            with contextlib.suppress(asyncio.CancelledError, DiscordStartError):
                await client

    async def _after_ready(self) -> None:
        await self.client.ready.wait()
        recovered = await self._recover_tmux_runs()
        await self.gateway.report_lost_runs({r.key for r in recovered})
        for run in recovered:
            # Not children of this task: shutdown cancels it, but a delivery must finish (drain).
            task = asyncio.create_task(self.gateway.deliver_recovered(run), name=f"recovered {run.key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recover_tmux_runs(self) -> list[Recovered]:
        """Runs a previous gateway left in tmux, for the sessions we know; leftovers are cleaned up."""
        runner = self.runners.get("tmux")
        if runner is None:
            return []
        from mpg_tui.runners.tmux import TmuxRunner

        assert isinstance(runner, TmuxRunner)
        try:
            runs = await runner.recover({entry.key: entry for entry in self.store.entries()})
        except Exception:
            log.exception("recovering tmux runs failed; their threads will be told the runs were lost")
            return []
        if runs:
            log.info("found %d run(s) left in tmux by the previous gateway", len(runs))
        return [
            Recovered(
                key=run.key,
                thread_id=run.request.thread_id,
                project_key=run.request.project_key,
                started_at=run.request.started_at,
                wait=run.wait,
            )
            for run in runs
        ]

    async def shutdown(self) -> None:
        """Persist sessions, end direct runs, close Discord and the dashboard. Idempotent."""
        log.info("Shutting down")
        await self.sessions.close()
        await self.store.flush()
        if not await self.gateway.drain(DRAIN_TIMEOUT_S):
            log.warning("some messages were still being handled after %ss; closing Discord anyway", DRAIN_TIMEOUT_S)
        if not self.client.is_closed():
            await self.client.close()
        if self.dashboard is not None:
            await self.dashboard.stop()
