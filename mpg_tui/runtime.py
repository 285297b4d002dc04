"""Builds one running gateway from a config: store, runners, sessions, core, Discord, dashboard.

Used by every face: headless ``--no-ui`` drives :meth:`Runtime.run` directly, the cockpit
runs it as a Textual worker. Nothing here imports Textual.

While it runs, the runtime watches its ``config.json`` (a cheap ``stat`` every
:data:`CONFIG_POLL_S` on the injectable clock, and at once on :meth:`Runtime.request_reload`,
which headless mode wires to SIGHUP). A valid edit applies to messages from then on; an
invalid one is logged with the :class:`~mpg_tui.config.ConfigError` text and the config in
force stays in force. Settings bound at start-up (Discord, the dashboard, tmux, the store's
limits) are named in a warning and need a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpg_tui.config import ConfigError, GatewayConfig, load_config
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.approval_tokens import load_or_create_key
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.audit import AuditLog
from mpg_tui.core.budget import BUDGET_FILE_NAME, BudgetBook
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, SystemClock, TimerHandle
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.gateway import Gateway, Poster, Recovered
from mpg_tui.core.journal import Journal
from mpg_tui.core.runner import Runner
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.dashboard.server import Dashboard, DashboardError
from mpg_tui.discord_adapter.client import DiscordStartError, GatewayClient
from mpg_tui.discord_adapter.endpoint import point_discord_py_at
from mpg_tui.locations import LocationError, ensure_private_dir
from mpg_tui.logs import publish_logs_to
from mpg_tui.runners.approval_tool import ApprovalToolLaunch
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.runners.live import LiveRunner
from mpg_tui.worktrees import WorktreeManager

log = logging.getLogger(__name__)

APPROVAL_KEY_FILE = "approvals.key"
AUDIT_FILE = "approvals-audit.jsonl"
DRAIN_TIMEOUT_S = 5.0
"""How long shutdown lets message handlers post their last words before Discord is closed."""
CONFIG_POLL_S = 2.0
"""How often the config file is checked for edits."""
# Settings read once at start-up: a reload that changes them says they need a restart.
_RESTART_ONLY_DEFAULTS = (
    "http_port",
    "http_host",
    "dashboard_token",
    "discord_api_base",
    "tmux_socket",
    "session_ttl_ms",
    "max_persisted_sessions",
)


JOURNAL_FILE_NAME = "journal.sqlite3"


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
    config_path: Path | None = None
    """The file ``config`` came from: watched while running and reloaded when it changes."""
    control_socket: bool = True
    """Serve the control API on a Unix socket in ``run_dir`` (cockpits attach through it)."""
    budget_path: Path | None = None
    """The spend ledger; by default ``budget.json`` in the profile's state directory (``run_dir``'s parent)."""

    @property
    def budget_file(self) -> Path:
        return self.budget_path or self.run_dir.parent / BUDGET_FILE_NAME

    journal_path: Path | None = None
    """The inbound message journal; by default ``journal.sqlite3`` in the state directory (beside ``run_dir``)."""

    @property
    def journal_file(self) -> Path:
        return self.journal_path or self.run_dir.parent / JOURNAL_FILE_NAME

    freeze_heap: bool = True
    """Keep what start-up built out of the garbage collector's full collections (``gc.freeze``) while it serves."""
    audit_path: Path | None = None
    """The approvals audit log; beside ``run_dir`` (in the profile's state directory) when unset."""


class Runtime:
    """One gateway process's parts, started and stopped together."""

    def __init__(self, settings: RuntimeSettings, *, clock: Clock | None = None, bus: EventBus | None = None) -> None:
        self.settings = settings
        config = settings.config
        defaults = config.defaults
        self.clock: Clock = clock or SystemClock()
        self.bus = bus or EventBus(self.clock)
        self.store = SessionStore(
            settings.sessions_path,
            clock=self.clock,
            ttl_ms=defaults.session_ttl_ms,
            max_entries=defaults.max_persisted_sessions,
        )
        ensure_private_dir(settings.run_dir)
        self.approvals = ApprovalBroker(
            bus=self.bus,
            clock=self.clock,
            # Beside the run directory, in the profile's private state directory: the run
            # directory holds only what runs leave behind.
            key=load_or_create_key(settings.run_dir.parent / APPROVAL_KEY_FILE),
            project=lambda key: self.settings.config.project(key),
            chat=lambda: self.client.chat,
            audit=AuditLog(settings.audit_path or settings.run_dir.parent / AUDIT_FILE),
        )
        relay = ApprovalToolLaunch(socket_path(settings.run_dir)) if settings.control_socket else None
        # Direct runs keep a warm claude per session between turns (``warm``, on by default);
        # the one-turn DirectRunner inside runs the projects that turn it off.
        self._direct = LiveRunner(
            DirectRunner(self.clock, registry_dir=settings.run_dir, approval_tool=relay),
            self.clock,
            idle_s=defaults.warm_idle_ms / 1000,
            max_processes=config.warm_processes_limit,
            registry_dir=settings.run_dir,
        )
        self.runners: dict[RunnerKind, Runner] = {"direct": self._direct}
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
            approvals=self.approvals,
        )
        self.budget = BudgetBook(self.bus, self.clock, settings.budget_file)
        self.journal = Journal(settings.journal_file, self.clock)
        self.gateway = Gateway(
            config=config,
            sessions=self.sessions,
            bus=self.bus,
            clock=self.clock,
            poster=settings.poster,
            budget=self.budget,
            journal=self.journal,
            approvals=self.approvals,
        )
        self.client = GatewayClient(
            handler=self.gateway.handle_message,
            bus=self.bus,
            members_intent=config.needs_members_intent,
            guild_ready_timeout=settings.guild_ready_timeout,
            on_new_session=self._catch_up,
            on_click=self.gateway.card_clicked,
        )
        self.gateway.attach_chat(self.client.chat)
        dashboard_token = settings.dashboard_token or defaults.dashboard_token
        self.events = EventJournal(self.gateway, redact=(settings.token, dashboard_token))
        self.control = ControlService(
            self.gateway,
            self.events,
            socket_file=socket_path(settings.run_dir) if settings.control_socket else None,
        )
        self.dashboard: Dashboard | None = None
        port = defaults.http_port
        if settings.dashboard and port is not False:
            self.dashboard = Dashboard(
                self.gateway,
                host=defaults.http_host,
                port=port,
                token=dashboard_token,
                clock=self.clock,
                control=self.control,
            )
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _tmux_runner(self) -> Runner:
        from mpg_tui.runners.tmux import TmuxRunner, TmuxUnavailable, ensure_tmux

        try:
            ensure_tmux()
        except TmuxUnavailable as exc:
            raise StartupError(str(exc)) from exc
        relay = ApprovalToolLaunch(socket_path(self.settings.run_dir)) if self.settings.control_socket else None
        return TmuxRunner(
            self.settings.config.defaults.tmux_socket, self.settings.run_dir, clock=self.clock, approval_tool=relay
        )

    @property
    def dashboard_url(self) -> str | None:
        return self.dashboard.url if self.dashboard is not None and self.dashboard.running else None

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        """Read the config file again now (SIGHUP), rather than at the next poll."""
        self._reload.set()

    async def reload_config(self) -> bool:
        """Load the config file and apply it; on a bad file, log why and keep the current config."""
        path = self.settings.config_path
        if path is None:
            return False
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("Config not reloaded; the previous config stays in force. %s", exc)
            return False
        self._apply_config(config)
        log.info("Config reloaded from %s: %d project(s)", path, len(config.projects))
        return True

    def _apply_config(self, config: GatewayConfig) -> None:
        old = self.settings.config
        changed = [
            name for name in _RESTART_ONLY_DEFAULTS if getattr(old.defaults, name) != getattr(config.defaults, name)
        ]
        if config.uses_tmux and "tmux" not in self.runners:
            changed.append("persistence (tmux)")
        if config.needs_members_intent and not old.needs_members_intent:
            # Without the members intent no member has roles: every message is refused (fails closed).
            changed.append("allowedRoles (needs the server members intent)")
        if changed:
            log.warning("Config reload: these settings take effect only after a restart: %s", ", ".join(changed))
        self.settings.config = config
        # Warm processes were started with the old settings: they close (busy ones after their turn).
        self._direct.reconfigure(idle_s=config.defaults.warm_idle_ms / 1000, max_processes=config.warm_processes_limit)
        self.sessions.reload(config)
        self.gateway.reload(config)

    async def _watch_config(self) -> None:
        """Reload the config when its file changes (polled) or when asked to (SIGHUP)."""
        path = self.settings.config_path
        if path is None:
            return
        seen = await asyncio.to_thread(_file_signature, path)
        while True:
            await self._wait_for_reload_or(CONFIG_POLL_S)
            asked = self._reload.is_set()
            self._reload.clear()
            current = await asyncio.to_thread(_file_signature, path)
            if asked or current != seen:
                seen = current
                try:
                    await self.reload_config()
                except Exception:  # a bug in applying it must not end the watch
                    log.exception("reloading the config failed; the previous config stays in force")

    async def _wait_for_reload_or(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.Future[None] = loop.create_future()

        def ring() -> None:
            if not timer.done():
                timer.set_result(None)

        handle: TimerHandle = self.clock.call_later(seconds, ring)
        asked = asyncio.ensure_future(self._reload.wait())
        either: list[asyncio.Future[Any]] = [timer, asked]
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            handle.cancel()
            timer.cancel()
            asked.cancel()

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

    async def start_control(self) -> None:
        """Open the control socket; without it the gateway serves on, but no cockpit can attach."""
        try:
            if self.control.socket_file is not None:
                ensure_private_dir(self.control.socket_file.parent)
            await self.control.start()
        except (OSError, LocationError) as exc:
            log.error("Control socket not opened: %s (cockpits cannot attach to this gateway)", exc)

    async def run(self) -> None:
        """Serve until :meth:`request_stop` or the Discord client ends; then shut down cleanly."""
        if self.settings.api_base:
            point_discord_py_at(self.settings.api_base)
        stop_publishing_logs = publish_logs_to(self.bus)
        try:
            await self._serve()
        finally:
            stop_publishing_logs()

    async def _serve(self) -> None:
        await self._end_orphaned_direct_runs()
        await self.sessions.load()
        await asyncio.to_thread(self.budget.load)
        await self.start_control()
        await self.start_dashboard()
        frozen = self._freeze_heap()
        client = asyncio.create_task(self.client.run_until_closed(self.settings.token), name="discord")
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        ready = asyncio.create_task(self._after_ready(), name="after-ready")
        watch = asyncio.create_task(self._watch_config(), name="config-watch")
        try:
            done, _ = await asyncio.wait({client, stop}, return_when=asyncio.FIRST_COMPLETED)
            if client in done:
                client.result()  # DiscordStartError and friends surface here
        finally:
            ready.cancel()
            stop.cancel()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await self.shutdown()
            if frozen:
                gc.unfreeze()
            if not client.done():
                client.cancel()
            with contextlib.suppress(asyncio.CancelledError, DiscordStartError):
                await client

    def _freeze_heap(self) -> bool:
        """Move what start-up built (modules, config, sessions: ~70,000 objects) out of full collections.

        A full collection walks every object the interpreter tracks; with the start-up
        heap that takes ~45 ms, a stall for whatever message is in flight when one comes
        due. Collected first, so no garbage is kept; handed back at shutdown.
        """
        if not self.settings.freeze_heap:
            return False
        gc.collect()
        gc.freeze()
        return True

    async def _end_orphaned_direct_runs(self) -> None:
        """End the direct runs a killed gateway left going, before Discord connects: none
        may go on editing a project while its thread is told the run was lost."""
        try:
            await self._direct.sweep_orphans()
        except Exception:  # the gateway must start all the same
            log.exception("ending the direct runs left by the previous gateway failed")

    async def _after_ready(self) -> None:
        await self.client.ready.wait()
        recovered = await self._recover_tmux_runs()
        keys = {r.key for r in recovered}
        told = await self.gateway.report_lost_runs(keys)
        for run in recovered:
            # Not children of this task: shutdown cancels it, but a delivery must finish (drain).
            task = asyncio.create_task(self.gateway.deliver_recovered(run), name=f"recovered {run.key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await self.gateway.resume_journal(recovered=keys, told=told)
        except Exception:  # the gateway must serve all the same
            log.exception("finishing the messages left by the previous gateway failed")
        await self._catch_up()

    async def _catch_up(self) -> None:
        try:
            await self.gateway.catch_up()
        except Exception:
            log.exception("catching up on messages posted while the gateway was away failed")

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
        await self.budget.flush(durable=True)
        if not await self.gateway.drain(DRAIN_TIMEOUT_S):
            log.warning("some messages were still being handled after %ss; closing Discord anyway", DRAIN_TIMEOUT_S)
        if not self.client.is_closed():
            await self.client.close()
        await self.control.stop()
        if self.dashboard is not None:
            await self.dashboard.stop()
        self.journal.close()


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is edited or replaced; None when it cannot be read."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
