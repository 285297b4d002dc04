"""Turn a batch of core events into what the cockpit must redraw, and into log lines.

The cockpit applies events in batches (see :class:`~mpg_tui.tui.app.CockpitApp`): a burst
of progress events for one session becomes one table update. :func:`digest` says which
sessions, threads and header fields a batch touched; :func:`describe` is the one place
that words an event for the event log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mpg_tui.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    BudgetContinued,
    BudgetPaused,
    BudgetWarning,
    ConnectionChanged,
    ConnectionState,
    Event,
    HandoffStep,
    HandoffStopped,
    LogLine,
    MessageReceived,
    MessageRejected,
    NoticeSent,
    ReplySent,
    RunFinished,
    RunProgress,
    RunRecovering,
    RunStarted,
    SessionHeld,
    SessionIdled,
    SessionKilled,
    SessionQueued,
    SessionReleased,
    SessionRestarted,
    StateResynced,
    ThreadOpened,
)
from mpg_tui.tui import formatting as fmt

Level = Literal["debug", "info", "warn", "error"]
LEVELS: tuple[Level, ...] = ("debug", "info", "warn", "error")
_LEVEL_ALIASES: dict[str, Level] = {
    "debug": "debug",
    "info": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "critical": "error",
    "fatal": "error",
}

_HANDOFF_STOP_LEVEL: dict[str, Level] = {"done": "info", "turn_limit": "warn", "self_handoff": "warn"}
_CONNECTION_LEVEL: dict[str, Level] = {"ready": "info", "connecting": "info", "resuming": "warn"}


@dataclass(frozen=True)
class LogEntry:
    at: float
    level: Level
    text: str
    project: str | None = None


@dataclass
class Digest:
    session_keys: set[str] = field(default_factory=set)
    """Sessions whose snapshot must be re-read (new, changed or gone)."""
    threads: set[str] = field(default_factory=set)
    """Threads whose handoff chain may have changed."""
    thread_names: dict[str, str] = field(default_factory=dict)
    totals: bool = False
    budgets: bool = False
    """A thread was paused or continued: the threads pane's marks change."""
    connection: tuple[ConnectionState, str] | None = None
    log: list[LogEntry] = field(default_factory=list)
    approvals: bool = False
    """A request started or stopped waiting for a person."""

    @property
    def empty(self) -> bool:
        return not (
            self.session_keys
            or self.threads
            or self.thread_names
            or self.totals
            or self.connection
            or self.log
            or self.approvals
        )


def normalize_level(level: str) -> Level:
    return _LEVEL_ALIASES.get(level.lower(), "info")


def digest(events: Iterable[Event], project_names: Mapping[str, str]) -> Digest:
    result = Digest()
    for event in events:
        key = getattr(event, "key", None)
        if isinstance(key, str):
            result.session_keys.add(key)
        if isinstance(event, RunStarted | RunFinished | HandoffStep | HandoffStopped):
            result.threads.add(event.thread_id)
        if isinstance(event, RunFinished):
            result.totals = True
        if isinstance(event, BudgetPaused | BudgetContinued | BudgetWarning):
            result.threads.add(event.thread_id)
            result.totals = result.budgets = True
        elif isinstance(event, ThreadOpened):
            result.thread_names[event.thread_id] = event.name
        elif isinstance(event, ConnectionChanged):
            result.connection = (event.state, event.detail)
        elif isinstance(event, ApprovalRequested | ApprovalDecided):
            result.approvals = True
        elif isinstance(event, StateResynced):
            result.session_keys.update(event.keys)
            result.threads.update(event.threads)
            result.totals = True
            result.approvals = True
        entry = describe(event, project_names)
        if entry is not None:
            result.log.append(entry)
    return result


def describe(event: Event, project_names: Mapping[str, str]) -> LogEntry | None:
    """One event-log line for ``event``; None for events too frequent to log (progress)."""
    project_key = getattr(event, "project_key", None)
    project = project_names.get(project_key, project_key) if isinstance(project_key, str) else None
    level: Level = "info"
    match event:
        case RunProgress():
            return None
        case ApprovalRequested(key=key, tool=tool, summary=summary, requested_by=who):
            level, text = (
                "warn",
                f"{key} waits for a person: {tool} {fmt.truncate(summary, 80)} (asked by {who or '?'})",
            )
        case ApprovalDecided(key=key, tool=tool, outcome=outcome, decided_by=who, reason=reason):
            text = f"{key}: {tool} {outcome.replace('_', ' ')} ({reason}{f', by {who}' if who else ''})"
        case MessageReceived(author=author, content=content):
            text = f"{author}: {fmt.truncate(content, 100)}"
        case MessageRejected(author=author, reason=reason):
            level, text = "warn", f"refused a message from {author}: {reason}"
        case ThreadOpened(name=name, thread_id=thread_id):
            text = f"thread opened “{fmt.truncate(name, 60)}” ({thread_id})"
        case SessionQueued(key=key, position=position):
            text = f"{key} queued at position {position}"
        case RunStarted(key=key, runner=runner, session_id=session_id):
            resume = f"resuming {fmt.short_id(session_id)}" if session_id else "new session"
            text = f"{key} started ({runner}, {resume})"
        case RunFinished(key=key, ok=True) as finished:
            text = (
                f"{key} finished in {fmt.duration(finished.duration_ms / 1000)}"
                f" · {fmt.cost(finished.cost_usd)}"
                f" · {fmt.tokens(finished.input_tokens + finished.output_tokens)} tokens"
            )
            if finished.recovered:
                text += " (recovered after restart)"
        case RunFinished(key=key, error=error):
            level, text = "error", f"{key} failed: {error or 'unknown error'}"
        case RunRecovering(key=key):
            level, text = "warn", f"{key} is recovering a run from before the restart"
        case HandoffStep(from_agent=source, to_agent=target, turn=turn, max_turns=max_turns):
            text = f"handoff {source or 'you'} → {target} (turn {turn}/{max_turns})"
        case HandoffStopped(reason=reason, turns=turns):
            level = _HANDOFF_STOP_LEVEL.get(reason, "error")
            text = f"handoff chain stopped: {reason.replace('_', ' ')} after {turns} turn{'s' * (turns != 1)}"
        case SessionKilled(key=key):
            level, text = "warn", f"{key} killed"
        case SessionRestarted(key=key):
            text = f"{key} restarted: the next message starts a fresh session"
        case SessionIdled(key=key):
            level, text = "debug", f"{key} went idle and left memory"
        case ReplySent(channel_id=channel_id, chunks=chunks, agent=agent):
            who = f" from {agent}" if agent else ""
            level, text = "debug", f"reply{who} sent to {channel_id} in {chunks} message{'s' * (chunks != 1)}"
        case NoticeSent(channel_id=channel_id, text=notice):
            level, text = "debug", f"said in {channel_id}: {fmt.truncate(' '.join(notice.split()), 100)}"
        case SessionHeld(key=key, holder=holder):
            text = f"{key} held: open in a terminal ({holder}); its messages wait"
        case SessionReleased(key=key, reason=reason, turns=turns):
            taken = "" if turns is None else f", {turns} turn{'s' * (turns != 1)} taken there"
            how = {"handed_back": "handed back", "holder_gone": "taken back: its holder went away"}.get(reason, reason)
            level = "warn" if reason == "holder_gone" else "info"
            text = f"{key} {how}{taken}"
        case ConnectionChanged(state=state, detail=detail):
            level = _CONNECTION_LEVEL.get(state, "error")
            text = f"Discord {state}" + (f": {detail}" if detail else "")
        case StateResynced(detail=detail):
            text = detail or "resynchronised with the gateway"
        case LogLine(level=raw_level, logger=logger, message=message):
            level, text = normalize_level(raw_level), f"{logger}: {message}"
        case _:
            text = event.kind.replace("_", " ")
    return LogEntry(at=event.at, level=level, text=text, project=project)
