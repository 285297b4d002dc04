"""The message lifecycle: route → access → command → rate limit → dispatch → run → handoff → reply.

:class:`Gateway` wires the lifecycle's parts together and is the
:class:`~mpg_tui.core.api.CoreAPI` the faces use: :class:`~mpg_tui.core.intake.Intake`
takes each message in, :class:`~mpg_tui.core.chain_runner.ChainRunner` runs its turn and
the handoffs that follow, :class:`~mpg_tui.core.spending.Spending` applies the budgets.
The gateway itself answers the faces, starts up (runs lost with the last gateway, the
journal's leftovers, catch-up) and drains at shutdown. It talks to chat only through a
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
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from mpg_tui import __version__
from mpg_tui.config import GatewayConfig, ProjectView
from mpg_tui.core.api import (
    ApprovalInfo,
    Budgets,
    HandoffChain,
    JournalEntry,
    KilledSession,
    SessionInfo,
    ThreadCounts,
    Totals,
)
from mpg_tui.core.approval_tokens import BadToken
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.approvers import OPERATOR, Member
from mpg_tui.core.budget import BudgetBook, Pause
from mpg_tui.core.budget_notices import not_paused_text
from mpg_tui.core.bus import EventBus
from mpg_tui.core.catchup import CatchUpReport, catch_up
from mpg_tui.core.chain_runner import ChainRunner, Recovered
from mpg_tui.core.chains import ChainBook, Observed
from mpg_tui.core.clock import Clock
from mpg_tui.core.conversation import ConversationBook, ConversationEntry
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.events import TEXT_LIMIT, ConnectionState, NoticeSent
from mpg_tui.core.holds import DEFAULT_LEASE_S, HandBack, HoldGrant, IfRunning
from mpg_tui.core.inflight import InFlight
from mpg_tui.core.intake import Intake
from mpg_tui.core.journal import Journal
from mpg_tui.core.lending import Lending
from mpg_tui.core.permissions import NO_TOOL_USE_ID, PermissionRequest
from mpg_tui.core.ports import CardClick, ChatError, ChatPort, InboundMessage
from mpg_tui.core.router import Router
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.spending import Spending
from mpg_tui.core.turns import StickyAgents, TurnCounter

__all__ = ["LOST_RUN_TEXT", "Gateway", "Poster", "Recovered"]

log = logging.getLogger(__name__)

LOST_RUN_TEXT = (
    "⚠️ The gateway restarted while Claude was working on this thread, and that run was lost. "
    "Send your message again to retry."
)

Poster = Callable[[str, str, str], Awaitable[None]]


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
        self._turns = TurnCounter()
        self._sticky = StickyAgents()
        self._inflight = InFlight()
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
        self._spending = Spending(book=self._budget, bus=bus, delivery=self._delivery, resume=self._resume_kept)
        self._chains = ChainRunner(
            chat=lambda: self.chat,
            sessions=sessions,
            journal=self.journal,
            bus=bus,
            clock=clock,
            router=self._router,
            budget=self._budget,
            spending=self._spending,
            delivery=self._delivery,
            chain_book=self._chain_book,
            lending=self._lending,
            turns=self._turns,
            sticky=self._sticky,
            inflight=self._inflight,
        )
        self._intake = Intake(
            chat=lambda: self.chat,
            projects=lambda: self._config.views(),
            router=self._router,
            journal=self.journal,
            bus=bus,
            clock=clock,
            sessions=sessions,
            control=self,
            approvals=approvals,
            delivery=self._delivery,
            spending=self._spending,
            chains=self._chains,
            turns=self._turns,
            sticky=self._sticky,
            inflight=self._inflight,
            accepted=self._accepted,
        )

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
        text = await self._spending.continue_thread(project, thread_id, amount_usd, OPERATOR, by="the operator")
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
        return await self._inflight.drain(timeout)

    async def handle_message(self, msg: InboundMessage, *, replay: bool = False) -> None:
        """Everything MPG does for one chat message. Never raises for chat or claude failures.

        A message the journal already holds is not handled again, unless ``replay`` (the
        journal's own unfinished messages, run again at start-up).
        """
        async with self._inflight.handling():
            try:
                await self._intake.handle(msg, replay=replay)
            finally:
                self._accepted(msg.id)

    async def accept_in_order(self, msg: InboundMessage, *, replay: bool = False) -> asyncio.Task[None]:
        """Start handling ``msg`` and return once it holds its place (queued, or done).

        For messages handled one after another outside Discord's live order (start-up
        replays, catch-up): the next one starts only when this one is in its session's
        queue, so commands and prompts keep the order they were posted in.
        """
        accepted = self._accepting.setdefault(msg.id, asyncio.Event())
        task = self._inflight.spawn(self.handle_message(msg, replay=replay), name=f"message {msg.id}")
        await accepted.wait()
        return task

    def _accepted(self, message_id: str) -> None:
        event = self._accepting.pop(message_id, None)
        if event is not None:
            event.set()

    async def deliver_recovered(self, recovered: Recovered) -> None:
        """Wait for a run an earlier gateway left in tmux, post its result, and carry on its chain."""
        await self._chains.deliver_recovered(recovered)

    def _resume_kept(self, project: ProjectView, pause: Pause) -> None:
        self._inflight.spawn(self._chains.run_kept(project, pause))
