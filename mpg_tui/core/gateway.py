"""The message lifecycle: route → access → command → rate limit → dispatch → run → handoff → reply.

:class:`Gateway` composes the core's rules (router, access, commands, dispatch, turns,
rate limits, history, attachments, chunking, embeds) with the session manager, and is
the :class:`~mpg_tui.core.api.CoreAPI` the faces use. It talks to chat only through a
:class:`~mpg_tui.core.ports.ChatPort`; a chat failure is logged and never loses the
run's result for the other threads, and a thread that stops taking posts while claude
works (locked, deleted) gets its answer in its channel instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from mpg_tui import __version__
from mpg_tui.config import Agent, GatewayConfig, ProjectView
from mpg_tui.core import access
from mpg_tui.core.api import ChainHop, HandoffChain, KilledSession, SessionInfo, Totals
from mpg_tui.core.attachments import AttachmentLimits, save_attachments
from mpg_tui.core.bus import EventBus
from mpg_tui.core.chains import ChainBook, Observed
from mpg_tui.core.clock import Clock
from mpg_tui.core.commands import CommandContext, CommandResult, handle_command
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.dispatch import AgentTarget, UnknownAgent, detect_handoff, resolve_target, session_key
from mpg_tui.core.embeds import EYES, STOPPED, handoff_text, queued_text
from mpg_tui.core.events import (
    ConnectionState,
    HandoffStep,
    MessageReceived,
    MessageRejected,
    ReplySent,
    ThreadOpened,
)
from mpg_tui.core.history import with_history
from mpg_tui.core.keyed_locks import KeyedLocks
from mpg_tui.core.ports import ChatError, ChatPort, InboundMessage
from mpg_tui.core.ratelimit import RateLimiter
from mpg_tui.core.router import Route, Router
from mpg_tui.core.session_state import RecoveredWait, TurnOutcome
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.status import RunStatus
from mpg_tui.core.turns import StickyAgents, TurnCounter, turn_limit_text

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20
THREAD_NAME_LIMIT = 100
THREAD_ARCHIVE_MINUTES = 1440
LOST_RUN_TEXT = (
    "⚠️ The gateway restarted while Claude was working on this thread, and that run was lost. "
    "Send your message again to retry."
)

Poster = Callable[[str, str, str], Awaitable[None]]


@dataclass(frozen=True)
class Recovered:
    """A run an earlier gateway started and left running (or finished) in tmux."""

    key: str
    thread_id: str
    project_key: str
    started_at: float | None
    wait: RecoveredWait


class Gateway:
    """One gateway: every mapped channel's messages, every session, every face's view of them."""

    def __init__(
        self,
        *,
        config: GatewayConfig,
        sessions: SessionManager,
        bus: EventBus,
        clock: Clock,
        chat: ChatPort | None = None,
        poster: Poster | None = None,
    ) -> None:
        self.bus = bus
        self.version = __version__
        self.started_at = clock.now()
        self._config = config
        self._sessions = sessions
        self._clock = clock
        self._chat = chat
        self._poster = poster
        self._router = Router(config)
        self._rate = RateLimiter(clock)
        self._turns = TurnCounter()
        self._sticky = StickyAgents()
        self._intake = KeyedLocks()
        self._background: set[asyncio.Task[None]] = set()
        self._chain_book = ChainBook(bus, clock)
        self._observed = Observed(bus)
        self._delivery = Delivery(lambda: self.chat)
        # Per thread, the last turn's "its results are posted" future: a turn posts after the
        # turns started before it in that thread, however fast it ran (a warm claude answers
        # a queued message while the previous reply is still on its way).
        self._posted: dict[str, asyncio.Future[None]] = {}
        self._post_after: dict[asyncio.Task[TurnOutcome], tuple[asyncio.Future[None] | None, asyncio.Future[None]]] = {}
        self._handling = 0
        self._all_handled = asyncio.Event()
        self._all_handled.set()

    # -- wiring -----------------------------------------------------------------------

    def attach_chat(self, chat: ChatPort) -> None:
        self._chat = chat

    def reload(self, config: GatewayConfig) -> None:
        """Use a new config for messages from now on (runs in flight keep theirs)."""
        self._config = config
        self._router.reload(config)

    @property
    def chat(self) -> ChatPort:
        if self._chat is None:
            raise RuntimeError("no chat adapter attached")
        return self._chat

    # -- CoreAPI ----------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._observed.connection

    def projects(self) -> Sequence[ProjectView]:
        return self._config.views()

    def sessions(self) -> list[SessionInfo]:
        return self._sessions.sessions()

    def session(self, key: str) -> SessionInfo | None:
        return self._sessions.get(key)

    get = session  # commands' SessionControl name for the same lookup

    def chains(self) -> list[HandoffChain]:
        return self._chain_book.chains()

    def totals(self) -> Totals:
        return self._observed.totals()

    async def kill(self, key: str) -> bool:
        return await self.kill_session(key) is not None

    async def kill_session(self, key: str) -> KilledSession | None:
        info = self._sessions.get(key)
        killed = await self._sessions.kill(key)
        if info is not None:
            self._sticky.forget(info.thread_id)
            self._turns.reset(info.thread_id)
        return killed

    async def restart(self, key: str) -> bool:
        return await self._sessions.restart(key)

    async def stop(self, key: str) -> bool:
        return await self._sessions.stop(key)

    async def post(self, channel_id: str, author: str, content: str) -> None:
        if self._poster is None:
            raise RuntimeError("posting as a user is only possible against the sandbox")
        await self._poster(channel_id, author, content)

    # -- start-up ---------------------------------------------------------------------

    async def report_lost_runs(self, recovered: Collection[str] = ()) -> None:
        """Tell each thread whose run died with the last gateway that it was lost.

        ``recovered`` are the keys whose runs the tmux runner found again: those are
        delivered instead (see :meth:`deliver_recovered`).
        """
        for stored in self._sessions.pending_runs_from_disk():
            if stored.key in recovered:
                continue
            thread_id = stored.thread_id or stored.key.split(":", 1)[0]
            with contextlib.suppress(ChatError):
                await self.chat.send(thread_id, LOST_RUN_TEXT)
            self._sessions.forget_pending_run(stored.key)

    # -- the message lifecycle -------------------------------------------------------

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the messages being handled to be done; True if they are.

        At shutdown, after the sessions have answered every waiting prompt: each message's
        handler still has chat work to finish (remove its status line, say the run was cut
        short), which must happen before the chat client closes.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._all_handled.wait()
        return self._all_handled.is_set()

    @contextlib.asynccontextmanager
    async def _handling_one(self) -> AsyncIterator[None]:
        """Count work that must finish its chat calls before the chat client closes (see drain)."""
        self._handling += 1
        self._all_handled.clear()
        try:
            yield
        finally:
            self._handling -= 1
            if self._handling == 0:
                self._all_handled.set()

    async def handle_message(self, msg: InboundMessage) -> None:
        """Everything MPG does for one chat message. Never raises for chat or claude failures."""
        async with self._handling_one():
            await self._handle_message(msg)

    async def _handle_message(self, msg: InboundMessage) -> None:
        if msg.author_is_bot:
            return
        if "\x00" in msg.content:
            # Discord never delivers a NUL, but a prompt is text on claude's stdin, where a NUL
            # means nothing: drop it rather than refuse the whole message.
            msg = dataclasses.replace(msg, content=msg.content.replace("\x00", ""))
        route = self._router.route(msg)
        if route is None:
            return
        project = route.project
        self.bus.publish(
            MessageReceived(
                project_key=project.key,
                channel_id=msg.channel_id,
                thread_id=route.thread_id,
                message_id=msg.id,
                author=msg.author_name,
                content=msg.content[:500],
            )
        )
        try:
            await self._handle_routed(msg, route)
        except ChatError as exc:
            log.warning("chat failure while handling message %s in %s: %s", msg.id, msg.channel_id, exc)
        except Exception:
            log.exception("unexpected failure handling message %s in %s", msg.id, msg.channel_id)
            with contextlib.suppress(ChatError):
                await self.chat.send(msg.channel_id, "**Error**: the gateway failed on this message; see its log.")

    async def _handle_routed(self, msg: InboundMessage, route: Route) -> None:
        project = route.project
        denial = access.check(project, msg)
        if denial is not None:
            self._reject(msg, project, "missing role")
            await self._delivery.send(msg.channel_id, denial)
            return
        ctx = CommandContext.for_message(route, msg, self._config.views(), self._clock.now())
        command = await handle_command(msg.content, ctx, self)
        if isinstance(command, CommandResult):
            for chunk in command.chunks:
                await self._delivery.send(msg.channel_id, chunk)
            return
        if project.rate_limit_per_user:
            decision = self._rate.check(project.key, msg.author_id, project.rate_limit_per_user)
            if decision.reply is not None:
                self._reject(msg, project, "rate limited")
                await self._delivery.send(msg.channel_id, decision.reply)
                return
        if command is not None:
            target: AgentTarget | UnknownAgent = command.target
        else:
            sticky = self._sticky.get(route.thread_id) if route.thread_id else None
            target = resolve_target(msg.content, project.agents, sticky=sticky)
        if isinstance(target, UnknownAgent):
            await self._delivery.send(msg.channel_id, target.reply(project.agents))
            return
        if not target.prompt.strip() and not msg.attachments:
            await self._delivery.send(msg.channel_id, "Send a message with some text for Claude to work on.")
            return

        if target.agent is not None and route.thread_id is not None:
            # The agent a human picked is the thread's agent from now on, not only once it
            # has answered: a follow-up sent while it works waits for it instead of starting
            # a parallel run in the default session. Set before any await, so the thread's
            # next message, handled meanwhile, already sees it.
            self._sticky.set(route.thread_id, target.agent.name)

        # Messages of one thread enter their sessions' queues in the order they arrived. A
        # message that opens a thread also holds that thread's lock from the start: Discord
        # gives the thread the message's ID, and a follow-up may be posted in it before the
        # opener is queued.
        async with contextlib.AsyncExitStack() as intake:
            if route.thread_id is None:
                await intake.enter_async_context(self._intake.hold(msg.channel_id))
            await intake.enter_async_context(self._intake.hold(route.thread_id or msg.id))
            if route.thread_id is None:
                await self._react(msg)  # as MPG: 👀, then the thread, then the reply
            thread_id = route.thread_id or await self._open_thread(msg, project)
            if target.agent is not None and route.thread_id is None:
                self._sticky.set(thread_id, target.agent.name)  # a thread just opened for this message
            self._turns.reset(thread_id)
            prompt = await self._build_prompt(msg, target, thread_id, project)
            # In a thread the 👀 goes out once the turn has started (or queued), alongside it:
            # before, its request would take the loop ahead of claude's spawn.
            react = None if route.thread_id is None else msg
            first = self._start_turn(project, thread_id, target.agent, prompt, react_to=react)
        await self._run_chain(project, thread_id, target.agent, first)

    async def _react(self, msg: InboundMessage) -> None:
        with contextlib.suppress(ChatError):
            await self.chat.react(msg.channel_id, msg.id, EYES)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _reject(self, msg: InboundMessage, project: ProjectView, reason: str) -> None:
        log.info("message from %s in %s rejected: %s", msg.author_name, project.name, reason)
        self.bus.publish(
            MessageRejected(project_key=project.key, channel_id=msg.channel_id, author=msg.author_name, reason=reason)
        )

    async def _open_thread(self, msg: InboundMessage, project: ProjectView) -> str:
        name = " ".join(msg.content.split())[:THREAD_NAME_LIMIT] or "Claude response"
        try:
            thread_id = await self.chat.create_thread(msg.channel_id, msg.id, name, THREAD_ARCHIVE_MINUTES)
        except ChatError as exc:
            log.warning("could not open a thread in %s (%s); replying in the channel", project.name, exc)
            return msg.channel_id
        self._sessions.name_thread(thread_id, name)
        self.bus.publish(
            ThreadOpened(project_key=project.key, channel_id=msg.channel_id, thread_id=thread_id, name=name)
        )
        return thread_id

    async def _build_prompt(
        self, msg: InboundMessage, target: AgentTarget, thread_id: str, project: ProjectView
    ) -> str:
        prompt = target.prompt
        if target.agent is not None and msg.in_thread:
            try:
                history = await self.chat.history(thread_id, HISTORY_LIMIT, before=msg.id)
            except ChatError as exc:
                log.warning("thread history unavailable for %s: %s", thread_id, exc)
                history = []
            if history:
                prompt = with_history(prompt, history, project.agents)
        if msg.attachments:
            key = session_key(thread_id, target.agent_name)
            base = await self._sessions.workspace(key, project, thread_id, target.agent)
            saved = await save_attachments(
                self.chat, msg.attachments, AttachmentLimits.from_defaults(project.defaults), base, msg.id, key
            )
            if saved.notice:
                await self._delivery.send(thread_id, saved.notice)
            prompt += saved.prompt_suffix
        return prompt

    def _start_turn(
        self,
        project: ProjectView,
        thread_id: str,
        agent: Agent | None,
        prompt: str,
        *,
        recovered: Recovered | None = None,
        react_to: InboundMessage | None = None,
    ) -> asyncio.Task[TurnOutcome]:
        """Enqueue one turn now (so queue order is arrival order) and return its task.

        With ``recovered``, the turn is a run an earlier gateway started: it is waited for
        instead of started, and shown in the thread exactly like a live one.

        The typing indicator (and the 👀 on ``react_to``) start once the turn has started or
        is queued, never before: claude's spawn, or the line written to a warm claude,
        comes first, and these chat calls run alongside it.
        """
        key = session_key(thread_id, agent.name if agent else None)
        timeout_s = (project.defaults.agent_timeout_ms if agent else project.defaults.run_timeout_ms) / 1000
        status = RunStatus(
            self.chat,
            thread_id,
            self._clock,
            label=f"@{agent.name}" if agent else "Claude",
            live=project.defaults.progress == "status",
            stuck_notify_s=project.defaults.stuck_notify_ms / 1000,
        )

        done = asyncio.Event()
        typing: list[asyncio.Task[None]] = []

        async def keep_typing() -> None:
            async with self.chat.typing(thread_id):
                await done.wait()

        def alongside() -> None:
            if typing:
                return
            typing.append(asyncio.create_task(keep_typing()))
            if react_to is not None:
                self._in_background(self._react(react_to))

        def on_started() -> None:
            alongside()
            status.start()

        async def on_queued(position: int) -> None:
            alongside()
            await self._delivery.send(thread_id, queued_text(position))

        async def turn() -> TurnOutcome:
            try:
                if recovered is not None:
                    return await self._sessions.adopt(
                        key,
                        project,
                        thread_id,
                        recovered.wait,
                        agent=agent,
                        started_at=recovered.started_at,
                        on_progress=status.on_progress,
                        on_started=on_started,
                    )
                return await self._sessions.submit(
                    key,
                    project,
                    thread_id,
                    prompt,
                    agent=agent,
                    timeout_s=timeout_s,
                    on_queued=on_queued,
                    on_progress=status.on_progress,
                    on_started=on_started,
                )
            finally:
                done.set()
                if typing:
                    await asyncio.wait(typing)
                elif react_to is not None:  # answered without running (shutdown): seen all the same
                    self._in_background(self._react(react_to))
                await status.close()

        task = asyncio.create_task(turn(), name=f"turn {key}")
        before = self._posted.get(thread_id)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._posted[thread_id] = mine

        def forget(done: asyncio.Future[None]) -> None:
            if self._posted.get(thread_id) is done:
                del self._posted[thread_id]

        mine.add_done_callback(forget)
        self._post_after[task] = (before, mine)
        return task

    async def deliver_recovered(self, recovered: Recovered) -> None:
        """Wait for a run an earlier gateway left in tmux, post its result, and carry on its chain."""
        async with self._handling_one():
            project = self._router.project(recovered.project_key)
            if project is None:
                log.warning("recovered run %s belongs to a project no longer configured", recovered.key)
                await self._sessions.acknowledge(recovered.key)
                return
            agent_name = recovered.key.split(":", 1)[1] if ":" in recovered.key else None
            agent = project.agent(agent_name) if agent_name else None
            log.info("waiting for the run of %s left by the previous gateway", recovered.key)
            task = self._start_turn(project, recovered.thread_id, agent, "", recovered=recovered)
            await self._run_chain(project, recovered.thread_id, agent, task)

    async def _run_chain(
        self,
        project: ProjectView,
        thread_id: str,
        agent: Agent | None,
        first: asyncio.Task[TurnOutcome],
    ) -> None:
        """Run the human's turn, then follow agent handoffs until done or the turn limit."""
        chain = self._chain_book.new(project, thread_id, agent)
        task = first
        max_turns = project.defaults.max_turns_per_agent
        posted: asyncio.Future[None] | None = None
        try:
            while True:
                before, posted = self._post_after.pop(task, (None, None))
                hop = chain.hops[-1]
                hop.state = "running"
                outcome = await task
                if before is not None:
                    await asyncio.shield(before)
                result = outcome.result
                if result.error_kind == "detached":
                    return  # the run goes on in tmux; the next gateway delivers it
                hop.state = "done" if result.ok else "failed"
                hop.duration_ms = result.duration_ms
                hop.cost_usd = result.cost_usd
                parent = project.channel_id
                for notice in outcome.notices:
                    await self._delivery.send(thread_id, notice, parent=parent)
                if not result.ok:
                    error = f"**Error**: {result.error or 'Claude failed without saying why.'}"
                    if result.error_kind == "interrupted":
                        error = f"{STOPPED} {result.error}"
                    await self._delivery.send(thread_id, error, parent=parent)
                    await self._sessions.acknowledge(outcome.session.key)
                    self._chain_book.stop(chain, "error")
                    return
                chunks = await self._delivery.reply(thread_id, agent, result.text, parent=parent)
                self.bus.publish(ReplySent(channel_id=thread_id, chunks=chunks, agent=agent.name if agent else None))
                await self._sessions.acknowledge(outcome.session.key)
                if agent is None:
                    self._chain_book.stop(chain, "done")
                    return
                self._sticky.set(thread_id, agent.name)
                handoff = detect_handoff(result.text, project.agents, current=agent.name)
                if handoff is None:
                    self._chain_book.stop(chain, "done")
                    return
                if handoff.is_self:
                    self._chain_book.stop(chain, "self_handoff")
                    return
                if not self._turns.try_take(thread_id, max_turns):
                    await self._delivery.send(thread_id, turn_limit_text(max_turns), parent=parent)
                    self._chain_book.stop(chain, "turn_limit")
                    return
                chain.turns = self._turns.turns(thread_id)
                self.bus.publish(
                    HandoffStep(
                        project_key=project.key,
                        thread_id=thread_id,
                        from_agent=agent.name,
                        to_agent=handoff.agent.name,
                        turn=chain.turns,
                        max_turns=max_turns,
                    )
                )
                await self._delivery.send(thread_id, handoff_text(handoff.agent.name), parent=parent)
                agent = handoff.agent
                chain.hops.append(ChainHop(agent=agent.name, state="queued", started_at=self._clock.now()))
                prompt = await self._handoff_prompt(thread_id, handoff.prompt, project)
                if posted is not None:
                    posted.set_result(None)  # this hop said all it had to say
                task = self._start_turn(project, thread_id, agent, prompt)
        finally:
            if posted is not None and not posted.done():
                posted.set_result(None)

    async def _handoff_prompt(self, thread_id: str, prompt: str, project: ProjectView) -> str:
        try:
            history = await self.chat.history(thread_id, HISTORY_LIMIT + 1)
        except ChatError as exc:
            log.warning("thread history unavailable for %s: %s", thread_id, exc)
            return prompt
        # The newest message is the handoff announcement we just posted; the reply before it
        # is the prompt itself, so neither belongs in the history block.
        return with_history(prompt, history[:-2], project.agents) if len(history) > 2 else prompt

    # -- chains and totals -------------------------------------------------------------
