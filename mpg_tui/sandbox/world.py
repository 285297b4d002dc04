"""A real gateway on in-memory adapters, stepped one message and one run at a time.

:class:`World` wires the core exactly as the runtime does (:class:`Gateway`,
:class:`SessionManager`, :class:`SessionStore` on disk, :class:`EventBus`) but with an
:class:`~mpg_tui.sandbox.inmemory.InMemoryChat` for Discord and a
:class:`~mpg_tui.sandbox.inmemory.ScriptedRunner` per runner kind for claude, on a
:class:`FakeClock`. Messages enter through :meth:`Gateway.handle_message`, as they do from
Discord; runs are held open until the caller feeds them progress and finishes them.
The faces' tests, the benchmarks and the screenshot script look at this world, so what
they show is what the core can reach.

Each step waits for the core to act on it (a run starts, a chain moves on), never for
wall time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mpg_tui.config import GatewayConfig, parse_config
from mpg_tui.core.api import SessionInfo
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import (
    ConnectionChanged,
    ConnectionState,
    Event,
    HandoffStopped,
    RunnerKind,
    RunRecovering,
    RunStarted,
    SessionQueued,
)
from mpg_tui.core.gateway import Gateway, Recovered
from mpg_tui.core.ports import HistoryMessage, InboundMessage
from mpg_tui.core.runner import ErrorKind, ProgressCallback, RunRequest, RunResult
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.sandbox.inmemory import InMemoryChat, LiveRun, ScriptedRunner
from mpg_tui.worktrees import WorktreeManager

STEP_TIMEOUT_S = 10.0
"""How long one step may wait for the core before the world gives up (a hang, not a pace)."""

Predicate = Callable[[Event], bool]


class World:
    """The core as the runtime builds it, on an in-memory chat, scripted runners and a fake clock."""

    def __init__(
        self,
        config: GatewayConfig | Mapping[str, Any],
        state_dir: Path,
        *,
        clock: FakeClock | None = None,
        member: str = "ann",
        worktrees: WorktreeManager | None = None,
    ) -> None:
        self.config = config if isinstance(config, GatewayConfig) else parse_config(dict(config))
        self.clock = clock or FakeClock()
        self.bus = EventBus(self.clock)
        self.chat = InMemoryChat()
        self.runners: dict[RunnerKind, ScriptedRunner] = {
            "direct": ScriptedRunner("direct", self.clock),
            "tmux": ScriptedRunner("tmux", self.clock),
        }
        self.store = SessionStore(state_dir / "sessions.json", clock=self.clock)
        self.approvals = ApprovalBroker(
            bus=self.bus,
            clock=self.clock,
            key=b"sandbox-world-approvals-key-0000",
            project=self.config.project,
            chat=lambda: self.chat,
        )
        self.sessions = SessionManager(
            config=self.config,
            store=self.store,
            runners=self.runners,
            bus=self.bus,
            clock=self.clock,
            worktrees=worktrees,
            approvals=self.approvals,
        )
        self.gateway = Gateway(
            config=self.config,
            sessions=self.sessions,
            bus=self.bus,
            clock=self.clock,
            chat=self.chat,
            poster=self._post_as,
            approvals=self.approvals,
        )
        self.member = member
        self.inbound: list[InboundMessage] = []
        """Every message members posted, in order."""
        self._member_ids: dict[str, str] = {}
        self._message_ids = itertools.count(1_400_000_000_000_000_000)
        self._handlers: set[asyncio.Task[None]] = set()
        self._expected: list[tuple[Predicate, asyncio.Future[Event]]] = []
        self._roles = tuple(sorted({role for view in self.config.views() for role in view.allowed_roles}))
        self.bus.listen(self._observe)

    # -- members post --------------------------------------------------------------------------

    def post(
        self,
        channel_id: str,
        content: str,
        *,
        author: str | None = None,
        message_id: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> asyncio.Task[None]:
        """A member posts ``content`` in a project channel or one of its threads; returns its handling."""
        author = author or self.member
        parent = self.chat.threads[channel_id][0] if channel_id in self.chat.threads else None
        message = InboundMessage(
            id=message_id or str(next(self._message_ids)),
            channel_id=channel_id,
            author_id=self._member_ids.setdefault(author, str(1_000 + len(self._member_ids))),
            author_name=author,
            content=content,
            parent_channel_id=parent,
            role_names=self._roles if roles is None else roles,
            created_at=self.clock.now(),
        )
        self.inbound.append(message)
        self.chat.remember(channel_id, HistoryMessage(author, content))
        task = asyncio.get_running_loop().create_task(self.gateway.handle_message(message))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        return task

    async def ask(
        self,
        channel_id: str,
        content: str,
        *,
        author: str | None = None,
        message_id: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> str | None:
        """Post, then wait until the core starts or queues a run for it; returns that session's key.

        None when the gateway answered without a run (a command, a refusal).
        """
        message_id = message_id or str(next(self._message_ids))
        thread_id = channel_id if channel_id in self.chat.threads else message_id
        begun = self.expect(lambda e: _run_begun(e, thread_id))
        handled = self.post(channel_id, content, author=author, message_id=message_id, roles=roles)
        await self._first(begun, handled)
        if not begun.done():
            begun.cancel()
            return None
        event = begun.result()
        assert isinstance(event, RunStarted | SessionQueued)
        return event.key

    # -- claude works ---------------------------------------------------------------------------

    def hold_runs(self, hold: bool) -> None:
        """Hold runs open until finished (the default), or let each answer "Done." at once."""
        for runner in self.runners.values():
            runner.hold = hold

    def live(self, key: str) -> LiveRun:
        """The run of ``key`` held open now (KeyError if none is)."""
        for runner in self.runners.values():
            if key in runner.running:
                return runner.live(key)
        raise KeyError(key)

    def progress(self, key: str, text: str, tool: str | None = None) -> None:
        self.live(key).progress(text, tool)

    async def finish(
        self,
        key: str,
        text: str = "Done.",
        *,
        cost_usd: float = 0.01,
        input_tokens: int = 1200,
        output_tokens: int = 300,
        session_id: str | None = None,
    ) -> None:
        """Claude answers ``text``; returns once the gateway has acted on it (chain stopped or next run begun)."""
        run = self.live(key)
        moved = self._expect_chain_moved(key, run.request.thread_id)
        run.finish(
            text, cost_usd=cost_usd, input_tokens=input_tokens, output_tokens=output_tokens, session_id=session_id
        )
        await self._wait(moved)

    async def fail(
        self,
        key: str,
        error: str,
        *,
        kind: ErrorKind = "api",
        cost_usd: float = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        """Claude fails with ``error``; returns once the gateway has posted it and stopped the chain."""
        run = self.live(key)
        moved = self._expect_chain_moved(key, run.request.thread_id)
        run.fail(error, kind=kind, cost_usd=cost_usd, input_tokens=input_tokens, output_tokens=output_tokens)
        await self._wait(moved)

    async def recover(self, key: str, project_key: str, *, started_at: float) -> None:
        """Start-up found ``key``'s tmux run from an earlier gateway: the gateway waits for it (held open)."""
        thread_id = key.split(":", 1)[0]
        runner = self.runners["tmux"]

        async def wait(on_progress: ProgressCallback) -> RunResult:
            return await runner.run(_recovered_request(key, thread_id, project_key), on_progress)

        recovering = self.expect(lambda e: isinstance(e, RunRecovering) and e.key == key)
        task = asyncio.get_running_loop().create_task(
            self.gateway.deliver_recovered(Recovered(key, thread_id, project_key, started_at, wait))
        )
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        await self._wait(recovering)
        await runner.started(key)

    # -- Discord ---------------------------------------------------------------------------------

    def connect(self, state: ConnectionState = "ready", detail: str = "") -> None:
        """The chat connection changes state (the Discord adapter publishes this)."""
        self.bus.publish(ConnectionChanged(state=state, detail=detail, at=self.clock.now()))

    # -- reading ---------------------------------------------------------------------------------

    def session(self, key: str) -> SessionInfo:
        info = self.gateway.session(key)
        if info is None:
            raise KeyError(key)
        return info

    def expect(self, predicate: Predicate) -> asyncio.Future[Event]:
        """A future for the next published event matching ``predicate`` (register before acting)."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._expected.append((predicate, future))
        return future

    async def idle(self) -> None:
        """Wait until every message posted so far has been handled to the end (no run held open)."""
        if self._handlers:
            await self._wait(asyncio.gather(*self._handlers))

    async def close(self) -> None:
        """Shut the core down as the runtime does; held direct runs end as cancelled."""
        await self.sessions.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    # -- internals -------------------------------------------------------------------------------

    async def _post_as(self, channel_id: str, author: str, content: str) -> None:
        self.post(channel_id, content, author=author)

    def _observe(self, event: Event) -> None:
        if not self._expected:
            return
        waiting = []
        for predicate, future in self._expected:
            if future.done():
                continue
            if predicate(event):
                future.set_result(event)
            else:
                waiting.append((predicate, future))
        self._expected = waiting

    def _expect_chain_moved(self, key: str, thread_id: str) -> asyncio.Future[Event]:
        def moved(event: Event) -> bool:
            if isinstance(event, HandoffStopped):
                return event.thread_id == thread_id
            return _run_begun(event, thread_id) and getattr(event, "key", key) != key

        return self.expect(moved)

    async def _first(self, *waits: asyncio.Future[Any]) -> None:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)

    async def _wait(self, waited: asyncio.Future[Any]) -> None:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await waited


def _run_begun(event: Event, thread_id: str) -> bool:
    if isinstance(event, RunStarted):
        return event.thread_id == thread_id
    if isinstance(event, SessionQueued):
        return event.key.split(":", 1)[0] == thread_id
    return False


def _recovered_request(key: str, thread_id: str, project_key: str) -> RunRequest:
    """What the tmux runner knew of a run an earlier gateway started: its key and where it belongs."""
    return RunRequest(key=key, cwd=Path("."), prompt="", args=[], thread_id=thread_id, project_key=project_key)
