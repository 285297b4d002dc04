"""An in-memory :class:`~mpg_tui.core.api.CoreAPI` that publishes real events on a real bus.

Its helpers change the state the way the gateway would and publish the matching
event, so a face sees a consistent world: ``start_run`` makes the session running
*and* publishes :class:`RunStarted`.
"""

from __future__ import annotations

from typing import Any, Literal

from mpg_tui.config import ProjectView, parse_config
from mpg_tui.core.api import ChainHop, HandoffChain, HopState, SessionInfo, Totals
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, FakeClock, SystemClock
from mpg_tui.core.events import (
    ConnectionChanged,
    ConnectionState,
    HandoffStep,
    HandoffStopped,
    RunFinished,
    RunnerKind,
    RunStarted,
    SessionKilled,
    SessionQueued,
)

DEFAULT_CONFIG: dict[str, Any] = {
    "defaults": {"dashboardToken": "config-secret-token-value", "httpPort": 3100},
    "projects": {
        "111111111111111111": {
            "name": "web-app",
            "directory": "/srv/projects/web-app",
            "agents": ["pm", "engineer"],
            "allowedRoles": ["dev"],
            "rateLimitPerUser": 10,
        },
        "222222222222222222": {
            "name": "api",
            "directory": "/srv/projects/api",
            "persistence": "tmux",
        },
    },
}


_CHAIN_STATE: dict[str, Literal["running", "done", "turn_limit", "error"]] = {
    "done": "done",
    "self_handoff": "done",
    "turn_limit": "turn_limit",
    "error": "error",
}


class FakeCore:
    """A stand-in gateway: state in dicts, every change announced on :attr:`bus`."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        clock: Clock | None = None,
        version: str = "0.1.0-test",
        uptime: float = 0.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.bus = EventBus()
        self.version = version
        self.started_at = self.clock.now() - uptime
        self._projects = parse_config(config if config is not None else DEFAULT_CONFIG).views()
        self._sessions: dict[str, SessionInfo] = {}
        self._chains: dict[str, HandoffChain] = {}
        self._connection: ConnectionState = "ready"
        self._totals = Totals(runs=0, failures=0, cost_usd=0.0, input_tokens=0, output_tokens=0)
        self.killed: list[str] = []
        self.restarted: list[str] = []
        self.stopped: list[str] = []
        self.posted: list[tuple[str, str, str]] = []

    # -- CoreAPI ---------------------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._connection

    def projects(self) -> list[ProjectView]:
        return list(self._projects)

    def sessions(self) -> list[SessionInfo]:
        return list(self._sessions.values())

    def session(self, key: str) -> SessionInfo | None:
        return self._sessions.get(key)

    def chains(self) -> list[HandoffChain]:
        return list(self._chains.values())

    def totals(self) -> Totals:
        return self._totals

    async def kill(self, key: str) -> bool:
        self.killed.append(key)
        info = self._sessions.pop(key, None)
        if info is not None:
            self.bus.publish(SessionKilled(key=key, project_key=info.project_key, at=self.clock.now()))
        return info is not None

    async def restart(self, key: str) -> bool:
        self.restarted.append(key)
        return key in self._sessions

    async def stop(self, key: str) -> bool:
        self.stopped.append(key)
        return key in self._sessions

    async def post(self, channel_id: str, author: str, content: str) -> None:
        self.posted.append((channel_id, author, content))

    # -- helpers that move the world -------------------------------------------------------------

    def project_key(self, index: int = 0) -> str:
        return self._projects[index].key

    def set_connection(self, state: ConnectionState, detail: str = "") -> None:
        self._connection = state
        self.bus.publish(ConnectionChanged(state=state, detail=detail, at=self.clock.now()))

    def start_run(
        self,
        key: str,
        *,
        project: int = 0,
        agent: str | None = None,
        runner: RunnerKind = "direct",
        session_id: str | None = None,
        prompt: str = "do the thing",
        queue_depth: int = 0,
    ) -> SessionInfo:
        project_key = self.project_key(project)
        thread_id = key.split(":", 1)[0]
        now = self.clock.now()
        info = self._sessions.get(key) or SessionInfo(
            key=key,
            project_key=project_key,
            thread_id=thread_id,
            agent=agent,
            cwd=self._projects[project].directory,
            session_id=session_id,
            state="running",
            queue_depth=queue_depth,
            last_activity=now,
            runner=runner,
            tmux_session=f"mpg-{key.replace(':', '-')}" if runner == "tmux" else None,
        )
        info.state = "running"
        info.queue_depth = queue_depth
        info.run_started_at = now
        info.last_activity = now
        self._sessions[key] = info
        self.bus.publish(
            RunStarted(
                key=key,
                project_key=project_key,
                thread_id=thread_id,
                agent=agent,
                runner=runner,
                cwd=info.cwd,
                session_id=info.session_id,
                prompt_preview=prompt,
                at=now,
            )
        )
        return info

    def queue(self, key: str, position: int) -> None:
        info = self._sessions[key]
        info.queue_depth = position
        self.bus.publish(SessionQueued(key=key, project_key=info.project_key, position=position, at=self.clock.now()))

    def finish_run(
        self,
        key: str,
        *,
        ok: bool = True,
        reply: str = "done",
        error: str | None = None,
        cost_usd: float = 0.01,
        input_tokens: int = 1200,
        output_tokens: int = 300,
        duration_ms: int = 4200,
        session_id: str = "3f1c9a2e-0000-4000-8000-000000000001",
    ) -> None:
        info = self._sessions[key]
        info.state = "idle"
        info.session_id = session_id
        info.runs += 1
        info.cost_usd += cost_usd
        info.input_tokens += input_tokens
        info.output_tokens += output_tokens
        info.last_activity = self.clock.now()
        info.last_reply = reply if ok else ""
        info.last_error = error
        t = self._totals
        self._totals = Totals(
            runs=t.runs + 1,
            failures=t.failures + (0 if ok else 1),
            cost_usd=t.cost_usd + cost_usd,
            input_tokens=t.input_tokens + input_tokens,
            output_tokens=t.output_tokens + output_tokens,
        )
        self.bus.publish(
            RunFinished(
                key=key,
                project_key=info.project_key,
                thread_id=info.thread_id,
                agent=info.agent,
                ok=ok,
                session_id=session_id,
                reply_preview=reply[:100],
                error=error,
                cost_usd=cost_usd,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                duration_ms=duration_ms,
                at=self.clock.now(),
            )
        )

    def handoff(
        self,
        thread_id: str,
        to_agent: str,
        *,
        from_agent: str | None = None,
        project: int = 0,
        max_turns: int = 5,
    ) -> HandoffChain:
        """Add a hop to the thread's chain (opening it on the first hop) and announce it."""
        project_key = self.project_key(project)
        chain = self._chains.get(thread_id)
        if chain is None or from_agent is None:
            chain = HandoffChain(
                thread_id=thread_id, project_key=project_key, hops=[], turns=0, max_turns=max_turns, state="running"
            )
            self._chains[thread_id] = chain
        for hop in chain.hops:
            if hop.state == "running":
                hop.state = "done"
        chain.hops.append(ChainHop(agent=to_agent, state="running", started_at=self.clock.now()))
        chain.turns = len(chain.hops)
        self.bus.publish(
            HandoffStep(
                project_key=project_key,
                thread_id=thread_id,
                from_agent=from_agent,
                to_agent=to_agent,
                turn=chain.turns,
                max_turns=max_turns,
                at=self.clock.now(),
            )
        )
        return chain

    def finish_hop(
        self, thread_id: str, *, state: HopState = "done", duration_ms: int = 0, cost_usd: float = 0
    ) -> None:
        hop = self._chains[thread_id].hops[-1]
        hop.state = state
        hop.duration_ms = duration_ms
        hop.cost_usd = cost_usd

    def stop_chain(self, thread_id: str, reason: Literal["done", "turn_limit", "self_handoff", "error"]) -> None:
        chain = self._chains[thread_id]
        chain.state = _CHAIN_STATE[reason]
        self.bus.publish(
            HandoffStopped(
                project_key=chain.project_key,
                thread_id=thread_id,
                reason=reason,
                turns=chain.turns,
                at=self.clock.now(),
            )
        )


DEMO_CONFIG: dict[str, Any] = {
    "defaults": {"dashboardToken": "config-secret-token-value"},
    "projects": {
        "1190000000000000001": {
            "name": "storefront",
            "directory": "/home/dev/src/storefront",
            "agents": ["pm", "engineer", "qa"],
            "allowedRoles": ["developers"],
            "rateLimitPerUser": 6,
        },
        "1190000000000000002": {
            "name": "billing-api",
            "directory": "/home/dev/src/billing-api",
            "persistence": "tmux",
            "agents": {"engineer": {"preset": "engineer"}, "devops": None},
        },
        "1190000000000000003": {"name": "docs", "directory": "/home/dev/src/docs", "worktrees": False},
    },
}


def populate_demo(core: FakeCore, clock: FakeClock) -> None:
    """A believable afternoon: a finished pm → engineer → qa chain, one running, a queue, a failure."""
    done_thread, live_thread = "1312000000000004821", "1312000000000005177"
    core.start_run(f"{done_thread}:pm", agent="pm", prompt="Add coupon codes to checkout")
    core.handoff(done_thread, "pm")
    clock.advance(14)
    core.finish_run(f"{done_thread}:pm", cost_usd=0.0184, input_tokens=5210, output_tokens=812, duration_ms=13900)
    core.finish_hop(done_thread, duration_ms=13900, cost_usd=0.0184)
    core.start_run(f"{done_thread}:engineer", agent="engineer", prompt="Implement coupon codes")
    core.handoff(done_thread, "engineer", from_agent="pm")
    clock.advance(96)
    core.finish_run(
        f"{done_thread}:engineer", cost_usd=0.2131, input_tokens=48200, output_tokens=6120, duration_ms=95800
    )
    core.finish_hop(done_thread, duration_ms=95800, cost_usd=0.2131)
    core.start_run(f"{done_thread}:qa", agent="qa", prompt="Review coupon codes")
    core.handoff(done_thread, "qa", from_agent="engineer")
    clock.advance(31)
    core.finish_run(f"{done_thread}:qa", cost_usd=0.0467, input_tokens=11800, output_tokens=1450, duration_ms=30500)
    core.finish_hop(done_thread, duration_ms=30500, cost_usd=0.0467)
    core.stop_chain(done_thread, "done")
    clock.advance(120)

    core.start_run("1312000000000005002", project=2, prompt="Fix the broken links in the install guide")
    clock.advance(8)
    core.finish_run(
        "1312000000000005002",
        ok=False,
        error="Claude hit the max-turns limit before finishing",
        cost_usd=0.0312,
        input_tokens=9100,
        output_tokens=2200,
        duration_ms=7900,
    )
    clock.advance(40)

    core.start_run(f"{live_thread}:pm", agent="pm", prompt="Customers want saved carts")
    core.handoff(live_thread, "pm")
    clock.advance(11)
    core.finish_run(f"{live_thread}:pm", cost_usd=0.0151, input_tokens=4300, output_tokens=655, duration_ms=10800)
    core.finish_hop(live_thread, duration_ms=10800, cost_usd=0.0151)
    info = core.start_run(f"{live_thread}:engineer", agent="engineer", prompt="Build saved carts")
    core.handoff(live_thread, "engineer", from_agent="pm")
    info.progress.extend(["Read src/cart/store.ts", "Edit src/cart/store.ts", "Bash git diff --stat"])
    core.start_run("1312000000000005230:engineer", project=1, agent="engineer", runner="tmux", prompt="Rotate keys")
    core.queue("1312000000000005230:engineer", 2)
    clock.advance(23)
