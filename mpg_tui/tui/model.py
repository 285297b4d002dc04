"""What the cockpit derives from session snapshots: threads, per-project counts, filters.

The core reports sessions; the cockpit groups them by thread and project. Everything here
is a pure function of :class:`~mpg_tui.core.api.SessionInfo` values, tested without Textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mpg_tui.core.api import SessionInfo, ThreadCounts
from mpg_tui.core.events import SessionState

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
