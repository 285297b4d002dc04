"""Turns and the chains they make: a human's turn, then agent handoffs, each reply posted in turn order.

:class:`ChainRunner` starts turns on the session manager (their typing, 👀 and journal
state alongside, see :mod:`~mpg_tui.core.alongside`), follows each turn's result to the
thread (the reply, an error, a notice), hands off to the agent a reply names until the
chain ends (no handoff, a self-handoff, the turn limit, an error or a budget), and runs
again the work a budget pause kept. The journal learns when each human message is
answered or told. Replies of one thread go out in the order their turns started,
however fast a later turn ran.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from mpg_tui.config import Agent, ProjectView
from mpg_tui.core.alongside import Alongside
from mpg_tui.core.api import ChainHop, HandoffChain, MessageState
from mpg_tui.core.budget import BudgetBook, HeldTurn, Pause, Stop
from mpg_tui.core.budget_notices import turn_cap_text
from mpg_tui.core.bus import EventBus
from mpg_tui.core.chains import ChainBook
from mpg_tui.core.clock import Clock
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.dispatch import detect_handoff, session_key
from mpg_tui.core.embeds import STOPPED, handoff_text, queued_text
from mpg_tui.core.events import TEXT_LIMIT, HandoffStep, ReplySent
from mpg_tui.core.history import HISTORY_LIMIT, with_history
from mpg_tui.core.inflight import InFlight
from mpg_tui.core.journal import Journal
from mpg_tui.core.lending import Lending
from mpg_tui.core.ports import ChatError, ChatPort, InboundMessage
from mpg_tui.core.router import Router
from mpg_tui.core.session_state import RecoveredWait, Requester, TurnOutcome
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.spending import Spending
from mpg_tui.core.status import RunStatus
from mpg_tui.core.turns import StickyAgents, TurnCounter, turn_limit_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    """A run an earlier gateway started and left running (or finished) in tmux."""

    key: str
    thread_id: str
    project_key: str
    started_at: float | None
    wait: RecoveredWait


class ChainRunner:
    """Starts turns and follows them to the thread; see the module docstring.

    ``turns`` and ``sticky`` are the gateway's (intake resets and sets them too);
    ``spending`` pauses a thread at its budget; ``inflight`` owns the background work.
    """

    def __init__(
        self,
        *,
        chat: Callable[[], ChatPort],
        sessions: SessionManager,
        journal: Journal,
        bus: EventBus,
        clock: Clock,
        router: Router,
        budget: BudgetBook,
        spending: Spending,
        delivery: Delivery,
        chain_book: ChainBook,
        lending: Lending,
        turns: TurnCounter,
        sticky: StickyAgents,
        inflight: InFlight,
    ) -> None:
        self._chat = chat
        self._sessions = sessions
        self._journal = journal
        self._bus = bus
        self._clock = clock
        self._router = router
        self._budget = budget
        self._spending = spending
        self._delivery = delivery
        self._chain_book = chain_book
        self._lending = lending
        self._turns = turns
        self._sticky = sticky
        self._inflight = inflight
        # Per thread, the last turn's "its results are posted" future: a turn posts after the
        # turns started before it in that thread, however fast it ran (a warm claude answers
        # a queued message while the previous reply is still on its way).
        self._posted: dict[str, asyncio.Future[None]] = {}
        self._post_after: dict[asyncio.Task[TurnOutcome], tuple[asyncio.Future[None] | None, asyncio.Future[None]]] = {}

    def start_turn(
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
            self._chat(),
            thread_id,
            self._clock,
            label=f"@{agent.name}" if agent else "Claude",
            live=project.defaults.progress == "status",
            stuck_notify_s=project.defaults.stuck_notify_ms / 1000,
        )

        alongside = Alongside(
            self._chat(),
            self._journal,
            thread_id,
            spawn=self._inflight.spawn,
            message_id=message_id,
            session_key=key,
            react_to=react_to,
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
        async with self._inflight.handling():
            project = self._router.project(recovered.project_key)
            if project is None:
                log.warning("recovered run %s belongs to a project no longer configured", recovered.key)
                await self._sessions.acknowledge(recovered.key)
                return
            agent_name = recovered.key.split(":", 1)[1] if ":" in recovered.key else None
            agent = project.agent(agent_name) if agent_name else None
            log.info("waiting for the run of %s left by the previous gateway", recovered.key)
            task = self.start_turn(project, recovered.thread_id, agent, "", recovered=recovered)
            await self.run_chain(project, recovered.thread_id, agent, task, recovered_key=recovered.key)

    async def run_chain(
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
                self._journal.mark(message_id, state)
            if recovered_key is not None:
                self._journal.mark_running_of(recovered_key, state)
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
                    why = self._spending.paused_by(project, thread_id) or Stop("thread", 0.0, 0.0)
                    unstarted = HeldTurn(agent.name if agent else None, prompt, requester_id, from_agent, rerun=True)
                    self._chain_book.stop(chain, "budget")
                    await self._spending.pause(project, thread_id, why, unstarted, requester=requester_id)
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
                    spent = await self._spending.review_spend(project, thread_id)
                    self._chain_book.stop(chain, "budget")
                    if spent is not None:
                        # Cut short at the thread's or the day's limit: it runs again after a continue.
                        cut = HeldTurn(agent.name if agent else None, prompt, requester_id, from_agent, rerun=True)
                        await self._spending.pause(project, thread_id, spent, cut, requester=requester_id)
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
                    await self._spending.review_spend(project, thread_id)
                    self._chain_book.stop(chain, "error")
                    return
                chunks = await self._delivery.reply(
                    thread_id, agent, result.text, parent=parent, max_messages=project.defaults.max_reply_messages
                )
                self._bus.publish(
                    ReplySent(
                        channel_id=thread_id,
                        chunks=chunks,
                        agent=agent.name if agent else None,
                        text=result.text[:TEXT_LIMIT],
                    )
                )
                settle("answered")
                await self._sessions.acknowledge(outcome.session.key)
                stop = await self._spending.review_spend(project, thread_id)
                handoff = detect_handoff(result.text, project.agents, current=agent.name) if agent else None
                if agent is not None:
                    self._sticky.set(thread_id, agent.name)
                if stop is not None:
                    next_hop = None
                    if agent is not None and handoff is not None and not handoff.is_self:
                        next_hop = HeldTurn(handoff.agent.name, handoff.prompt, requester_id, from_agent=agent.name)
                    self._chain_book.stop(chain, "budget")
                    await self._spending.pause(project, thread_id, stop, next_hop, requester=requester_id)
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
        self._bus.publish(
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
        return prompt, self.start_turn(project, thread_id, target, prompt, requester=requester)

    async def run_kept(self, project: ProjectView, pause: Pause) -> None:
        """Run the work a paused thread kept, in the order it was kept."""
        async with self._inflight.handling():
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
                    task = self.start_turn(project, thread_id, agent, held.prompt, requester=who)
                    chains.append(
                        self.run_chain(
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
                        self.run_chain(
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
                    task = self.start_turn(project, thread_id, agent, held.prompt, requester=who)
                    chains.append(self.run_chain(project, thread_id, agent, task, prompt=held.prompt, requester=who))
            try:
                await asyncio.gather(*chains)
            except ChatError as exc:
                log.warning("chat failure while running the kept work of %s: %s", thread_id, exc)
            except Exception:
                log.exception("running the kept work of %s failed", thread_id)

    async def _handoff_prompt(self, thread_id: str, prompt: str, project: ProjectView) -> str:
        try:
            history = await self._chat().history(thread_id, HISTORY_LIMIT + 1)
        except ChatError as exc:
            log.warning("thread history unavailable for %s: %s", thread_id, exc)
            return prompt
        # The newest message is the handoff announcement we just posted; the reply before it
        # is the prompt itself, so neither belongs in the history block.
        return with_history(prompt, history[:-2], project.agents) if len(history) > 2 else prompt
