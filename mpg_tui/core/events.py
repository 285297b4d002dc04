"""Everything that happens in the gateway, as immutable events.

The core publishes these on the :class:`~mpg_tui.core.bus.EventBus`; faces (the cockpit,
the dashboard, headless logging) only render them. Each event names its kind in
``kind`` so the dashboard can stream them as JSON without a type registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from mpg_tui.core.plain import plain_dict

ConnectionState = Literal["connecting", "ready", "resuming", "disconnected"]
RunnerKind = Literal["direct", "tmux"]
BudgetLimit = Literal["turn", "thread", "day"]
"""Which spending limit: ``maxTurnCostUsd``, ``maxThreadCostUsd`` or ``dailyBudgetUsd``."""
TEXT_LIMIT = 4000
"""The longest text an event carries (a reply or a notice); the rest is cut."""
SessionState = Literal["idle", "queued", "running", "recovering", "held"]
ReleaseReason = Literal["handed_back", "holder_gone", "killed"]


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    at: float = 0.0
    """When it happened (epoch seconds). Left at 0, the bus stamps it from its clock on publish."""

    def to_dict(self) -> dict[str, Any]:
        data = plain_dict(self)
        data["kind"] = self.kind
        return data


@dataclass(frozen=True, kw_only=True)
class MessageReceived(Event):
    """A chat message reached a mapped channel or thread (before access checks)."""

    kind: ClassVar[str] = "message_received"
    project_key: str
    channel_id: str
    thread_id: str | None
    message_id: str
    author: str
    content: str


@dataclass(frozen=True, kw_only=True)
class MessageRejected(Event):
    """A message was refused: missing role, rate limited, invalid, ..."""

    kind: ClassVar[str] = "message_rejected"
    project_key: str
    channel_id: str
    author: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ThreadOpened(Event):
    kind: ClassVar[str] = "thread_opened"
    project_key: str
    channel_id: str
    thread_id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class SessionQueued(Event):
    """A prompt waits behind others for the same session or for a free slot."""

    kind: ClassVar[str] = "session_queued"
    key: str
    project_key: str
    position: int


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    key: str
    project_key: str
    thread_id: str
    agent: str | None
    runner: RunnerKind
    cwd: str
    session_id: str | None
    prompt_preview: str


@dataclass(frozen=True, kw_only=True)
class RunProgress(Event):
    """Claude did something visible while working: a tool use or some text."""

    kind: ClassVar[str] = "run_progress"
    key: str
    step: Literal["tool", "text", "init"]
    text: str
    tool: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    key: str
    project_key: str
    thread_id: str
    agent: str | None
    ok: bool
    session_id: str | None
    reply_preview: str
    error: str | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    recovered: bool = False


@dataclass(frozen=True, kw_only=True)
class RunRecovering(Event):
    """A run from before a gateway restart is still going and is being waited for."""

    kind: ClassVar[str] = "run_recovering"
    key: str
    project_key: str
    thread_id: str


@dataclass(frozen=True, kw_only=True)
class HandoffStep(Event):
    """One hop of an agent chain: ``from_agent`` (None = the human) handed to ``to_agent``."""

    kind: ClassVar[str] = "handoff_step"
    project_key: str
    thread_id: str
    from_agent: str | None
    to_agent: str
    turn: int
    max_turns: int


@dataclass(frozen=True, kw_only=True)
class HandoffStopped(Event):
    kind: ClassVar[str] = "handoff_stopped"
    project_key: str
    thread_id: str
    reason: Literal["done", "turn_limit", "self_handoff", "error", "budget"]
    turns: int


@dataclass(frozen=True, kw_only=True)
class BudgetWarning(Event):
    """A thread or a project's day reached 80% of its budget (told once)."""

    kind: ClassVar[str] = "budget_warning"
    project_key: str
    thread_id: str
    limit: BudgetLimit
    spent_usd: float
    limit_usd: float


@dataclass(frozen=True, kw_only=True)
class BudgetPaused(Event):
    """A thread stopped at a spending limit; ``held`` messages wait for a continue."""

    kind: ClassVar[str] = "budget_paused"
    project_key: str
    thread_id: str
    limit: BudgetLimit
    spent_usd: float
    limit_usd: float
    held: int = 0


@dataclass(frozen=True, kw_only=True)
class BudgetContinued(Event):
    """Someone allowed to decide raised the limit of a paused thread (or project-day) once."""

    kind: ClassVar[str] = "budget_continued"
    project_key: str
    thread_id: str
    limit: BudgetLimit
    limit_usd: float
    by: str


@dataclass(frozen=True, kw_only=True)
class SessionKilled(Event):
    kind: ClassVar[str] = "session_killed"
    key: str
    project_key: str
    kept_branch: str | None = None
    """Its worktree's branch, renamed to keep commits nobody merged."""


@dataclass(frozen=True, kw_only=True)
class SessionRestarted(Event):
    kind: ClassVar[str] = "session_restarted"
    key: str
    project_key: str


@dataclass(frozen=True, kw_only=True)
class SessionIdled(Event):
    """A session was dropped from memory after its idle timeout (it stays on disk)."""

    kind: ClassVar[str] = "session_idled"
    key: str
    project_key: str


@dataclass(frozen=True, kw_only=True)
class ReplySent(Event):
    kind: ClassVar[str] = "reply_sent"
    channel_id: str
    chunks: int
    agent: str | None = None
    text: str = ""
    """The reply (cut to :data:`TEXT_LIMIT` characters), for conversation views."""


@dataclass(frozen=True, kw_only=True)
class NoticeSent(Event):
    """The gateway posted a line of its own in a channel or thread: a notice, or an error."""

    kind: ClassVar[str] = "notice_sent"
    channel_id: str
    text: str


@dataclass(frozen=True, kw_only=True)
class SessionHeld(Event):
    """A session was lent to a terminal (``claude --resume``): none of its runs start until it is handed back."""

    kind: ClassVar[str] = "session_held"
    key: str
    project_key: str
    thread_id: str
    holder: str
    session_id: str | None


@dataclass(frozen=True, kw_only=True)
class SessionReleased(Event):
    """A held session came back: handed back by its holder, its holder gone, or killed."""

    kind: ClassVar[str] = "session_released"
    key: str
    project_key: str
    thread_id: str
    reason: ReleaseReason
    turns: int | None
    """Turns taken in the terminal, counted from the session's transcript (None: not found)."""
    session_id: str | None


@dataclass(frozen=True, kw_only=True)
class CatchUpFinished(Event):
    """Messages posted while the gateway was away were read back and handled (start, or a new session)."""

    kind: ClassVar[str] = "catch_up_finished"
    places: int
    """Channels and threads read."""
    handled: int
    skipped_old: int
    """Older than ``catchUpMaxAgeMs``: not handled."""
    skipped_over_cap: int
    """Places where more than ``catchUpMaxMessages`` arrived: at least this many older ones not handled."""


@dataclass(frozen=True, kw_only=True)
class ConnectionChanged(Event):
    kind: ClassVar[str] = "connection_changed"
    state: ConnectionState
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class LogLine(Event):
    """A log record worth showing to an operator (the cockpit's event log)."""

    kind: ClassVar[str] = "log"
    level: str
    logger: str
    message: str


@dataclass(frozen=True, kw_only=True)
class StateResynced(Event):
    """A face's copy of a gateway's state was replaced by a fresh snapshot (after a reconnect).

    Published by a remote view of the core, never by the core itself: it names every
    session and thread whose snapshot may differ, so faces re-read them.
    """

    kind: ClassVar[str] = "state_resynced"
    keys: tuple[str, ...]
    threads: tuple[str, ...]
    detail: str = ""


ApprovalKind = Literal["tool", "question", "plan"]
ApprovalOutcome = Literal["allow", "allow_session", "deny"]
ApprovalReason = Literal["decided", "timeout", "withdrawn", "session_rule"]


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    """A run waits for a person: a tool call to allow, a question to answer or a plan to approve."""

    kind: ClassVar[str] = "approval_requested"
    id: str
    key: str
    project_key: str
    thread_id: str
    request_kind: ApprovalKind
    tool: str
    summary: str
    requested_by: str
    expires_at: float
    options: tuple[str, ...] = ()
    """The first question's option labels (a question), else empty."""


@dataclass(frozen=True, kw_only=True)
class ApprovalDecided(Event):
    """A pending request was settled: by a person, by its timeout, or withdrawn with its run."""

    kind: ClassVar[str] = "approval_decided"
    id: str
    key: str
    project_key: str
    thread_id: str
    request_kind: ApprovalKind
    tool: str
    outcome: ApprovalOutcome
    decided_by: str
    waited_ms: int
    reason: ApprovalReason = "decided"
