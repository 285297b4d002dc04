"""A live session's state in memory, and how it is shown (SessionInfo) and stored (StoredSession);
the names of recently opened threads, for sessions made later.

Only the event loop touches these objects; :class:`~mpg_tui.core.sessions.SessionManager`
owns them and :class:`~mpg_tui.core.turn_runner.TurnRunner` updates them as a turn runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mpg_tui.config import Agent, ProjectView
from mpg_tui.core.api import SessionInfo
from mpg_tui.core.budget import Allowance
from mpg_tui.core.clock import TimerHandle
from mpg_tui.core.events import SessionState
from mpg_tui.core.holds import Hold
from mpg_tui.core.runner import Progress, ProgressCallback, Runner, RunResult
from mpg_tui.core.sessions_file import PendingRun, StoredSession

log = logging.getLogger(__name__)

PROGRESS_TAIL = 20
PREVIEW_CHARS = 120
THREAD_NAMES_KEPT = 1000

RecoveredWait = Callable[[ProgressCallback], Awaitable[RunResult]]
"""Waits for a run an earlier gateway started (``RecoveredRun.wait``)."""


@dataclass(frozen=True)
class TurnOutcome:
    """What one submitted prompt came to."""

    result: RunResult
    notices: list[str]
    """Lines for the thread before the reply ("Previous session expired — starting fresh.")."""
    session: SessionInfo


@dataclass(frozen=True)
class Requester:
    """Who asked for a turn: they may decide what claude asks during it."""

    id: str
    name: str


@dataclass(eq=False)
class Turn:
    """One submitted prompt, waiting in its session's queue or running."""

    prompt: str
    agent: Agent | None
    timeout_s: float
    on_progress: Callable[[Progress], None] | None
    future: asyncio.Future[TurnOutcome]
    recovered: RecoveredWait | None = None
    """Set for a run adopted from an earlier gateway: wait for it instead of starting one."""
    started_at: float | None = None
    on_started: Callable[[], None] | None = None
    """Called when the run really starts (after any wait in the queue)."""
    allowance: Callable[[], Allowance] | None = None
    """Asked just before the run starts (after any wait): may it start, and with which spending cap."""
    requester: Requester | None = None
    """The member whose message started this turn (or the chain it belongs to)."""

    def notify_started(self) -> None:
        if self.on_started is not None:
            try:
                self.on_started()
            except Exception:
                log.exception("on_started callback failed")


class LiveSession:
    """A session in memory: its claude session, workspace, queue, current turn and totals."""

    def __init__(self, key: str, project: ProjectView, thread_id: str, agent: str | None, now: float) -> None:
        self.key = key
        self.project = project
        self.thread_id = thread_id
        self.agent = agent
        self.thread_name: str | None = None
        self.session_id: str | None = None
        self.cwd: Path | None = None
        self.worktree_path: Path | None = None
        self.project_dir: Path | None = None
        self.workspace_ready = False
        self.workspace_lock = asyncio.Lock()
        self.last_activity = now
        self.cost_usd = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self.runs = 0
        self.queue: deque[Turn] = deque()
        self.current: Turn | None = None
        self.slot: asyncio.Future[None] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.idle_timer: TimerHandle | None = None
        self.pending: PendingRun | None = None
        self.run_started_at: float | None = None
        self.progress: deque[str] = deque(maxlen=PROGRESS_TAIL)
        self.last_reply = ""
        self.last_error: str | None = None
        self.generation = 0  # bumped by restart: a run that started before must not restore the old ID
        self.killed = False
        self.stop_requested = False
        """``!stop`` asked for the current turn to end; cleared when the next turn starts."""

    @property
    def busy(self) -> bool:
        return self.worker is not None or bool(self.queue) or self.current is not None

    def revive(self, stored: StoredSession) -> None:
        """Take up a session from disk: same claude session, same directory (claude resumes only from there)."""
        self.session_id = stored.session_id
        self.cwd = Path(stored.cwd)
        self.worktree_path = Path(stored.worktree_path) if stored.worktree_path else None
        self.project_dir = Path(stored.project_dir) if stored.project_dir else None
        self.cost_usd = stored.cost_usd
        self.input_tokens = stored.input_tokens
        self.output_tokens = stored.output_tokens
        self.runs = stored.runs
        self.agent = self.agent or stored.agent
        self.thread_name = self.thread_name or stored.thread_name

    def info(self, runner: Runner, hold: Hold | None = None) -> SessionInfo:
        """A snapshot for the faces; ``runner`` is the one the session's project runs on,
        ``hold`` the session's hold if a terminal has (or is about to have) it."""
        state: SessionState = "queued" if self.queue else "idle"
        if self.current is not None:
            state = "recovering" if self.current.recovered is not None else "running"
        elif hold is not None and hold.active:
            state = "held"
        in_run = self.current is not None
        return SessionInfo(
            key=self.key,
            project_key=self.project.key,
            thread_id=self.thread_id,
            agent=self.agent,
            cwd=str(self.cwd or self.project.directory),
            session_id=self.session_id,
            state=state,
            queue_depth=len(self.queue),
            last_activity=self.last_activity,
            runner=runner.kind,
            cost_usd=self.cost_usd,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            runs=self.runs,
            worktree_path=str(self.worktree_path) if self.worktree_path else None,
            run_started_at=self.run_started_at,
            last_reply=self.last_reply,
            last_error=self.last_error,
            progress=list(self.progress),
            tmux_session=runner.tmux_session(self.key) if in_run else None,
            attach_command=runner.attach_command(self.key) if in_run else None,
            thread_name=self.thread_name,
            held_since=hold.since if hold is not None else None,
            held_by=hold.holder if hold is not None else None,
        )

    def stored(self) -> StoredSession:
        """The entry ``sessions.json`` keeps for this session."""
        return StoredSession(
            key=self.key,
            session_id=self.session_id,
            cwd=str(self.cwd or self.project.directory),
            last_activity_ms=int(self.last_activity * 1000),
            channel_id=self.project.key,
            thread_id=self.thread_id,
            agent=self.agent,
            thread_name=self.thread_name,
            worktree_path=str(self.worktree_path) if self.worktree_path else None,
            project_dir=str(self.project_dir) if self.project_dir else None,
            cost_usd=self.cost_usd,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            runs=self.runs,
            pending_run=self.pending,
        )


class ThreadNames:
    """Names of recently opened threads, for sessions not made yet (a thread's later agents)."""

    def __init__(self, kept: int = THREAD_NAMES_KEPT) -> None:
        self._kept = kept
        self._names: OrderedDict[str, str] = OrderedDict()

    def remember(self, thread_id: str, name: str) -> None:
        self._names[thread_id] = name
        self._names.move_to_end(thread_id)
        while len(self._names) > self._kept:
            self._names.popitem(last=False)

    def get(self, thread_id: str) -> str | None:
        return self._names.get(thread_id)


def project_dir_of(project: ProjectView) -> Path:
    return Path(project.directory).expanduser()


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def progress_line(progress: Progress) -> str:
    if progress.step == "tool":
        return preview(f"{progress.tool}: {progress.text}" if progress.tool else progress.text, 200)
    if progress.step == "init":
        return "session started"
    return preview(progress.text, 200)
