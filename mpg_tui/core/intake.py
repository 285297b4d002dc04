"""Message intake: route → claim → access → command → rate limit → dispatch → the turn's start.

:class:`Intake` takes one chat message from its arrival to the moment its turn is queued,
then follows that turn's chain (:class:`~mpg_tui.core.chain_runner.ChainRunner`). The
message is claimed in the journal before anything is said or done about it, so what the
journal holds is answered even if the gateway dies, and never twice. Messages of one
thread enter their sessions' queues in the order they arrived. A message that opens a
thread gets its 👀 before the thread is opened, as MPG does; one in a thread gets it
alongside its turn, so no chat call is awaited ahead of claude's spawn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence

from mpg_tui.config import ProjectView
from mpg_tui.core import access
from mpg_tui.core.alongside import react
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.approvers import Member
from mpg_tui.core.attachments import AttachmentLimits, save_attachments
from mpg_tui.core.budget import HeldTurn
from mpg_tui.core.bus import EventBus
from mpg_tui.core.chain_runner import ChainRunner
from mpg_tui.core.clock import Clock
from mpg_tui.core.commands import CommandContext, CommandResult, ContinueRequest, SessionControl, handle_command
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.dispatch import AgentTarget, UnknownAgent, resolve_target, session_key
from mpg_tui.core.events import MessageReceived, MessageRejected, ThreadOpened
from mpg_tui.core.history import HISTORY_LIMIT, with_history
from mpg_tui.core.inflight import InFlight
from mpg_tui.core.journal import Journal
from mpg_tui.core.keyed_locks import KeyedLocks
from mpg_tui.core.ports import ChatError, ChatPort, InboundMessage
from mpg_tui.core.ratelimit import RateLimiter
from mpg_tui.core.router import Route, Router
from mpg_tui.core.session_state import Requester
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.spending import Spending
from mpg_tui.core.turns import StickyAgents, TurnCounter

log = logging.getLogger(__name__)

THREAD_NAME_LIMIT = 100
THREAD_ARCHIVE_MINUTES = 1440


class Intake:
    """Takes chat messages in; see the module docstring.

    ``control`` runs the session commands (``!kill``, ``!restart``, ...); ``accepted`` is
    told when a message holds its place (queued, or settled without a turn).
    """

    def __init__(
        self,
        *,
        chat: Callable[[], ChatPort],
        projects: Callable[[], Sequence[ProjectView]],
        router: Router,
        journal: Journal,
        bus: EventBus,
        clock: Clock,
        sessions: SessionManager,
        control: SessionControl,
        approvals: ApprovalBroker | None,
        delivery: Delivery,
        spending: Spending,
        chains: ChainRunner,
        turns: TurnCounter,
        sticky: StickyAgents,
        inflight: InFlight,
        accepted: Callable[[str], None],
    ) -> None:
        self._chat = chat
        self._projects = projects
        self._router = router
        self._journal = journal
        self._bus = bus
        self._clock = clock
        self._sessions = sessions
        self._control = control
        self._approvals = approvals
        self._delivery = delivery
        self._spending = spending
        self._chains = chains
        self._turns = turns
        self._sticky = sticky
        self._inflight = inflight
        self._accepted = accepted
        self._rate = RateLimiter(clock)
        self._locks = KeyedLocks()

    async def handle(self, msg: InboundMessage, *, replay: bool) -> None:
        """Everything MPG does for one chat message, to the end of its chain; never raises for chat failures.

        With ``replay`` the message is the journal's own (a leftover run again), so it is
        not claimed again.
        """
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
        if not replay and not self._journal.claim(msg, project.key, thread_id=route.thread_id):
            log.info("message %s in %s was handled before; not again", msg.id, msg.channel_id)
            return
        self._bus.publish(
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
            self._journal.mark(msg.id, "told")
        except Exception:
            log.exception("unexpected failure handling message %s in %s", msg.id, msg.channel_id)
            with contextlib.suppress(ChatError):
                await self._chat().send(msg.channel_id, "**Error**: the gateway failed on this message; see its log.")
            self._journal.mark(msg.id, "told")

    async def _handle_routed(self, msg: InboundMessage, route: Route) -> None:
        project = route.project
        denial = access.check(project, msg)
        if denial is not None:
            self._reject(msg, project, "missing role")
            await self._delivery.send(msg.channel_id, denial)
            self._journal.mark(msg.id, "told")
            return
        ctx = CommandContext.for_message(route, msg, self._projects(), self._clock.now())
        command = await handle_command(msg.content, ctx, self._control)
        if isinstance(command, CommandResult):
            for chunk in command.chunks:
                await self._delivery.send(msg.channel_id, chunk)
            self._journal.mark(msg.id, "answered")
            return
        if isinstance(command, ContinueRequest):
            assert route.thread_id is not None  # !continue outside a thread is answered with its usage
            by = f"<@{msg.author_id}>"
            reply = await self._spending.continue_thread(
                project, route.thread_id, command.amount_usd, Member.of(msg), by=by
            )
            await self._delivery.send(msg.channel_id, reply)
            self._journal.mark(msg.id, "answered")
            return
        if (
            command is None
            and route.thread_id is not None
            and self._approvals is not None
            and self._approvals.answer_in_thread(route.thread_id, Member.of(msg), msg.author_name, msg.content)
        ):
            # The answer to a question claude asked in this thread, not a new prompt: settled,
            # so a restarted gateway does not run it as one.
            self._journal.mark(msg.id, "answered")
            return
        if project.rate_limit_per_user:
            decision = self._rate.check(project.key, msg.author_id, project.rate_limit_per_user)
            if decision.reply is not None:
                self._reject(msg, project, "rate limited")
                await self._delivery.send(msg.channel_id, decision.reply)
                self._journal.mark(msg.id, "told")
                return
        if command is not None:
            target: AgentTarget | UnknownAgent = command.target
        else:
            sticky = self._sticky.get(route.thread_id) if route.thread_id else None
            target = resolve_target(msg.content, project.agents, sticky=sticky)
        if isinstance(target, UnknownAgent):
            await self._delivery.send(msg.channel_id, target.reply(project.agents))
            self._journal.mark(msg.id, "told")
            return
        if not target.prompt.strip() and not msg.attachments:
            await self._delivery.send(msg.channel_id, "Send a message with some text for Claude to work on.")
            self._journal.mark(msg.id, "told")
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
                await intake.enter_async_context(self._locks.hold(msg.channel_id))
            await intake.enter_async_context(self._locks.hold(route.thread_id or msg.id))
            if route.thread_id is None:
                self._journal.write_claims()  # acknowledged only once its row is written
                await react(self._chat(), msg)  # as MPG: 👀, then the thread, then the reply
                thread_id = await self._open_thread(msg, project)
                self._journal.mark(msg.id, "received", thread_id=thread_id)
            else:
                thread_id = route.thread_id  # claimed in it already: nothing to write before the spawn
            if target.agent is not None and route.thread_id is None:
                self._sticky.set(thread_id, target.agent.name)  # a thread just opened for this message
            self._turns.reset(thread_id)
            prompt = await self._build_prompt(msg, target, thread_id, project)
            requester = Requester(msg.author_id, msg.author_name)
            stop = self._spending.paused_by(project, thread_id)
            if stop is not None:
                held = HeldTurn(target.agent_name, prompt, msg.author_id)
                if route.thread_id is not None:
                    self._journal.write_claims()
                    self._inflight.spawn(react(self._chat(), msg))
                await self._spending.pause(project, thread_id, stop, held, requester=msg.author_id)
                # Kept by the budget ledger, and the thread was told: settled for the journal.
                self._journal.mark(msg.id, "told")
                self._accepted(msg.id)
                return
            # In a thread the 👀 goes out alongside the turn, once it has started or queued:
            # ahead of it, its request would take the loop before claude's spawn.
            first = self._chains.start_turn(
                project,
                thread_id,
                target.agent,
                prompt,
                message_id=msg.id,
                requester=requester,
                react_to=msg if route.thread_id is not None else None,
            )
        self._accepted(msg.id)
        await self._chains.run_chain(
            project, thread_id, target.agent, first, prompt=prompt, requester=requester, message_id=msg.id
        )

    def _reject(self, msg: InboundMessage, project: ProjectView, reason: str) -> None:
        log.info("message from %s in %s rejected: %s", msg.author_name, project.name, reason)
        self._bus.publish(
            MessageRejected(project_key=project.key, channel_id=msg.channel_id, author=msg.author_name, reason=reason)
        )

    async def _open_thread(self, msg: InboundMessage, project: ProjectView) -> str:
        name = " ".join(msg.content.split())[:THREAD_NAME_LIMIT] or "Claude response"
        try:
            thread_id = await self._chat().create_thread(msg.channel_id, msg.id, name, THREAD_ARCHIVE_MINUTES)
        except ChatError as exc:
            log.warning("could not open a thread in %s (%s); replying in the channel", project.name, exc)
            return msg.channel_id
        self._sessions.name_thread(thread_id, name)
        self._journal.saw(thread_id, thread_id, msg.channel_id)  # catch-up in it starts here
        self._bus.publish(
            ThreadOpened(project_key=project.key, channel_id=msg.channel_id, thread_id=thread_id, name=name)
        )
        return thread_id

    async def _build_prompt(
        self, msg: InboundMessage, target: AgentTarget, thread_id: str, project: ProjectView
    ) -> str:
        prompt = target.prompt
        if target.agent is not None and msg.in_thread:
            try:
                history = await self._chat().history(thread_id, HISTORY_LIMIT, before=msg.id)
            except ChatError as exc:
                log.warning("thread history unavailable for %s: %s", thread_id, exc)
                history = []
            if history:
                prompt = with_history(prompt, history, project.agents)
        if msg.attachments:
            key = session_key(thread_id, target.agent_name)
            base = await self._sessions.workspace(key, project, thread_id, target.agent)
            saved = await save_attachments(
                self._chat(), msg.attachments, AttachmentLimits.from_defaults(project.defaults), base, msg.id, key
            )
            if saved.notice:
                await self._delivery.send(thread_id, saved.notice)
            prompt += saved.prompt_suffix
        return prompt
