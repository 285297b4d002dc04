"""Several gateways in one cockpit: labelled :class:`~mpg_tui.control.remote.RemoteCore` views merged.

Every name a labelled view hands out starts with ``<label>/``, so each command finds its
gateway by that prefix; the views' events are republished on one bus, their connection
states merged into the worst of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from mpg_tui.config import ProjectView
from mpg_tui.control.remote import RemoteCore
from mpg_tui.core.api import ApprovalInfo, Budgets, HandoffChain, JournalEntry, SessionInfo, ThreadCounts, Totals
from mpg_tui.core.bus import EventBus
from mpg_tui.core.conversation import ConversationEntry
from mpg_tui.core.events import ConnectionChanged, ConnectionState, Event
from mpg_tui.core.holds import DEFAULT_LEASE_S, HandBack, HoldError, HoldGrant, IfRunning

STATE_RANK: dict[ConnectionState, int] = {"ready": 0, "resuming": 1, "connecting": 2, "disconnected": 3}
"""The merged view is as connected as its least connected gateway."""


class MultiCore:
    """Several labelled :class:`RemoteCore` views as one core: each command goes to its gateway."""

    def __init__(self, cores: Sequence[RemoteCore]) -> None:
        if not cores:
            raise ValueError("at least one gateway is needed")
        labels = [c.label for c in cores]
        if len(set(labels)) != len(labels) or not all(labels):
            raise ValueError(f"each gateway needs a label of its own, got {labels}")
        self.cores = list(cores)
        self.bus = EventBus()
        self.version = cores[0].version
        self.started_at = min(c.started_at for c in self.cores)
        for core in self.cores:
            core.bus.listen(self._forward)

    @property
    def connection_state(self) -> ConnectionState:
        return max((c.connection_state for c in self.cores), key=lambda s: STATE_RANK.get(s, 3))

    def _forward(self, event: Event) -> None:
        if isinstance(event, ConnectionChanged):
            detail = " · ".join(f"{c.label}: {c.connection_state}" for c in self.cores)
            event = ConnectionChanged(state=self.connection_state, detail=detail, at=event.at)
        self.bus.publish(event)

    def _owner(self, name: str) -> RemoteCore | None:
        label = name.partition("/")[0]
        return next((c for c in self.cores if c.label == label), None)

    def elsewhere(self, name: str) -> tuple[str, str] | None:
        owner = self._owner(name)
        return owner.elsewhere(name) if owner is not None else None

    def projects(self) -> Sequence[ProjectView]:
        return [p for c in self.cores for p in c.projects()]

    def sessions(self) -> list[SessionInfo]:
        return [s for c in self.cores for s in c.sessions()]

    def session(self, key: str) -> SessionInfo | None:
        owner = self._owner(key)
        return owner.session(key) if owner is not None else None

    def chains(self) -> list[HandoffChain]:
        return [chain for c in self.cores for chain in c.chains()]

    def totals(self) -> Totals:
        all_totals = [c.totals() for c in self.cores]
        return Totals(
            runs=sum(t.runs for t in all_totals),
            failures=sum(t.failures for t in all_totals),
            cost_usd=sum(t.cost_usd for t in all_totals),
            input_tokens=sum(t.input_tokens for t in all_totals),
            output_tokens=sum(t.output_tokens for t in all_totals),
        )

    def budgets(self) -> Budgets:
        every = [c.budgets() for c in self.cores]
        return Budgets(
            projects=[p for b in every for p in b.projects],
            paused=[p for b in every for p in b.paused],
        )

    def message_counts(self) -> dict[str, ThreadCounts]:
        return {thread: counts for c in self.cores for thread, counts in c.message_counts().items()}

    def recent_messages(self, limit: int = 100) -> list[JournalEntry]:
        return []

    async def continue_thread(self, thread_id: str, amount_usd: float | None = None) -> str:
        owner = self._owner(thread_id)
        if owner is None:
            raise ValueError(f"no gateway owns thread {thread_id}")
        return await owner.continue_thread(thread_id, amount_usd)

    async def kill(self, key: str) -> bool:
        owner = self._owner(key)
        return owner is not None and await owner.kill(key)

    async def restart(self, key: str) -> bool:
        owner = self._owner(key)
        return owner is not None and await owner.restart(key)

    async def stop(self, key: str) -> bool:
        owner = self._owner(key)
        return owner is not None and await owner.stop(key)

    async def post(self, channel_id: str, author: str, content: str) -> None:
        owner = self._owner(channel_id)
        if owner is None:
            raise ValueError(f"no gateway owns channel {channel_id}")
        await owner.post(channel_id, author, content)

    async def hold(
        self, name: str, holder: str, *, if_running: IfRunning = "refuse", lease_s: float = DEFAULT_LEASE_S
    ) -> HoldGrant:
        owner = self._owner(name)
        if owner is None:
            raise HoldError("not_found", f"no gateway owns {name}")
        return await owner.hold(name, holder, if_running=if_running, lease_s=lease_s)

    async def renew_hold(self, hold_id: str) -> bool:
        owner = self._owner(hold_id)
        return owner is not None and await owner.renew_hold(hold_id)

    async def release_hold(self, hold_id: str) -> HandBack | None:
        owner = self._owner(hold_id)
        return await owner.release_hold(hold_id) if owner is not None else None

    async def conversation(self, thread_id: str) -> list[ConversationEntry]:
        owner = self._owner(thread_id)
        return await owner.conversation(thread_id) if owner is not None else []

    def approvals(self) -> list[ApprovalInfo]:
        return sorted((a for c in self.cores for a in c.approvals()), key=lambda a: a.created_at)

    async def decide(self, approval_id: str, choice: str) -> str:
        owner = self._owner(approval_id)
        if owner is None:
            return "No gateway owns this request."
        return await owner.decide(approval_id, choice)

    async def ask_permission(self, token: str, tool_name: str, tool_input: str, tool_use_id: str) -> dict[str, Any]:
        raise PermissionError("a cockpit over several gateways does not take permission requests")

    async def run(self) -> None:
        """Follow every gateway until cancelled."""
        await asyncio.gather(*(c.run() for c in self.cores))
