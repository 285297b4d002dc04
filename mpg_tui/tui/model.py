"""What the cockpit derives from the core's snapshots and events: threads, per-project counts,
filters, the conversations an event batch touched, and what a finished command says.

The core reports sessions; the cockpit groups them by thread and project. Everything here
is a pure function of core values (:class:`~mpg_tui.core.api.SessionInfo`, events), tested
without running the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.notifications import SeverityLevel

from mpg_tui.config import ProjectView
from mpg_tui.core.api import SessionInfo, ThreadCounts, entry_for
from mpg_tui.core.events import Event, SessionState, StateResynced

STATE_RANK: dict[str, int] = {"running": 3, "recovering": 2, "held": 1, "queued": 1, "idle": 0}
"""A thread is as busy as its busiest session."""


NO_MESSAGES = ThreadCounts()


@dataclass(frozen=True)
class ThreadSummary:
    thread_id: str
    name: str
    sessions: int
    last_activity: float
    state: SessionState
    agents: tuple[str, ...]
    paused: str | None = None
    """The spending limit the thread is paused at (``thread`` or ``day``), if any."""
    messages: ThreadCounts = NO_MESSAGES
    """The thread's messages waiting, running and answered (the journal's counts)."""


@dataclass(frozen=True)
class ProjectCounts:
    sessions: int = 0
    running: int = 0
    queued: int = 0
    """Prompts waiting: for a free slot, or behind a session's current run."""


def summarize_threads(
    sessions: Iterable[SessionInfo],
    project_key: str | None,
    names: Mapping[str, str],
    counts: Mapping[str, ThreadCounts] | None = None,
    paused: Mapping[str, str] | None = None,
) -> list[ThreadSummary]:
    """The threads of ``project_key`` (all projects when None), newest thread first.

    Thread IDs are Discord snowflakes, which grow with time, so sorting by ID keeps the
    list in creation order and stable while activity changes.
    """
    grouped: dict[str, list[SessionInfo]] = {}
    for info in sessions:
        if project_key is None or info.project_key == project_key:
            grouped.setdefault(info.thread_id, []).append(info)
    summaries = []
    for thread_id, members in grouped.items():
        busiest = max(members, key=lambda s: STATE_RANK.get(s.state, 0))
        agents = tuple(sorted({s.agent for s in members if s.agent}))
        summaries.append(
            ThreadSummary(
                thread_id=thread_id,
                name=names.get(thread_id, ""),
                sessions=len(members),
                last_activity=max(s.last_activity for s in members),
                state=busiest.state,
                agents=agents,
                messages=(counts or {}).get(thread_id, NO_MESSAGES),
                paused=(paused or {}).get(thread_id),
            )
        )
    summaries.sort(key=lambda t: (len(t.thread_id), t.thread_id), reverse=True)
    return summaries


def project_counts(sessions: Iterable[SessionInfo]) -> dict[str, ProjectCounts]:
    totals: dict[str, list[int]] = {}
    for info in sessions:
        counts = totals.setdefault(info.project_key, [0, 0, 0])
        counts[0] += 1
        counts[1] += info.state == "running"
        counts[2] += info.queue_depth + (info.state == "queued")
    return {key: ProjectCounts(*values) for key, values in totals.items()}


def matches(info: SessionInfo, query: str, *, project_name: str = "", thread_name: str = "") -> bool:
    """Whether every word of ``query`` appears in the key, thread, project, agent, state or runner.

    ``shop running`` keeps the running sessions of projects whose name contains "shop".
    """
    haystack = " ".join(
        (info.key, thread_name, info.project_key, project_name, info.agent or "", info.state, info.runner)
    ).lower()
    return all(word in haystack for word in query.lower().split())


def direct_runs_in_progress(sessions: Iterable[SessionInfo]) -> int:
    """Runs that end with the cockpit's process (tmux-backed runs survive it)."""
    return sum(1 for s in sessions if s.runner == "direct" and s.state == "running")


def command_outcome(name: str, subject: str, result: object) -> tuple[str, str, SeverityLevel] | None:
    """What the operator is told when a command worker ends well: (text, title, severity)."""
    if name == "post":
        return None
    if result is False and name == "stop":
        return f"Session {subject} has no turn in progress.", "Nothing to stop", "warning"
    if result is False:
        return f"No session {subject} any more.", f"Could not {name}", "warning"
    done = {
        "stop": f"Session {subject}: its turn was stopped.",
        "kill": f"Session {subject} killed.",
        "restart": f"Session {subject} will start fresh with the next message.",
    }
    if name in done:
        return done[name], "", "information"
    if name == "continue":
        return str(result), f"Thread {subject}", "information"
    return None


def conversation_threads(events: list[Event]) -> set[str]:
    """Threads whose conversation a batch of events added to (or may have changed, after a resync)."""
    threads: set[str] = set()
    for event in events:
        if isinstance(event, StateResynced):
            threads.update(event.threads)
        found = entry_for(event)
        if found is not None:
            threads.add(found[0])
    return threads


def project_facts(project: ProjectView) -> tuple[object, ...]:
    """What the projects pane shows of a project (views are rebuilt, not compared, on a reload)."""
    return (
        project.key,
        project.name,
        project.directory,
        project.channel_id,
        tuple(project.agents),
        project.persistence,
    )


def stored_thread_names(infos: Iterable[SessionInfo], known: Mapping[str, str]) -> dict[str, str]:
    """Names sessions carry for threads not named yet (no ThreadOpened seen by this cockpit)."""
    return {info.thread_id: info.thread_name for info in infos if info.thread_name and info.thread_id not in known}
