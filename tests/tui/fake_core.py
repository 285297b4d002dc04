"""An in-memory CoreAPI for the cockpit's tests, snapshots and screenshots.

It keeps sessions, chains and totals the way the gateway reports them, and its scripting
methods (``start_run``, ``progress``, ``finish_run``, ...) change that state and publish
the matching events on a real :class:`EventBus`, stamped with a :class:`FakeClock` so
every picture of the cockpit is the same on every machine.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from mpg_tui.config import GatewayConfig, ProjectView, parse_config
from mpg_tui.core.api import ChainHop, HandoffChain, HopState, SessionInfo, Totals
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import (
    ConnectionChanged,
    ConnectionState,
    HandoffStep,
    HandoffStopped,
    LogLine,
    MessageReceived,
    RunFinished,
    RunnerKind,
    RunProgress,
    RunRecovering,
    RunStarted,
    SessionKilled,
    SessionQueued,
    SessionRestarted,
    SessionState,
    ThreadOpened,
)

SHOP = "1100000000000000001"
DOCS = "1100000000000000002"
INFRA = "1100000000000000003"

DEMO_CONFIG: dict[str, Any] = {
    "defaults": {"maxTurnsPerAgent": 5},
    "projects": {
        SHOP: {"name": "shop-api", "directory": "/srv/mpg/shop-api", "agents": ["pm", "engineer", "qa"]},
        DOCS: {"name": "docs-site", "directory": "/srv/mpg/docs-site"},
        INFRA: {"name": "infra", "directory": "/srv/mpg/infra", "agents": ["devops"], "persistence": "tmux"},
    },
}


def session_uuid(n: int) -> str:
    """A stable, UUID-shaped claude session ID."""
    return f"{n:08x}-7c1e-4b2a-9f00-{n:012x}"


class FakeCore:
    version = "0.1.0"

    def __init__(self, clock: FakeClock, config: GatewayConfig | None = None, *, up_for: float = 7380.0) -> None:
        self.clock = clock
        self.bus = EventBus()
        self.started_at = clock.now() - up_for
        self._config = config or parse_config(DEMO_CONFIG)
        self._views = self._config.views()
        self._connection: ConnectionState = "ready"
        self._sessions: dict[str, SessionInfo] = {}
        self._chains: dict[str, HandoffChain] = {}
        self._totals = Totals(0, 0, 0.0, 0, 0)
        self.killed: list[str] = []
        self.restarted: list[str] = []
        self.stopped: list[str] = []
        self.posted: list[tuple[str, str, str]] = []
        self.fail_commands: Exception | None = None
        """When set, kill/restart/post raise it (a core that broke)."""

    # -- CoreAPI -----------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._connection

    def projects(self) -> list[ProjectView]:
        return list(self._views)

    def sessions(self) -> list[SessionInfo]:
        return [self._snapshot(s) for s in self._sessions.values()]

    def session(self, key: str) -> SessionInfo | None:
        info = self._sessions.get(key)
        return self._snapshot(info) if info else None

    def chains(self) -> list[HandoffChain]:
        return copy.deepcopy(list(self._chains.values()))

    def totals(self) -> Totals:
        return self._totals

    async def kill(self, key: str) -> bool:
        self.killed.append(key)
        if self.fail_commands:
            raise self.fail_commands
        info = self._sessions.pop(key, None)
        if info is None:
            return False
        self.bus.publish(SessionKilled(key=key, project_key=info.project_key, at=self.clock.now()))
        return True

    async def restart(self, key: str) -> bool:
        self.restarted.append(key)
        if self.fail_commands:
            raise self.fail_commands
        info = self._sessions.get(key)
        if info is None:
            return False
        info.session_id = None
        self.bus.publish(SessionRestarted(key=key, project_key=info.project_key, at=self.clock.now()))
        return True

    async def stop(self, key: str) -> bool:
        self.stopped.append(key)
        return key in self._sessions

    async def post(self, channel_id: str, author: str, content: str) -> None:
        self.posted.append((channel_id, author, content))
        if self.fail_commands:
            raise self.fail_commands
        self.bus.publish(
            MessageReceived(
                project_key=channel_id,
                channel_id=channel_id,
                thread_id=None,
                message_id=str(len(self.posted)),
                author=author,
                content=content,
                at=self.clock.now(),
            )
        )

    # -- scripting: state without events (what was there before the cockpit opened) ---------

    def add_session(
        self,
        key: str,
        project_key: str,
        *,
        state: SessionState = "idle",
        session_id: str | None = None,
        runner: RunnerKind = "direct",
        ago: float = 60.0,
        **fields: Any,
    ) -> SessionInfo:
        thread_id, _, agent = key.partition(":")
        cwd = self._directory(project_key)
        info = SessionInfo(
            key=key,
            project_key=project_key,
            thread_id=thread_id,
            agent=agent or None,
            cwd=cwd,
            session_id=session_id,
            state=state,
            queue_depth=0,
            last_activity=self.clock.now() - ago,
            runner=runner,
        )
        info = replace(info, **fields)
        if runner == "tmux" and info.tmux_session is None:
            info.tmux_session = f"mpg-{key.replace(':', '-')}"
            info.attach_command = ["tmux", "-L", "mpg-test", "attach", "-t", info.tmux_session]
        self._sessions[key] = info
        return info

    def add_chain(self, thread_id: str, project_key: str, hops: list[tuple[str, HopState, float, int, float]]) -> None:
        """``hops``: (agent, state, started seconds ago, duration_ms, cost)."""
        now = self.clock.now()
        chain_hops = [ChainHop(a, s, now - ago, ms, usd) for a, s, ago, ms, usd in hops]
        running = any(h.state == "running" for h in chain_hops)
        self._chains[thread_id] = HandoffChain(
            thread_id, project_key, chain_hops, len(chain_hops), 5, "running" if running else "done"
        )

    # -- scripting: things that happen now ------------------------------------------------

    def set_connection(self, state: ConnectionState, detail: str = "") -> None:
        self._connection = state
        self.bus.publish(ConnectionChanged(state=state, detail=detail, at=self.clock.now()))

    def open_thread(self, project_key: str, thread_id: str, name: str) -> None:
        self.bus.publish(
            ThreadOpened(
                project_key=project_key, channel_id=project_key, thread_id=thread_id, name=name, at=self.clock.now()
            )
        )

    def start_run(self, key: str, project_key: str, *, runner: RunnerKind = "direct", prompt: str = "") -> SessionInfo:
        info = self._sessions.get(key) or self.add_session(key, project_key, runner=runner, ago=0)
        now = self.clock.now()
        info.state, info.run_started_at, info.last_activity = "running", now, now
        info.progress = []
        info.last_error = None
        self.bus.publish(
            RunStarted(
                key=key,
                project_key=project_key,
                thread_id=info.thread_id,
                agent=info.agent,
                runner=info.runner,
                cwd=info.cwd,
                session_id=info.session_id,
                prompt_preview=prompt[:100],
                at=now,
            )
        )
        return info

    def progress(self, key: str, text: str, tool: str | None = None) -> None:
        info = self._sessions[key]
        info.progress.append(f"{tool}: {text}" if tool else text)
        info.last_activity = self.clock.now()
        self.bus.publish(
            RunProgress(key=key, step="tool" if tool else "text", text=text, tool=tool, at=self.clock.now())
        )

    def queue(self, key: str, depth: int) -> None:
        info = self._sessions[key]
        info.queue_depth = depth
        if info.state == "idle":
            info.state = "queued"
        self.bus.publish(SessionQueued(key=key, project_key=info.project_key, position=depth, at=self.clock.now()))

    def recover(self, key: str) -> None:
        info = self._sessions[key]
        info.state = "recovering"
        self.bus.publish(
            RunRecovering(key=key, project_key=info.project_key, thread_id=info.thread_id, at=self.clock.now())
        )

    def finish_run(
        self,
        key: str,
        *,
        ok: bool = True,
        reply: str = "Done.",
        error: str | None = None,
        session_id: str | None = None,
        cost_usd: float = 0.01,
        input_tokens: int = 1200,
        output_tokens: int = 300,
    ) -> None:
        info = self._sessions[key]
        now = self.clock.now()
        started = info.run_started_at if info.run_started_at is not None else now
        duration_ms = int((now - started) * 1000)
        info.state = "queued" if info.queue_depth else "idle"
        info.last_activity = now
        info.session_id = session_id or info.session_id or session_uuid(len(self._sessions) + 100)
        info.runs += 1
        if ok:
            info.last_reply = reply
            info.cost_usd += cost_usd
            info.input_tokens += input_tokens
            info.output_tokens += output_tokens
        else:
            info.last_error = error or "claude failed"
        t = self._totals
        self._totals = Totals(
            t.runs + 1,
            t.failures + (not ok),
            t.cost_usd + (cost_usd if ok else 0.0),
            t.input_tokens + (input_tokens if ok else 0),
            t.output_tokens + (output_tokens if ok else 0),
        )
        self.bus.publish(
            RunFinished(
                key=key,
                project_key=info.project_key,
                thread_id=info.thread_id,
                agent=info.agent,
                ok=ok,
                session_id=info.session_id,
                reply_preview=reply[:100],
                error=None if ok else info.last_error,
                cost_usd=cost_usd if ok else 0.0,
                input_tokens=input_tokens if ok else 0,
                output_tokens=output_tokens if ok else 0,
                duration_ms=duration_ms,
                at=now,
            )
        )

    def handoff(
        self, thread_id: str, project_key: str, source: str | None, target: str, *, cost_usd: float = 0.0
    ) -> None:
        """``source`` hands to ``target`` (None: a human message starts a new chain)."""
        now = self.clock.now()
        chain = self._chains.get(thread_id)
        if chain is None or source is None:
            chain = HandoffChain(thread_id, project_key, [], 0, 5, "running")
            self._chains[thread_id] = chain
        for hop in chain.hops:
            if hop.state == "running":
                hop.state = "done"
                hop.duration_ms = int((now - hop.started_at) * 1000)
                hop.cost_usd = cost_usd
        chain.hops.append(ChainHop(target, "running", now))
        chain.turns = len(chain.hops)
        chain.state = "running"
        self.bus.publish(
            HandoffStep(
                project_key=project_key,
                thread_id=thread_id,
                from_agent=source,
                to_agent=target,
                turn=chain.turns,
                max_turns=chain.max_turns,
                at=now,
            )
        )

    def stop_chain(self, thread_id: str, reason: str = "done", cost_usd: float = 0.0) -> None:
        chain = self._chains[thread_id]
        now = self.clock.now()
        for hop in chain.hops:
            if hop.state == "running":
                hop.state = "done" if reason != "error" else "failed"
                hop.duration_ms = int((now - hop.started_at) * 1000)
                hop.cost_usd = cost_usd
        chain.state = {"done": "done", "turn_limit": "turn_limit"}.get(reason, "error")  # type: ignore[assignment]
        self.bus.publish(
            HandoffStopped(
                project_key=chain.project_key,
                thread_id=thread_id,
                reason=reason,  # type: ignore[arg-type]
                turns=chain.turns,
                at=now,
            )
        )

    def log(self, level: str, message: str, logger: str = "mpg_tui.gateway") -> None:
        self.bus.publish(LogLine(level=level, logger=logger, message=message, at=self.clock.now()))

    # -- internals --------------------------------------------------------------------------

    def _directory(self, project_key: str) -> str:
        for view in self._views:
            if view.key == project_key:
                return view.directory
        return "/srv/mpg/unknown"

    @staticmethod
    def _snapshot(info: SessionInfo) -> SessionInfo:
        return replace(info, progress=list(info.progress))


# -- the demo: a gateway two hours into a working day -------------------------------------

SEARCH = "1200000000000000101"
FLAKY = "1200000000000000102"
WEBHOOKS = "1200000000000000103"
CERTS = "1200000000000000104"
RESTORED = "1200000000000000099"
BACKUPS = "1200000000000000098"


def build_demo(clock: FakeClock) -> FakeCore:
    """Sessions restored from before the cockpit opened (so their threads have no names yet)."""
    core = FakeCore(clock)
    core.add_session(
        RESTORED,
        DOCS,
        session_id=session_uuid(1),
        ago=3 * 3600,
        runs=4,
        cost_usd=0.212,
        input_tokens=48_200,
        output_tokens=9_100,
        last_reply="Published the changelog for **v2.3**.",
    )
    core.add_session(
        f"{BACKUPS}:devops",
        INFRA,
        runner="tmux",
        session_id=session_uuid(2),
        ago=40 * 60,
        runs=2,
        cost_usd=0.094,
        input_tokens=20_500,
        output_tokens=3_900,
    )
    return core


def play_demo(core: FakeCore) -> None:
    """A morning's traffic, as events: threads open, agents hand off, runs finish and fail."""
    clock = core.clock
    core.open_thread(SHOP, SEARCH, "Add search to the admin dashboard")
    core.start_run(f"{SEARCH}:pm", SHOP, prompt="@pm add search to the admin dashboard")
    core.handoff(SEARCH, SHOP, None, "pm")
    clock.advance(14)
    core.progress(f"{SEARCH}:pm", "src/admin/dashboard.tsx", tool="Read")
    clock.advance(9)
    core.finish_run(
        f"{SEARCH}:pm",
        reply="Requirements are in #212.\n\nHANDOFF @engineer: build the search box",
        cost_usd=0.041,
        input_tokens=9_800,
        output_tokens=1_250,
    )
    core.start_run(f"{SEARCH}:engineer", SHOP, prompt="build the search box")
    core.handoff(SEARCH, SHOP, "pm", "engineer", cost_usd=0.041)
    core.open_thread(SHOP, FLAKY, "Fix flaky checkout test")
    core.start_run(f"{FLAKY}:qa", SHOP, prompt="why does checkout.spec.ts fail one time in ten?")
    clock.advance(6)
    core.finish_run(
        f"{FLAKY}:qa", reply="The test races the payment mock.", cost_usd=0.033, input_tokens=7_700, output_tokens=900
    )
    core.start_run(f"{FLAKY}:engineer", SHOP, prompt="fix the race in checkout.spec.ts")
    core.open_thread(DOCS, WEBHOOKS, "Document the webhooks API")
    core.start_run(WEBHOOKS, DOCS, prompt="document the webhooks API")
    core.queue(WEBHOOKS, 1)
    core.open_thread(INFRA, CERTS, "Rotate staging certificates")
    core.start_run(f"{CERTS}:devops", INFRA, runner="tmux", prompt="rotate the staging certificates")
    core.recover(f"{BACKUPS}:devops")
    clock.advance(31)
    for tool, text in [
        ("Grep", "useSearch in src/"),
        ("Read", "src/admin/api.ts"),
        ("Edit", "src/admin/SearchBox.tsx"),
        (None, "Adding a debounced query hook; then the API route and its tests."),
    ]:
        core.progress(f"{SEARCH}:engineer", text, tool=tool)
    core.progress(f"{FLAKY}:engineer", "checkout.spec.ts", tool="Read")
    core.progress(f"{CERTS}:devops", "terraform plan -target=module.certs", tool="Bash")
    core.finish_run(f"{FLAKY}:engineer", ok=False, error="API Error: 529 overloaded — try again in a minute")
    core.log("warning", "rate limit: 3 messages from mallory in 60s (shop-api)")
    clock.advance(47)
