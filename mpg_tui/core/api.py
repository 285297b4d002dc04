"""The small API every face uses: read the gateway's state, and five commands.

The cockpit, the dashboard and ``!`` commands depend on :class:`CoreAPI` only, never on
the gateway's internals, so each can be tested against an in-memory stand-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mpg_tui.config import ProjectView
from mpg_tui.core.bus import EventBus
from mpg_tui.core.events import ConnectionState, RunnerKind, SessionState


@dataclass
class SessionInfo:
    """One claude session as the gateway sees it (a snapshot; safe to hand to a face)."""

    key: str
    """``<threadId>`` or ``<threadId>:<agent>``."""
    project_key: str
    thread_id: str
    agent: str | None
    cwd: str
    session_id: str | None
    state: SessionState
    queue_depth: int
    """Prompts waiting behind the current one."""
    last_activity: float
    runner: RunnerKind
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    runs: int = 0
    worktree_path: str | None = None
    run_started_at: float | None = None
    last_reply: str = ""
    last_error: str | None = None
    progress: list[str] = field(default_factory=list)
    """Recent progress lines of the current (or last) run, oldest first."""
    tmux_session: str | None = None
    """Name of the tmux session its run is in, while a tmux-backed run is in progress."""
    attach_command: list[str] | None = None
    """The argument list that attaches a terminal to that run (``tmux -L <socket> attach -t <name>``)."""
    thread_name: str | None = None
    """The thread's name, kept with the session so it outlives a restart of the gateway."""


@dataclass(frozen=True)
class KilledSession:
    """What ``kill`` did to a session, for the reply to ``!kill``."""

    key: str
    project_key: str
    kept_branch: str | None = None
    """The branch its unmerged work was kept under (``mpg/kept/<name>``), if any."""


HopState = Literal["running", "done", "failed", "queued"]
ChainState = Literal["running", "done", "turn_limit", "error"]


@dataclass
class ChainHop:
    agent: str
    state: HopState
    started_at: float
    duration_ms: int = 0
    cost_usd: float = 0.0


@dataclass
class HandoffChain:
    """The agents a thread's latest human message set going: user -> pm -> engineer -> ..."""

    thread_id: str
    project_key: str
    hops: list[ChainHop]
    turns: int
    max_turns: int
    state: ChainState


@dataclass(frozen=True)
class Totals:
    runs: int
    failures: int
    cost_usd: float
    input_tokens: int
    output_tokens: int


class CoreAPI(Protocol):
    bus: EventBus
    started_at: float
    version: str

    @property
    def connection_state(self) -> ConnectionState: ...

    def projects(self) -> Sequence[ProjectView]: ...

    def sessions(self) -> list[SessionInfo]: ...

    def session(self, key: str) -> SessionInfo | None: ...

    def chains(self) -> list[HandoffChain]: ...

    def totals(self) -> Totals: ...

    async def kill(self, key: str) -> bool:
        """End the session: stop its run, forget it in memory and on disk, remove its worktree."""

    async def restart(self, key: str) -> bool:
        """Clear the session's claude session ID so the next message starts fresh."""

    async def stop(self, key: str) -> bool:
        """Stop the session's turn in progress; the session and its claude session stay."""

    async def post(self, channel_id: str, author: str, content: str) -> None:
        """Post as a user (the demo's chat box); only meaningful against the sandbox."""
