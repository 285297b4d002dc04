"""Everything that happens in the gateway, as immutable events.

The core publishes these on the :class:`~mpg_tui.core.bus.EventBus`; faces (the cockpit,
the dashboard, headless logging) only render them. Each event names its kind in
``kind`` so the dashboard can stream them as JSON without a type registry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

ConnectionState = Literal["connecting", "ready", "resuming", "disconnected"]
RunnerKind = Literal["direct", "tmux"]
SessionState = Literal["idle", "queued", "running", "recovering"]


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    at: float = 0.0
    """When it happened (epoch seconds). Left at 0, the bus stamps it from its clock on publish."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
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
    reason: Literal["done", "turn_limit", "self_handoff", "error"]
    turns: int


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
