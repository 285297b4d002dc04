"""Handoff chains (user -> pm -> engineer -> ...) and run totals, as the faces see them."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

from mpg_tui.config import Agent, ProjectView
from mpg_tui.core.api import ChainHop, ChainState, HandoffChain, Totals
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import (
    ConnectionChanged,
    ConnectionState,
    Event,
    HandoffStopped,
    RunFinished,
    RunRecovering,
    RunStarted,
)

MAX_CHAINS = 500

StopReason = Literal["done", "turn_limit", "self_handoff", "error", "budget"]
_CHAIN_STATE: dict[StopReason, ChainState] = {
    "done": "done",
    "self_handoff": "done",
    "turn_limit": "turn_limit",
    "error": "error",
    "budget": "budget",
}


class ChainBook:
    """The latest chain of each thread (at most :data:`MAX_CHAINS`, oldest dropped first)."""

    def __init__(self, bus: EventBus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock
        self._chains: OrderedDict[str, HandoffChain] = OrderedDict()

    def chains(self) -> list[HandoffChain]:
        return list(self._chains.values())

    def get(self, thread_id: str) -> HandoffChain | None:
        """The latest chain of ``thread_id``, if it is still kept."""
        return self._chains.get(thread_id)

    def new(self, project: ProjectView, thread_id: str, agent: Agent | None) -> HandoffChain:
        chain = HandoffChain(
            thread_id=thread_id,
            project_key=project.key,
            hops=[ChainHop(agent=agent.name if agent else "claude", state="queued", started_at=self._clock.now())],
            turns=0,
            max_turns=project.defaults.max_turns_per_agent,
            state="running",
        )
        self._chains.pop(thread_id, None)
        self._chains[thread_id] = chain
        while len(self._chains) > MAX_CHAINS:
            self._chains.popitem(last=False)
        return chain

    def stop(self, chain: HandoffChain, reason: StopReason) -> None:
        chain.state = _CHAIN_STATE[reason]
        self._bus.publish(
            HandoffStopped(project_key=chain.project_key, thread_id=chain.thread_id, reason=reason, turns=chain.turns)
        )


class Observed:
    """What the gateway learns from its own events: the chat connection and run totals."""

    def __init__(self, bus: EventBus) -> None:
        self.connection: ConnectionState = "disconnected"
        self._runs = 0
        self._failures = 0
        self._cost = 0.0
        self._tokens_in = 0
        self._tokens_out = 0
        bus.listen(self._observe)

    def totals(self) -> Totals:
        return Totals(self._runs, self._failures, self._cost, self._tokens_in, self._tokens_out)

    def _observe(self, event: Event) -> None:
        if isinstance(event, ConnectionChanged):
            self.connection = event.state
        elif isinstance(event, RunStarted | RunRecovering):
            self._runs += 1
        elif isinstance(event, RunFinished):
            self._failures += 0 if event.ok else 1
            self._cost += event.cost_usd
            self._tokens_in += event.input_tokens
            self._tokens_out += event.output_tokens
