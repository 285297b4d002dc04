"""The small API every face uses: read the gateway's state, a few commands, and lending a session out.

Faces import what they need of holds (:mod:`mpg_tui.core.holds`) and conversations
(:mod:`mpg_tui.core.conversation`) from here: this module is the whole of the core they see.

The cockpit, the dashboard and ``!`` commands depend on :class:`CoreAPI` only, never on
the gateway's internals, so each can be tested against an in-memory stand-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mpg_tui.config import ProjectView
from mpg_tui.core.bus import EventBus
from mpg_tui.core.conversation import MAX_ENTRIES as MAX_ENTRIES
from mpg_tui.core.conversation import ConversationEntry as ConversationEntry
from mpg_tui.core.conversation import entry_for as entry_for
from mpg_tui.core.events import BudgetLimit, ConnectionState, RunnerKind, SessionState
from mpg_tui.core.holds import DEFAULT_LEASE_S as DEFAULT_LEASE_S
from mpg_tui.core.holds import HandBack as HandBack
from mpg_tui.core.holds import HoldError as HoldError
from mpg_tui.core.holds import HoldGrant as HoldGrant
from mpg_tui.core.holds import IfRunning as IfRunning
from mpg_tui.core.holds import keep_hold as keep_hold
from mpg_tui.core.ports import InboundMessage


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

    held_since: float | None = None
    """When the session was lent to a terminal (``claude --resume``); None when it is not held."""
    held_by: str | None = None
    """Who holds it: "cockpit", "mpg-tui resume", with the user and host."""


@dataclass
class ApprovalInfo:
    """A request waiting for a person (a snapshot; safe to hand to a face)."""

    id: str
    """Random; the only handle that decides it."""
    key: str
    project_key: str
    thread_id: str
    kind: str
    """``tool``, ``question`` or ``plan``."""
    tool: str
    summary: str
    requested_by: str
    created_at: float
    expires_at: float
    options: list[str] = field(default_factory=list)
    """A question's option labels, in order (``choose`` takes their index)."""


@dataclass(frozen=True)
class KilledSession:
    """What ``kill`` did to a session, for the reply to ``!kill``."""

    key: str
    project_key: str
    kept_branch: str | None = None
    """The branch its unmerged work was kept under (``mpg/kept/<name>``), if any."""


MessageState = Literal["received", "queued", "running", "answered", "told"]


@dataclass(frozen=True)
class JournalEntry:
    """One accepted message as the journal holds it."""

    message_id: str
    channel_id: str
    project_key: str
    thread_id: str | None
    session_key: str | None
    state: MessageState
    author: str
    preview: str
    received_at: float
    updated_at: float
    message: InboundMessage


@dataclass(frozen=True)
class ThreadCounts:
    """Messages of one thread by where they are: waiting (received or queued), running, answered, told."""

    waiting: int = 0
    running: int = 0
    answered: int = 0
    told: int = 0


HopState = Literal["running", "done", "failed", "queued"]
ChainState = Literal["running", "done", "turn_limit", "error", "budget"]


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


@dataclass
class ProjectSpend:
    """A project's spend today (the gateway's local calendar day) against its daily budget."""

    project_key: str
    day: str
    """``YYYY-MM-DD``."""
    spent_usd: float
    budget_usd: float | None
    """Today's budget, raised by any continue; None when the project has none."""


@dataclass
class PausedThread:
    """A thread stopped at a spending limit, waiting for someone allowed to continue it."""

    thread_id: str
    project_key: str
    limit: BudgetLimit
    spent_usd: float
    limit_usd: float
    held: int
    """Messages (and handoffs) kept to run after the continue."""
    since: float


@dataclass
class Budgets:
    projects: list[ProjectSpend] = field(default_factory=list)
    paused: list[PausedThread] = field(default_factory=list)


@dataclass(frozen=True)
class Totals:
    runs: int
    failures: int
    cost_usd: float
    input_tokens: int
    output_tokens: int


class CoreAPI(Protocol):
    """Reads and commands every face uses; a view of a gateway elsewhere implements it too."""

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

    def budgets(self) -> Budgets: ...

    def message_counts(self) -> dict[str, ThreadCounts]:
        """Per thread, its messages waiting, running, answered and told (from the journal)."""

    def recent_messages(self, limit: int = 100) -> list[JournalEntry]:
        """The newest messages the journal holds, newest first."""

    async def kill(self, key: str) -> bool:
        """End the session: stop its run, forget it in memory and on disk, remove its worktree."""

    async def restart(self, key: str) -> bool:
        """Clear the session's claude session ID so the next message starts fresh."""

    async def stop(self, key: str) -> bool:
        """Stop the session's turn in progress; the session and its claude session stay."""

    async def post(self, channel_id: str, author: str, content: str) -> None:
        """Post as a user (the demo's chat box); only meaningful against the sandbox."""

    async def continue_thread(self, thread_id: str, amount_usd: float | None = None) -> str:
        """As the operator: raise the limit a paused thread stopped at, once, and run what it kept.

        ``amount_usd`` more may be spent (default: the configured limit again). Returns the
        sentence the thread is told, or why nothing was continued.
        """

    async def hold(
        self, name: str, holder: str, *, if_running: IfRunning = "refuse", lease_s: float = DEFAULT_LEASE_S
    ) -> HoldGrant:
        """Lend a session (key, thread ID or unambiguous prefix) to a terminal: none of its runs start
        until :meth:`release_hold`, or until the lease runs out unrenewed. Raises
        :class:`~mpg_tui.core.holds.HoldError`."""

    async def renew_hold(self, hold_id: str) -> bool:
        """Keep a hold for another lease; False when it is gone (killed, or it ran out)."""

    async def release_hold(self, hold_id: str) -> HandBack | None:
        """Hand the session back: count the terminal's turns, tell the thread, run what waited."""

    async def conversation(self, thread_id: str) -> list[ConversationEntry]:
        """What the gateway saw and sent in a thread, oldest first (the recent part of it)."""

    def approvals(self) -> list[ApprovalInfo]:
        """Requests waiting for a person, oldest first."""

    async def decide(self, approval_id: str, choice: str) -> str:
        """Decide a pending request as the operator: ``allow``, ``allow_session``, ``deny``, or
        ``option:<n>`` (a question's option); returns what happened, in words."""

    async def ask_permission(self, token: str, tool_name: str, tool_input: str, tool_use_id: str) -> dict[str, Any]:
        """A run's permission tool asks (``tool_input`` is JSON); waits for the decision:
        ``{"outcome", "message", "answers", "decided_by"}``. Raises ``PermissionError`` for a
        token this gateway did not sign."""
