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
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from mpg_tui import __version__
from mpg_tui.config import Agent, GatewayConfig, ProjectView
from mpg_tui.core import access
from mpg_tui.core.alongside import Alongside, react
from mpg_tui.core.api import (
    ApprovalInfo,
    Budgets,
    ChainHop,
    HandoffChain,
    JournalEntry,
    KilledSession,
    MessageState,
    SessionInfo,
    ThreadCounts,
    Totals,
)
from mpg_tui.core.approval_tokens import BadToken
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.approvers import OPERATOR, Decider, Member, may_decide, refusal_text
from mpg_tui.core.attachments import AttachmentLimits, save_attachments
from mpg_tui.core.budget import BudgetBook, HeldTurn, Pause, Stop
from mpg_tui.core.budget_notices import (
    continued_text,
    kept_text,
    not_paused_text,
    pause_text,
    turn_cap_text,
    warning_text,
)
from mpg_tui.core.bus import EventBus
from mpg_tui.core.catchup import CatchUpReport, catch_up
from mpg_tui.core.chains import ChainBook, Observed
from mpg_tui.core.clock import Clock
from mpg_tui.core.commands import CommandContext, CommandResult, ContinueRequest, handle_command
from mpg_tui.core.conversation import ConversationBook, ConversationEntry
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.dispatch import AgentTarget, UnknownAgent, detect_handoff, resolve_target, session_key
from mpg_tui.core.embeds import STOPPED, handoff_text, queued_text
from mpg_tui.core.events import (
    TEXT_LIMIT,
    BudgetContinued,
    BudgetPaused,
    BudgetWarning,
    ConnectionState,
    HandoffStep,
    MessageReceived,
    MessageRejected,
    NoticeSent,
    ReplySent,
    ThreadOpened,
)
from mpg_tui.core.history import with_history
from mpg_tui.core.holds import DEFAULT_LEASE_S, HandBack, HoldGrant, IfRunning
from mpg_tui.core.journal import Journal
from mpg_tui.core.keyed_locks import KeyedLocks
from mpg_tui.core.lending import Lending
from mpg_tui.core.permissions import NO_TOOL_USE_ID, PermissionRequest
from mpg_tui.core.ports import CardClick, ChatError, ChatPort, InboundMessage
from mpg_tui.core.ratelimit import RateLimiter
from mpg_tui.core.router import Route, Router
from mpg_tui.core.session_state import RecoveredWait, Requester, TurnOutcome
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
        budget: BudgetBook | None = None,
        journal: Journal | None = None,
        approvals: ApprovalBroker | None = None,
    ) -> None:
        """``budget`` is the spend ledger (the runtime's persists itself); without one, spend
        is kept in memory only."""
        self.bus = bus
        self.version = __version__
        self.started_at = clock.now()
        self._config = config
        self._sessions = sessions
        self._clock = clock
        self._chat = chat
        self._poster = poster
        self.approval_broker = approvals
        self._router = Router(config)
        self._rate = RateLimiter(clock)
        self._turns = TurnCounter()
        self._sticky = StickyAgents()
        self._intake = KeyedLocks()
        self._background: set[asyncio.Task[None]] = set()
        self._chain_book = ChainBook(bus, clock)
        self._budget = budget if budget is not None else BudgetBook(bus, clock, None)
        self._observed = Observed(bus)
        self._delivery = Delivery(lambda: self.chat, on_notice=self._noticed)
        self._conversations = ConversationBook(bus)
        self._lending = Lending(sessions=sessions, bus=bus, clock=clock, send=self._delivery.send)
        self.journal = journal or Journal(None, clock)
        # What the last gateway left unfinished, read before this one takes any message:
        # a message arriving live while these are resumed is this gateway's, not a leftover.
        self._left_unfinished = self.journal.unfinished()
        self._accepting: dict[str, asyncio.Event] = {}
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

    def budgets(self) -> Budgets:
        return self._budget.budgets(self._config.views())

    async def continue_thread(self, thread_id: str, amount_usd: float | None = None) -> str:
        project_key = self._budget.project_of(thread_id)
        project = self._router.project(project_key) if project_key else None
        if project is None:
            return not_paused_text(["thread"])
        text = await self._continue(project, thread_id, amount_usd, OPERATOR, by="the operator")
        await self._delivery.send(thread_id, text, parent=project.channel_id)
        return text

    def message_counts(self) -> dict[str, ThreadCounts]:
        return self.journal.counts()

    def recent_messages(self, limit: int = 100) -> list[JournalEntry]:
        return self.journal.recent(limit)

    async def kill(self, key: str) -> bool:
        return await self.kill_session(key) is not None

    async def kill_session(self, key: str) -> KilledSession | None:
        info = self._sessions.get(key)
        killed = await self._sessions.kill(key)
        # After the kill, so nothing that waited for the hand-back starts in between.
        await self._lending.release_key(key, "killed")
        if info is not None:
            self._sticky.forget(info.thread_id)
            self._turns.reset(info.thread_id)
        return killed

    async def stop(self, key: str) -> bool:
        return await self._sessions.stop(key)

    async def restart(self, key: str) -> bool:
        return await self._sessions.restart(key)

    async def hold(
        self, name: str, holder: str, *, if_running: IfRunning = "refuse", lease_s: float = DEFAULT_LEASE_S
    ) -> HoldGrant:
        return await self._lending.hold(name, holder, if_running=if_running, lease_s=lease_s)

    async def renew_hold(self, hold_id: str) -> bool:
        return self._lending.renew(hold_id)

    async def release_hold(self, hold_id: str) -> HandBack | None:
        return await self._lending.release(hold_id)

    async def conversation(self, thread_id: str) -> list[ConversationEntry]:
        return self._conversations.conversation(thread_id)

    def _noticed(self, channel_id: str, text: str) -> None:
        self.bus.publish(NoticeSent(channel_id=channel_id, text=text[:TEXT_LIMIT]))

    async def post(self, channel_id: str, author: str, content: str) -> None:
        if self._poster is None:
            raise RuntimeError("posting as a user is only possible against the sandbox")
        await self._poster(channel_id, author, content)

    def approvals(self) -> list[ApprovalInfo]:
        return self.approval_broker.pending() if self.approval_broker is not None else []

    async def decide(self, approval_id: str, choice: str) -> str:
        if self.approval_broker is None:
            return "Approvals are not relayed by this gateway."
        return self.approval_broker.decide_as_operator(approval_id, choice).text

    async def ask_permission(self, token: str, tool_name: str, tool_input: str, tool_use_id: str) -> dict[str, Any]:
        if self.approval_broker is None:
            return {"outcome": "deny", "message": "This gateway does not relay approvals.", "answers": {}}
        try:
            parsed = json.loads(tool_input)
        except ValueError:
            parsed = None
        request = PermissionRequest.from_tool_call(
            tool_name,
            parsed if isinstance(parsed, dict) else {},
            None if tool_use_id == NO_TOOL_USE_ID else tool_use_id,
        )
        try:
            decision = await self.approval_broker.ask_with_token(token, request)
        except BadToken as exc:
            raise PermissionError(str(exc)) from None
        return {
            "outcome": decision.outcome,
            "message": decision.message,
            "answers": dict(decision.answers),
            "decided_by": decision.decided_by,
        }

    async def card_clicked(self, click: CardClick) -> str:
        """A member pressed a request's button; returns the private reply for them."""
        if self.approval_broker is None:
            return "This request is no longer waiting for an answer."
        member = Member(click.member_id, click.role_ids, click.role_names)
        reply = self.approval_broker.decide(click.request_id, click.value, member, click.member_name)
        return reply.text

    # -- start-up ---------------------------------------------------------------------

    async def report_lost_runs(self, recovered: Collection[str] = ()) -> set[str]:
        """Tell each thread whose run died with the last gateway that it was lost; the keys told.

        ``recovered`` are the keys whose runs the tmux runner found again: those are
        delivered instead (see :meth:`deliver_recovered`).
        """
        told: set[str] = set()
        for stored in self._sessions.pending_runs_from_disk():
            if stored.key in recovered:
                continue
            thread_id = stored.thread_id or stored.key.split(":", 1)[0]
            with contextlib.suppress(ChatError):
                await self.chat.send(thread_id, LOST_RUN_TEXT)
            self._sessions.forget_pending_run(stored.key)
            told.add(stored.key)
        return told

    async def resume_journal(self, *, recovered: Collection[str] = (), told: Collection[str] = ()) -> int:
        """Finish what the journal holds unfinished from the last gateway; how many messages are run again.

        A message that was waiting (received or queued) is run again, in the order the
        messages came. One whose run was going is told the run was lost, unless its
        thread was told already (``told``: :meth:`report_lost_runs`) or tmux kept the run
        going (``recovered``: :meth:`deliver_recovered` settles it).
        """
        again = 0
        left, self._left_unfinished = self._left_unfinished, []
        for entry in left:
            if entry.state == "running":
                if entry.session_key in recovered:
                    continue
                if entry.session_key not in told:
                    with contextlib.suppress(ChatError):
                        await self.chat.send(entry.thread_id or entry.channel_id, LOST_RUN_TEXT)
                self.journal.mark(entry.message_id, "told")
                continue
            msg = entry.message
            if entry.thread_id is not None and entry.thread_id != msg.channel_id:
                # Its thread was opened already: it goes on there, rather than opening another.
                msg = dataclasses.replace(msg, channel_id=entry.thread_id, parent_channel_id=msg.channel_id)
            again += 1
            await self.accept_in_order(msg, replay=True)
        if again:
            log.info("running again %d message(s) the last gateway had not answered", again)
        self.journal.prune()
        return again

    async def catch_up(self) -> CatchUpReport:
        """Handle what was posted in mapped channels and known threads while the gateway was away."""
        return await catch_up(
            config=self._config,
            chat=self.chat,
            journal=self.journal,
            clock=self._clock,
            bus=self.bus,
            accept=self.accept_in_order,
        )

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

    async def handle_message(self, msg: InboundMessage, *, replay: bool = False) -> None:
        """Everything MPG does for one chat message. Never raises for chat or claude failures.

        A message the journal already holds is not handled again, unless ``replay`` (the
        journal's own unfinished messages, run again at start-up).
        """
        async with self._handling_one():
            try:
                await self._handle_message(msg, replay=replay)
            finally:
                self._accepted(msg.id)

    async def accept_in_order(self, msg: InboundMessage, *, replay: bool = False) -> asyncio.Task[None]:
        """Start handling ``msg`` and return once it holds its place (queued, or done).

        For messages handled one after another outside Discord's live order (start-up
        replays, catch-up): the next one starts only when this one is in its session's
        queue, so commands and prompts keep the order they were posted in.
        """
        accepted = self._accepting.setdefault(msg.id, asyncio.Event())
        task = asyncio.create_task(self.handle_message(msg, replay=replay), name=f"message {msg.id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await accepted.wait()
        return task

    def _accepted(self, message_id: str) -> None:
        event = self._accepting.pop(message_id, None)
        if event is not None:
            event.set()

    async def _handle_message(self, msg: InboundMessage, *, replay: bool) -> None:
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
        # Recorded before anything is said or done about it: what the journal holds is
        # answered even if this gateway dies now, and never twice.
        if not replay and not self.journal.claim(msg, project.key):
            log.info("message %s in %s was handled before; not again", msg.id, msg.channel_id)
            return
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
            self.journal.mark(msg.id, "told")
        except Exception:
            log.exception("unexpected failure handling message %s in %s", msg.id, msg.channel_id)
            with contextlib.suppress(ChatError):
                await self.chat.send(msg.channel_id, "**Error**: the gateway failed on this message; see its log.")
            self.journal.mark(msg.id, "told")

    async def _handle_routed(self, msg: InboundMessage, route: Route) -> None:
        project = route.project
        denial = access.check(project, msg)
        if denial is not None:
            self._reject(msg, project, "missing role")
            await self._delivery.send(msg.channel_id, denial)
            self.journal.mark(msg.id, "told")
            return
        ctx = CommandContext.for_message(route, msg, self._config.views(), self._clock.now())
        command = await handle_command(msg.content, ctx, self)
        if isinstance(command, CommandResult):
            for chunk in command.chunks:
                await self._delivery.send(msg.channel_id, chunk)
            self.journal.mark(msg.id, "answered")
            return
        if isinstance(command, ContinueRequest):
            assert route.thread_id is not None  # !continue outside a thread is answered with its usage
            by = f"<@{msg.author_id}>"
            reply = await self._continue(project, route.thread_id, command.amount_usd, Member.of(msg), by=by)
            await self._delivery.send(msg.channel_id, reply)
            return
        if (
            command is None
            and route.thread_id is not None
            and self.approval_broker is not None
            and self.approval_broker.answer_in_thread(route.thread_id, Member.of(msg), msg.author_name, msg.content)
        ):
            return  # the answer to a question claude asked in this thread, not a new prompt
        if project.rate_limit_per_user:
            decision = self._rate.check(project.key, msg.author_id, project.rate_limit_per_user)
            if decision.reply is not None:
                self._reject(msg, project, "rate limited")
                await self._delivery.send(msg.channel_id, decision.reply)
                self.journal.mark(msg.id, "told")
                return
        if command is not None:
            target: AgentTarget | UnknownAgent = command.target
        else:
            sticky = self._sticky.get(route.thread_id) if route.thread_id else None
            target = resolve_target(msg.content, project.agents, sticky=sticky)
        if isinstance(target, UnknownAgent):
            await self._delivery.send(msg.channel_id, target.reply(project.agents))
            self.journal.mark(msg.id, "told")
            return
        if not target.prompt.strip() and not msg.attachments:
            await self._delivery.send(msg.channel_id, "Send a message with some text for Claude to work on.")
            self.journal.mark(msg.id, "told")
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
                await react(self.chat, msg)  # as MPG: 👀, then the thread, then the reply
            thread_id = route.thread_id or await self._open_thread(msg, project)
            self.journal.mark(msg.id, "received", thread_id=thread_id)
            if target.agent is not None and route.thread_id is None:
                self._sticky.set(thread_id, target.agent.name)  # a thread just opened for this message
            self._turns.reset(thread_id)
            prompt = await self._build_prompt(msg, target, thread_id, project)
            requester = Requester(msg.author_id, msg.author_name)
            stop = self._paused_by(project, thread_id)
            if stop is not None:
                held = HeldTurn(target.agent_name, prompt, msg.author_id)
                if route.thread_id is not None:
                    self._in_background(react(self.chat, msg))
                await self._pause(project, thread_id, stop, held, requester=msg.author_id)
                # Kept by the budget ledger, and the thread was told: settled for the journal.
                self.journal.mark(msg.id, "told")
                self._accepted(msg.id)
                return
            # In a thread the 👀 goes out alongside the turn, once it has started or queued:
            # ahead of it, its request would take the loop before claude's spawn.
            first = self._start_turn(
                project,
                thread_id,
                target.agent,
                prompt,
                message_id=msg.id,
                requester=requester,
                react_to=msg if route.thread_id is not None else None,
            )
            self.journal.mark(msg.id, "queued", session_key=session_key(thread_id, target.agent_name))
        self._accepted(msg.id)
        await self._run_chain(
            project, thread_id, target.agent, first, prompt=prompt, requester=requester, message_id=msg.id
        )

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
        self.journal.saw(thread_id, thread_id, msg.channel_id)  # catch-up in it starts here
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
        message_id: str | None = None,
        requester: Requester | None = None,
        react_to: InboundMessage | None = None,
    ) -> asyncio.Task[TurnOutcome]:
        """Enqueue one turn now (so queue order is arrival order) and return its task.

        With ``recovered``, the turn is a run an earlier gateway started: it is waited for
        instead of started, and shown in the thread exactly like a live one.

        The typing indicator, the 👀 on ``react_to`` and the journal's "running" for
        ``message_id`` go alongside the turn (see :mod:`~mpg_tui.core.alongside`), never
        ahead of claude's spawn.
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

        alongside = Alongside(
            self.chat, self.journal, thread_id, spawn=self._in_background, message_id=message_id, react_to=react_to
        )

        async def on_queued(position: int) -> None:
            alongside.waiting()
            await self._delivery.send(thread_id, queued_text(position))

        def on_started() -> None:
            alongside.started()
            status.start()

        async def on_held() -> None:
            alongside.waiting()
            notice = self._lending.held_notice(key)
            if notice is not None:
                await self._delivery.send(thread_id, notice)

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
                    on_held=on_held,
                    on_progress=status.on_progress,
                    on_started=on_started,
                    allowance=lambda: self._budget.allowance(self._router.project(project.key) or project, thread_id),
                    requester=requester,
                )
            finally:
                alongside.finish()
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
            await self._run_chain(project, recovered.thread_id, agent, task, recovered_key=recovered.key)

    async def _run_chain(
        self,
        project: ProjectView,
        thread_id: str,
        agent: Agent | None,
        first: asyncio.Task[TurnOutcome],
        *,
        prompt: str = "",
        requester: Requester | None = None,
        chain: HandoffChain | None = None,
        from_agent: str | None = None,
        message_id: str | None = None,
        recovered_key: str | None = None,
    ) -> None:
        """Run the human's turn, then follow agent handoffs until done, a turn limit or a budget.

        ``prompt`` is what ``first`` runs (kept if a budget stops it before it starts);
        ``requester`` is the member whose message set the chain going: they may continue it
        and decide what claude asks in every hop of it.
        A chain resumed after a budget pause passes its ``chain`` and the agent that handed
        off (``from_agent``). The journal records the human's message (``message_id``, or the
        messages whose run was ``recovered_key``'s) as answered once its turn's reply is
        posted, or as told when that turn failed or was kept for a continue.
        """

        def settle(state: MessageState) -> None:
            nonlocal message_id, recovered_key
            if message_id is not None:
                self.journal.mark(message_id, state)
            if recovered_key is not None:
                self.journal.mark_running_of(recovered_key, state)
            message_id = recovered_key = None

        if chain is None:
            chain = self._chain_book.new(project, thread_id, agent)
        else:
            chain.state = "running"
        requester_id = requester.id if requester is not None else None
        task = first
        parent = project.channel_id
        posted: asyncio.Future[None] | None = None
        try:
            while True:
                hop = chain.hops[-1]
                hop.state = "running"
                before, posted = self._post_after.pop(task, (None, None))
                outcome = await task
                if before is not None:
                    await asyncio.shield(before)
                result = outcome.result
                if result.error_kind == "detached":
                    return  # the run goes on in tmux; the next gateway delivers it
                if result.error_kind == "budget_paused":
                    # A limit was spent while this turn waited: it never ran, so keep it.
                    chain.hops.pop()
                    why = self._paused_by(project, thread_id) or Stop("thread", 0.0, 0.0)
                    unstarted = HeldTurn(agent.name if agent else None, prompt, requester_id, from_agent, rerun=True)
                    self._chain_book.stop(chain, "budget")
                    await self._pause(project, thread_id, why, unstarted, requester=requester_id)
                    settle("told")
                    return
                hop.state = "done" if result.ok else "failed"
                hop.duration_ms = result.duration_ms
                hop.cost_usd = result.cost_usd
                for notice in outcome.notices:
                    await self._delivery.send(thread_id, notice, parent=parent)
                if result.error_kind == "max_budget":
                    settle("told")
                    await self._sessions.acknowledge(outcome.session.key)
                    spent = await self._review_spend(project, thread_id)
                    self._chain_book.stop(chain, "budget")
                    if spent is not None:
                        # Cut short at the thread's or the day's limit: it runs again after a continue.
                        cut = HeldTurn(agent.name if agent else None, prompt, requester_id, from_agent, rerun=True)
                        await self._pause(project, thread_id, spent, cut, requester=requester_id)
                    else:
                        cap = project.budget.max_turn_cost_usd or result.cost_usd
                        await self._delivery.send(thread_id, turn_cap_text(result.cost_usd, cap), parent=parent)
                    return
                if not result.ok:
                    error = f"**Error**: {result.error or 'Claude failed without saying why.'}"
                    if result.error_kind == "interrupted":
                        error = f"{STOPPED} {result.error}"
                    await self._delivery.send(thread_id, error, parent=parent)
                    settle("told")
                    await self._sessions.acknowledge(outcome.session.key)
                    await self._review_spend(project, thread_id)
                    self._chain_book.stop(chain, "error")
                    return
                chunks = await self._delivery.reply(
                    thread_id, agent, result.text, parent=parent, max_messages=project.defaults.max_reply_messages
                )
                self.bus.publish(
                    ReplySent(
                        channel_id=thread_id,
                        chunks=chunks,
                        agent=agent.name if agent else None,
                        text=result.text[:TEXT_LIMIT],
                    )
                )
                settle("answered")
                await self._sessions.acknowledge(outcome.session.key)
                stop = await self._review_spend(project, thread_id)
                handoff = detect_handoff(result.text, project.agents, current=agent.name) if agent else None
                if agent is not None:
                    self._sticky.set(thread_id, agent.name)
                if stop is not None:
                    next_hop = None
                    if agent is not None and handoff is not None and not handoff.is_self:
                        next_hop = HeldTurn(handoff.agent.name, handoff.prompt, requester_id, from_agent=agent.name)
                    self._chain_book.stop(chain, "budget")
                    await self._pause(project, thread_id, stop, next_hop, requester=requester_id)
                    return
                if agent is None or handoff is None:
                    self._chain_book.stop(chain, "done")
                    return
                if handoff.is_self:
                    self._chain_book.stop(chain, "self_handoff")
                    return
                if posted is not None:
                    posted.set_result(None)  # this hop said all it had to say
                next_task = await self._hand_off(
                    project, thread_id, chain, agent, handoff.agent, handoff.prompt, requester
                )
                if next_task is None:
                    return
                from_agent, agent = agent.name, handoff.agent
                prompt, task = next_task
        finally:
            if posted is not None and not posted.done():
                posted.set_result(None)

    async def _hand_off(
        self,
        project: ProjectView,
        thread_id: str,
        chain: HandoffChain,
        source: Agent,
        target: Agent,
        reply: str,
        requester: Requester | None,
    ) -> tuple[str, asyncio.Task[TurnOutcome]] | None:
        """Take a handoff turn, announce it and start it: (its prompt, its task); None at the turn limit."""
        max_turns = project.defaults.max_turns_per_agent
        if not self._turns.try_take(thread_id, max_turns):
            await self._delivery.send(thread_id, turn_limit_text(max_turns), parent=project.channel_id)
            self._chain_book.stop(chain, "turn_limit")
            return None
        chain.turns = self._turns.turns(thread_id)
        self.bus.publish(
            HandoffStep(
                project_key=project.key,
                thread_id=thread_id,
                from_agent=source.name,
                to_agent=target.name,
                turn=chain.turns,
                max_turns=max_turns,
            )
        )
        await self._delivery.send(thread_id, handoff_text(target.name), parent=project.channel_id)
        chain.hops.append(ChainHop(agent=target.name, state="queued", started_at=self._clock.now()))
        prompt = await self._handoff_prompt(thread_id, reply, project)
        return prompt, self._start_turn(project, thread_id, target, prompt, requester=requester)

    # -- budgets -----------------------------------------------------------------------

    def _paused_by(self, project: ProjectView, thread_id: str) -> Stop | None:
        """Why a new turn of ``thread_id`` may not start: its pause, or a limit now spent."""
        pause = self._budget.pause(thread_id)
        if pause is not None:
            return Stop(pause.limit, pause.spent, pause.limit_usd)
        return self._budget.spent_limit(project, thread_id)

    async def _review_spend(self, project: ProjectView, thread_id: str) -> Stop | None:
        """After a turn: give the 80% warnings due, persist the ledger; the limit now spent, if any."""
        review = self._budget.review(project, thread_id)
        await self._budget.flush()
        for warning in review.warnings:
            self.bus.publish(
                BudgetWarning(
                    project_key=project.key,
                    thread_id=thread_id,
                    limit=warning.limit,
                    spent_usd=warning.spent,
                    limit_usd=warning.limit_usd,
                )
            )
            await self._delivery.send(thread_id, warning_text(warning, project), parent=project.channel_id)
        return review.stop

    async def _pause(
        self, project: ProjectView, thread_id: str, stop: Stop, held: HeldTurn | None, *, requester: str | None
    ) -> None:
        """Pause ``thread_id`` at ``stop``, keeping ``held``, and tell the thread."""
        pause, new = self._budget.hold(project, thread_id, stop, held, requester_id=requester)
        await self._budget.flush()
        kept = held is not None and bool(pause.held) and pause.held[-1] is held
        if new:
            self.bus.publish(
                BudgetPaused(
                    project_key=project.key,
                    thread_id=thread_id,
                    limit=stop.limit,
                    spent_usd=stop.spent,
                    limit_usd=stop.limit_usd,
                    held=len(pause.held),
                )
            )
            log.info("thread %s of %s paused at its %s budget", thread_id, project.name, stop.limit)
            text = pause_text(stop, project, kept=kept)
        elif held is not None:
            text = kept_text(pause, project, kept=kept)
        else:
            return
        await self._delivery.send(thread_id, text, parent=project.channel_id)

    async def _continue(
        self, project: ProjectView, thread_id: str, amount: float | None, decider: Decider, *, by: str
    ) -> str:
        """``!continue`` or the operator's continue: check who asks, raise the limit once, run what was kept."""
        pause = self._budget.pause(thread_id)
        if pause is None and self._budget.spent_limit(project, thread_id) is None:
            limits = [b for b in (project.budget.max_thread_cost_usd, project.budget.daily_budget_usd) if b]
            return not_paused_text(["thread"] if limits else [])
        requester = pause.requester_id if pause is not None else None
        if not may_decide(decider, requester_id=requester, approver_roles=project.approver_roles):
            log.info("continue of thread %s refused for %s", thread_id, by)
            return refusal_text(project.approver_roles, what="continue this thread")
        raised = self._budget.raise_limit(project, thread_id, amount)
        released = [p for p in [self._budget.release(thread_id)] if p is not None]
        if any(limit == "day" for limit, _ in raised.limits) or (pause is not None and pause.limit == "day"):
            # The project's day is open again: every thread it paused goes on, unless its own limit holds it.
            for other in self._budget.pauses(project.key):
                if other.limit == "day" and self._budget.spent_limit(project, other.thread_id) is None:
                    released += [p for p in [self._budget.release(other.thread_id)] if p is not None]
        await self._budget.flush()
        limit_usd = raised.limits[-1][1] if raised.limits else 0.0
        for done in released:
            self.bus.publish(
                BudgetContinued(
                    project_key=project.key,
                    thread_id=done.thread_id,
                    limit=done.limit,
                    limit_usd=limit_usd,
                    by=by,
                )
            )
        resumed = sum(len(p.held) for p in released if p.thread_id == thread_id)
        for done in released:
            if done.thread_id != thread_id:
                text = continued_text(raised, by, len(done.held))
                await self._delivery.send(done.thread_id, text, parent=project.channel_id)
            if done.held:
                self._in_background(self._resume(project, done))
        log.info("thread %s of %s continued by %s: %s", thread_id, project.name, by, raised.limits)
        return continued_text(raised, by, resumed)

    async def _resume(self, project: ProjectView, pause: Pause) -> None:
        """Run the work a paused thread kept, in the order it was kept."""
        async with self._handling_one():
            thread_id = pause.thread_id
            chains: list[Coroutine[Any, Any, None]] = []
            for held in pause.held:
                # Kept work keeps who asked for it: the same member decides what claude asks.
                who = Requester(held.requester_id, held.requester_id) if held.requester_id else None
                agent = project.agent(held.agent) if held.agent else None
                source = project.agent(held.from_agent) if held.from_agent else None
                if held.rerun:
                    # A turn a limit stopped: run its prompt again, going on with its chain.
                    chain = self._chain_book.get(thread_id)
                    if chain is None or chain.state != "budget":
                        chain = self._chain_book.new(project, thread_id, agent)
                    else:
                        hop = ChainHop(agent=held.agent or "claude", state="queued", started_at=self._clock.now())
                        chain.hops.append(hop)
                    task = self._start_turn(project, thread_id, agent, held.prompt, requester=who)
                    chains.append(
                        self._run_chain(
                            project,
                            thread_id,
                            agent,
                            task,
                            prompt=held.prompt,
                            requester=who,
                            chain=chain,
                            from_agent=held.from_agent,
                        )
                    )
                elif source is not None and agent is not None:
                    chain = self._chain_book.get(thread_id)
                    if chain is None or chain.state != "budget":
                        chain = self._chain_book.new(project, thread_id, source)
                        chain.hops[-1].state = "done"
                    started = await self._hand_off(project, thread_id, chain, source, agent, held.prompt, who)
                    if started is None:
                        continue
                    prompt, task = started
                    chains.append(
                        self._run_chain(
                            project,
                            thread_id,
                            agent,
                            task,
                            prompt=prompt,
                            requester=who,
                            chain=chain,
                            from_agent=source.name,
                        )
                    )
                else:
                    self._turns.reset(thread_id)
                    task = self._start_turn(project, thread_id, agent, held.prompt, requester=who)
                    chains.append(self._run_chain(project, thread_id, agent, task, prompt=held.prompt, requester=who))
            try:
                await asyncio.gather(*chains)
            except ChatError as exc:
                log.warning("chat failure while running the kept work of %s: %s", thread_id, exc)
            except Exception:
                log.exception("running the kept work of %s failed", thread_id)

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
