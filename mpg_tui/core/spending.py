"""Budgets at work in threads: whether a turn may start, the 80% warnings, pauses and continues.

:class:`Spending` applies the spend ledger (:class:`~mpg_tui.core.budget.BudgetBook`) to
the message lifecycle: it says why a thread may not start a turn, reviews the spend after
each turn (warning the thread at 80% of a limit), pauses a thread at a spent limit keeping
the work that was to follow, and continues it when the right person asks, handing the
kept work back to be run (``resume``) in the order it was kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mpg_tui.config import ProjectView
from mpg_tui.core.approvers import Decider, may_decide, refusal_text
from mpg_tui.core.budget import BudgetBook, HeldTurn, Pause, Stop
from mpg_tui.core.budget_notices import continued_text, kept_text, not_paused_text, pause_text, warning_text
from mpg_tui.core.bus import EventBus
from mpg_tui.core.delivery import Delivery
from mpg_tui.core.events import BudgetContinued, BudgetPaused, BudgetWarning

log = logging.getLogger(__name__)


class Spending:
    """The budget rules of the message lifecycle; see the module docstring."""

    def __init__(
        self, *, book: BudgetBook, bus: EventBus, delivery: Delivery, resume: Callable[[ProjectView, Pause], None]
    ) -> None:
        """``resume`` runs, in the background, the work a continued pause kept."""
        self._book = book
        self._bus = bus
        self._delivery = delivery
        self._resume = resume

    def paused_by(self, project: ProjectView, thread_id: str) -> Stop | None:
        """Why a new turn of ``thread_id`` may not start: its pause, or a limit now spent."""
        pause = self._book.pause(thread_id)
        if pause is not None:
            return Stop(pause.limit, pause.spent, pause.limit_usd)
        return self._book.spent_limit(project, thread_id)

    async def review_spend(self, project: ProjectView, thread_id: str) -> Stop | None:
        """After a turn: give the 80% warnings due, persist the ledger; the limit now spent, if any."""
        review = self._book.review(project, thread_id)
        await self._book.flush()
        for warning in review.warnings:
            self._bus.publish(
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

    async def pause(
        self, project: ProjectView, thread_id: str, stop: Stop, held: HeldTurn | None, *, requester: str | None
    ) -> None:
        """Pause ``thread_id`` at ``stop``, keeping ``held``, and tell the thread."""
        pause, new = self._book.hold(project, thread_id, stop, held, requester_id=requester)
        await self._book.flush()
        kept = held is not None and bool(pause.held) and pause.held[-1] is held
        if new:
            self._bus.publish(
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

    async def continue_thread(
        self, project: ProjectView, thread_id: str, amount: float | None, decider: Decider, *, by: str
    ) -> str:
        """``!continue`` or the operator's continue: check who asks, raise the limit once, run what was kept."""
        pause = self._book.pause(thread_id)
        if pause is None and self._book.spent_limit(project, thread_id) is None:
            limits = [b for b in (project.budget.max_thread_cost_usd, project.budget.daily_budget_usd) if b]
            return not_paused_text(["thread"] if limits else [])
        requester = pause.requester_id if pause is not None else None
        if not may_decide(decider, requester_id=requester, approver_roles=project.approver_roles):
            log.info("continue of thread %s refused for %s", thread_id, by)
            return refusal_text(project.approver_roles, what="continue this thread")
        raised = self._book.raise_limit(project, thread_id, amount)
        released = [p for p in [self._book.release(thread_id)] if p is not None]
        if any(limit == "day" for limit, _ in raised.limits) or (pause is not None and pause.limit == "day"):
            # The project's day is open again: every thread it paused goes on, unless its own limit holds it.
            for other in self._book.pauses(project.key):
                if other.limit == "day" and self._book.spent_limit(project, other.thread_id) is None:
                    released += [p for p in [self._book.release(other.thread_id)] if p is not None]
        await self._book.flush()
        limit_usd = raised.limits[-1][1] if raised.limits else 0.0
        for done in released:
            self._bus.publish(
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
                self._resume(project, done)
        log.info("thread %s of %s continued by %s: %s", thread_id, project.name, by, raised.limits)
        return continued_text(raised, by, resumed)
