"""Claude sessions, one per thread (or thread and agent): queues, limits, resume and lifecycle.

:class:`SessionManager` owns everything between "run this prompt for session ``key``"
and a finished :class:`~mpg_tui.core.runner.RunResult`:

* one FIFO queue per session key, so one claude run at a time per key;
* a global limit of ``maxConcurrentSessions`` runs, granted first come, first served;
* the working directory (a per-session git worktree, or the project directory);
* resuming the stored claude session, with one fresh retry when it cannot be resumed;
* usage totals, the ``pendingRun`` marker and persistence through the
  :class:`~mpg_tui.core.store.SessionStore`;
* idle timeout (memory only; the session stays on disk), ``kill`` and ``restart``;
* the events faces render: ``SessionQueued``, ``RunStarted``, ``RunProgress``,
  ``RunFinished``, ``SessionKilled``, ``SessionRestarted``, ``SessionIdled``.

Every submitted prompt gets an answer: kill and shutdown resolve waiting prompts with a
cancelled result instead of leaving their callers hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpg_tui.config import Agent, GatewayConfig, ProjectView
from mpg_tui.core.api import SessionInfo
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.embeds import RECOVERED_PREFIX, SESSION_CHANGED_NOTICE, SESSION_EXPIRED_NOTICE
from mpg_tui.core.events import (
    Event,
    RunFinished,
    RunnerKind,
    RunProgress,
    RunRecovering,
    RunStarted,
    SessionIdled,
    SessionKilled,
    SessionQueued,
    SessionRestarted,
    SessionState,
)
from mpg_tui.core.runner import ErrorKind, Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.core.sessions_file import PendingRun, StoredSession
from mpg_tui.core.store import SessionStore
from mpg_tui.core.workspace import WorkspaceError, Workspaces

log = logging.getLogger(__name__)

EXPIRED_NOTICE = SESSION_EXPIRED_NOTICE
CHANGED_NOTICE = SESSION_CHANGED_NOTICE
RECOVERED_NOTICE = f"🔄 {RECOVERED_PREFIX}"
KILLED_ERROR = "Session was killed."
SHUTDOWN_ERROR = "The gateway is shutting down."
DETACHED_ERROR = "The gateway stopped watching this tmux run; the next gateway delivers its result."
PROGRESS_TAIL = 20
PREVIEW_CHARS = 120

# Failures that say "this session cannot be resumed". Auth, limits, API trouble and
# timeouts would fail a fresh session just the same, and retrying would throw away the
# conversation for nothing.
RECONCILE_AT_ONCE = 8
"""Projects whose worktrees are checked at the same time at start-up."""

RETRY_FRESH_ON: frozenset[ErrorKind] = frozenset({"session_not_found", "crash", "empty"})


@dataclass(frozen=True)
class TurnOutcome:
    """What one submitted prompt came to."""

    result: RunResult
    notices: list[str]
    """Lines for the thread before the reply ("Previous session expired — starting fresh.")."""
    session: SessionInfo


RecoveredWait = Callable[[ProgressCallback], Awaitable[RunResult]]
"""Waits for a run an earlier gateway started (``RecoveredRun.wait``)."""


@dataclass(eq=False)
class _Turn:
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


class _Session:
    """A live session's state; only the event loop touches it."""

    def __init__(self, key: str, project: ProjectView, thread_id: str, agent: str | None, now: float) -> None:
        self.key = key
        self.project = project
        self.thread_id = thread_id
        self.agent = agent
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
        self.queue: deque[_Turn] = deque()
        self.current: _Turn | None = None
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

    @property
    def busy(self) -> bool:
        return self.worker is not None or bool(self.queue) or self.current is not None


class _Slots:
    """The global run limit: a FIFO of waiters, each handed a slot directly on release."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def request(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.active < self.limit and not self.waiters:
            self.active += 1
            future.set_result(None)
        else:
            self.waiters.append(future)
        return future

    def release(self) -> None:
        if self.active > self.limit:
            self.active -= 1  # the limit was lowered: this slot goes away rather than on
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves on; ``active`` is unchanged
                return
        self.active -= 1

    def withdraw(self, future: asyncio.Future[None]) -> None:
        """Give up a request: hand the slot on if it was granted, else leave the line."""
        if future.done() and not future.cancelled():
            self.release()
            return
        with contextlib.suppress(ValueError):
            self.waiters.remove(future)
        future.cancel()

    def resize(self, limit: int) -> None:
        """A new limit; raising it lets waiters in at once, lowering it lets runs finish."""
        self.limit = limit
        while self.waiters and self.active < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    def position_for_new(self) -> int:
        """0 if a new request would get a slot at once, else its 1-based place in line."""
        if self.active < self.limit and not self.waiters:
            return 0
        return len(self.waiters) + 1


class SessionManager:
    """Runs prompts in claude sessions keyed ``<threadId>`` or ``<threadId>:<agent>``."""

    def __init__(
        self,
        *,
        config: GatewayConfig,
        store: SessionStore,
        runners: Mapping[RunnerKind, Runner],
        bus: EventBus,
        clock: Clock,
        worktrees: Workspaces | None,
        command: tuple[str, ...] = ("claude",),
        child_env: Mapping[str, str] | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        if not runners:
            raise ValueError("SessionManager needs at least one runner")
        self._config = config
        self._store = store
        self._runners = dict(runners)
        self._bus = bus
        self._clock = clock
        self._worktrees = worktrees
        self._command = command
        self._child_env = child_env
        self._stop_grace_s = stop_grace_s
        self._sessions: dict[str, _Session] = {}
        self._slots = _Slots(config.defaults.max_concurrent_sessions)
        self._pending_from_disk: dict[str, StoredSession] = {}
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._ending: dict[str, asyncio.Task[None]] = {}  # workers of killed sessions, still winding down
        self._warned_runner: set[str] = set()

    def reload(self, config: GatewayConfig) -> None:
        """Use a new config: its run limit at once; its project settings from each session's next prompt."""
        self._config = config
        self._slots.resize(config.defaults.max_concurrent_sessions)

    # -- start-up ------------------------------------------------------------------

    async def load(self, *, reconcile_worktrees: bool = True) -> None:
        """Read the store; note runs the last gateway did not finish; remove orphaned worktrees."""
        entries = await asyncio.to_thread(self._store.load)
        self._pending_from_disk = {entry.key: entry for entry in entries if entry.pending_run is not None}
        if self._pending_from_disk:
            log.warning("%d run(s) were in progress when the gateway stopped", len(self._pending_from_disk))
        if not (reconcile_worktrees and self._worktrees):
            return
        known = [entry.key for entry in entries]
        worktrees = self._worktrees
        directories = {Path(view.directory) for view in self._config.views() if view.worktrees}

        at_once = asyncio.Semaphore(RECONCILE_AT_ONCE)

        async def reconcile(directory: Path) -> None:
            async with at_once:
                try:
                    await worktrees.reconcile(directory, known)
                except WorkspaceError as exc:
                    log.warning("could not reconcile worktrees of %s: %s", directory, exc)

        # Side by side (a few at a time): each is a few git processes, and 100 projects one
        # after the other added ~200 ms to every start (bench/scale.py).
        await asyncio.gather(*(reconcile(directory) for directory in sorted(directories)))

    def pending_runs_from_disk(self) -> list[StoredSession]:
        """Sessions whose run was still going when the last gateway stopped (``pending_run`` set)."""
        return list(self._pending_from_disk.values())

    def forget_pending_run(self, key: str) -> None:
        """The thread was told (or the run recovered): clear the marker so it is not reported again."""
        self._pending_from_disk.pop(key, None)
        session = self._sessions.get(key)
        if session is not None and session.current is not None:
            return  # a new run owns the marker now
        stored = self._store.get(key)
        if stored is not None and stored.pending_run is not None:
            self._store.put(dataclasses.replace(stored, pending_run=None))

    # -- the prompt path -----------------------------------------------------------

    async def submit(
        self,
        key: str,
        project: ProjectView,
        thread_id: str,
        prompt: str,
        *,
        agent: Agent | None = None,
        timeout_s: float | None = None,
        on_queued: Callable[[int], Awaitable[None]] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> TurnOutcome:
        """Run ``prompt`` in session ``key`` after the prompts already queued for it."""
        if self._closing:
            info = SessionInfo(
                key=key,
                project_key=project.key,
                thread_id=thread_id,
                agent=agent.name if agent else None,
                cwd=project.directory,
                session_id=None,
                state="idle",
                queue_depth=0,
                last_activity=self._clock.now(),
                runner=self._runner_for(project).kind,
            )
            return TurnOutcome(RunResult(ok=False, error=SHUTDOWN_ERROR, error_kind="cancelled"), [], info)
        session = self._session_for(key, project, thread_id, agent)
        position = self.position(key)
        timeout = timeout_s if timeout_s is not None else project.defaults.run_timeout_ms / 1000
        turn = _Turn(
            prompt, agent, timeout, on_progress, asyncio.get_running_loop().create_future(), on_started=on_started
        )
        session.queue.append(turn)
        self._cancel_idle(session)
        # The worker takes its place in the slot line now, so the order of submits is the
        # order of runs even while ``on_queued`` is being awaited.
        self._ensure_worker(session)
        if position > 0:
            self._publish(SessionQueued(key=key, project_key=project.key, position=position))
            if on_queued is not None:
                try:
                    await on_queued(position)
                except Exception:
                    log.exception("on_queued callback failed for %s", key)
        try:
            return await asyncio.shield(turn.future)
        except asyncio.CancelledError:
            if turn in session.queue:  # not started: it will never run
                session.queue.remove(turn)
                turn.future.cancel()
            raise

    async def workspace(self, key: str, project: ProjectView, thread_id: str, agent: Agent | None = None) -> Path:
        """The directory session ``key`` runs claude in, its worktree created if needed.

        For files that must be in place before the prompt runs (attachments).
        """
        session = self._session_for(key, project, thread_id, agent)
        await self._prepare_workspace(session)
        if not session.busy and self._sessions.get(key) is session:
            self._arm_idle(session)  # nothing may follow; don't keep it in memory forever
        assert session.cwd is not None
        return session.cwd

    def position(self, key: str) -> int:
        """How many prompts are ahead of a new one for ``key`` (0: it would start now)."""
        session = self._sessions.get(key)
        if session is not None:
            ahead = len(session.queue) + (1 if session.current is not None else 0)
            if ahead:
                return ahead
        return self._slots.position_for_new()

    def _session_for(self, key: str, project: ProjectView, thread_id: str, agent: Agent | None) -> _Session:
        session = self._sessions.get(key)
        if session is not None:
            session.project = project  # the config may have been reloaded
            if agent is not None:
                session.agent = agent.name
            return session
        session = _Session(key, project, thread_id, agent.name if agent else None, self._clock.now())
        stored = self._store.get(key)
        if stored is not None:
            # Revive: same claude session, same directory (claude resumes only from there).
            session.session_id = stored.session_id
            session.cwd = Path(stored.cwd)
            session.worktree_path = Path(stored.worktree_path) if stored.worktree_path else None
            session.project_dir = Path(stored.project_dir) if stored.project_dir else None
            session.cost_usd = stored.cost_usd
            session.input_tokens = stored.input_tokens
            session.output_tokens = stored.output_tokens
            session.runs = stored.runs
            session.agent = session.agent or stored.agent
            log.info("revived session %s from disk (claude session %s)", key, stored.session_id)
        self._sessions[key] = session
        return session

    def _ensure_worker(self, session: _Session) -> None:
        if session.worker is None:
            session.slot = self._slots.request()
            session.worker = asyncio.get_running_loop().create_task(self._drain(session), name=f"session {session.key}")

    async def _drain(self, session: _Session) -> None:
        try:
            ending = self._ending.get(session.key)
            if ending is not None:
                # A killed run of the same key is still being stopped: never two runs of one key.
                await asyncio.wait({ending})
            while session.queue and not (session.killed or self._closing):
                if session.slot is None:
                    session.slot = self._slots.request()
                await self._prepare_workspace(session)
                await session.slot
                if not session.queue or session.killed or self._closing:
                    break  # answered by kill/close while we waited
                turn = session.queue.popleft()
                session.current = turn
                result: RunResult | None = None
                notices: list[str] = []
                try:
                    result, notices = await self._run_turn(session, turn)
                except Exception as exc:
                    log.exception("running a turn of %s failed", session.key)
                    result = RunResult(ok=False, error=f"Internal error: {exc}", error_kind="crash")
                finally:
                    session.current = None
                    self._slots.release()
                    session.slot = None
                    if result is None:  # cancelled mid-run (shutdown): the caller still gets an answer
                        result = self._cut_short(session)
                    if not turn.future.done():
                        turn.future.set_result(TurnOutcome(result=result, notices=notices, session=self._info(session)))
        except asyncio.CancelledError:
            # Killed or shut down while waiting: whoever is still waiting gets an answer.
            self._abandon(session, KILLED_ERROR if session.killed else SHUTDOWN_ERROR)
            raise
        finally:
            if session.slot is not None:
                self._slots.withdraw(session.slot)
                session.slot = None
            session.worker = None
            if not session.killed and not self._closing and self._sessions.get(session.key) is session:
                self._arm_idle(session)

    async def _prepare_workspace(self, session: _Session) -> None:
        async with session.workspace_lock:
            if not session.workspace_ready:
                await self._choose_workspace(session)

    async def _choose_workspace(self, session: _Session) -> None:
        project_dir = _project_dir(session.project)
        use_worktree = self._worktrees is not None and session.project.worktrees
        if session.cwd is not None and not await asyncio.to_thread(session.cwd.is_dir):
            if use_worktree and session.worktree_path is not None:
                session.cwd = None  # recreated below at the same path, so the claude session still resumes
            else:
                log.warning("stored directory %s of %s is gone; using %s", session.cwd, session.key, project_dir)
                session.cwd = project_dir
        if session.cwd is None:
            if use_worktree and self._worktrees is not None:
                workspace = await self._worktrees.workspace(project_dir, session.key)
                session.cwd, session.worktree_path = workspace.cwd, workspace.worktree_path
                project_dir = workspace.project_dir
            else:
                session.cwd, session.worktree_path = project_dir, None
        session.project_dir = session.project_dir or project_dir
        session.workspace_ready = True

    async def _run_turn(self, session: _Session, turn: _Turn) -> tuple[RunResult, list[str]]:
        if turn.recovered is not None:
            return await self._run_recovered(session, turn, turn.recovered)
        runner = self._runner_for(session.project)
        args = session.project.claude_args(warn=False)
        if turn.agent is not None:
            args += ["--append-system-prompt", turn.agent.system_prompt]
        generation = session.generation
        await self._mark_started(session, runner, turn)
        runs, notices = await self._run_resuming(runner, session, turn, args, generation)
        result = runs[-1]
        if session.killed and not result.ok:
            result = dataclasses.replace(result, error=KILLED_ERROR, error_kind="cancelled")
        elif self._closing and not result.ok:
            result = self._cut_short(session)
        self._record(session, result, runs, generation)
        return result, notices

    async def _run_recovered(self, session: _Session, turn: _Turn, wait: RecoveredWait) -> tuple[RunResult, list[str]]:
        session.run_started_at = turn.started_at or self._clock.now()
        session.progress.clear()
        generation = session.generation
        self._publish(RunRecovering(key=session.key, project_key=session.project.key, thread_id=session.thread_id))
        _notify_started(turn)
        try:
            result = await wait(lambda progress: self._on_progress(session, turn, progress))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("waiting for the recovered run of %s failed", session.key)
            result = RunResult(ok=False, error=f"The recovered run could not be read: {exc}", error_kind="crash")
        self._record(session, result, [result], generation, recovered=True)
        return result, [RECOVERED_NOTICE]

    async def adopt(
        self,
        key: str,
        project: ProjectView,
        thread_id: str,
        wait: RecoveredWait,
        *,
        agent: Agent | None = None,
        started_at: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> TurnOutcome:
        """Take over a run an earlier gateway started (tmux): shown as recovering, queued first.

        Prompts sent to the same key meanwhile wait behind it, as they would behind any run.
        """
        session = self._session_for(key, project, thread_id, agent)
        future: asyncio.Future[TurnOutcome] = asyncio.get_running_loop().create_future()
        turn = _Turn("", agent, 0.0, on_progress, future, recovered=wait, started_at=started_at, on_started=on_started)
        session.queue.appendleft(turn)
        self._cancel_idle(session)
        self._ensure_worker(session)
        return await asyncio.shield(future)

    async def acknowledge(self, key: str) -> None:
        """The thread has the result of ``key``'s last run: let runners drop what they kept for it."""
        for runner in self._runners.values():
            try:
                await runner.acknowledge(key)
            except Exception:
                log.exception("the %s runner could not acknowledge %s", runner.kind, key)

    async def _mark_started(self, session: _Session, runner: Runner, turn: _Turn) -> None:
        now = self._clock.now()
        session.run_started_at = now
        session.last_activity = now
        session.progress.clear()
        session.pending = PendingRun(int(now * 1000), runner.kind, _preview(turn.prompt, 200))
        self._persist(session)
        # Written alongside the spawn rather than before it, and without fsync: it only has to
        # outlive a killed gateway (so the next start tells the thread), and waiting for it
        # would add a disk write to every reply.
        self._spawn_background(self._store.flush(durable=False))
        self._publish(
            RunStarted(
                key=session.key,
                project_key=session.project.key,
                thread_id=session.thread_id,
                agent=session.agent,
                runner=runner.kind,
                cwd=str(session.cwd),
                session_id=session.session_id,
                prompt_preview=_preview(turn.prompt),
            )
        )
        _notify_started(turn)

    async def _run_resuming(
        self, runner: Runner, session: _Session, turn: _Turn, args: list[str], generation: int
    ) -> tuple[list[RunResult], list[str]]:
        """Run, resuming the stored session; once more, fresh, if it cannot be resumed.

        Returns every attempt's result (the last one counts) and the notices for the thread.
        """
        resumed = session.session_id
        result, raised = await self._call_runner(runner, session, turn, args, resumed)
        restarted = session.generation != generation
        if result.ok:
            changed = resumed and result.session_id and result.session_id != resumed and not restarted
            return [result], [CHANGED_NOTICE] if changed else []
        retry = resumed and not raised and result.error_kind in RETRY_FRESH_ON
        if not retry or session.killed or self._closing or restarted:
            return [result], []
        log.info("session %s could not resume %s (%s); retrying fresh", session.key, resumed, result.error_kind)
        fresh, _ = await self._call_runner(runner, session, turn, args, None)
        if fresh.ok or result.error_kind == "session_not_found":
            session.session_id = None  # gone for good; a transient failure keeps it for next time
        return [result, fresh], [EXPIRED_NOTICE] if fresh.ok else []

    def _record(
        self, session: _Session, result: RunResult, runs: list[RunResult], generation: int, *, recovered: bool = False
    ) -> None:
        """Fold a finished turn into the session, persist it and publish RunFinished."""
        cost = sum(run.cost_usd for run in runs)
        input_tokens = sum(run.usage.input_tokens for run in runs)
        output_tokens = sum(run.usage.output_tokens for run in runs)
        session.run_started_at = None
        session.last_activity = self._clock.now()
        session.runs += 1
        session.cost_usd += cost
        session.input_tokens += input_tokens
        session.output_tokens += output_tokens
        if result.session_id and session.generation == generation:  # a restart mid-run wins
            session.session_id = result.session_id
        if result.ok:
            session.last_reply = result.text
            session.last_error = None
        else:
            session.last_error = result.error
        if not session.killed and not (self._closing and not result.ok):
            # A run our own shutdown cut short keeps its marker: the next start tells the thread.
            session.pending = None
            self._persist(session)
        self._publish(
            RunFinished(
                key=session.key,
                project_key=session.project.key,
                thread_id=session.thread_id,
                agent=session.agent,
                ok=result.ok,
                session_id=session.session_id,
                reply_preview=_preview(result.text),
                error=result.error,
                cost_usd=cost,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                duration_ms=sum(run.duration_ms for run in runs),
                recovered=recovered,
            )
        )

    async def _call_runner(
        self, runner: Runner, session: _Session, turn: _Turn, args: list[str], session_id: str | None
    ) -> tuple[RunResult, bool]:
        """The runner's result, and whether it raised (a bug, not claude's failure: no retry)."""
        assert session.cwd is not None  # set by _prepare_workspace
        if session.killed or self._closing:
            # Killed or shut down while the marker was being saved: never start it.
            error = KILLED_ERROR if session.killed else SHUTDOWN_ERROR
            return RunResult(ok=False, error=error, error_kind="cancelled"), True
        request = RunRequest(
            key=session.key,
            cwd=session.cwd,
            prompt=turn.prompt,
            args=args,
            session_id=session_id,
            timeout_s=turn.timeout_s,
            command=self._command,
            env=self._child_env,
            thread_id=session.thread_id,
            project_key=session.project.key,
        )
        try:
            return await runner.run(request, lambda progress: self._on_progress(session, turn, progress)), False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the %s runner failed on session %s", runner.kind, session.key)
            return RunResult(ok=False, error=f"Running claude failed: {exc}", error_kind="crash"), True

    def _on_progress(self, session: _Session, turn: _Turn, progress: Progress) -> None:
        session.progress.append(_progress_line(progress))
        session.last_activity = self._clock.now()
        self._publish(RunProgress(key=session.key, step=progress.step, text=progress.text, tool=progress.tool))
        if turn.on_progress is not None:
            try:
                turn.on_progress(progress)
            except Exception:
                log.exception("on_progress callback failed for %s", session.key)

    def _runner_for(self, project: ProjectView) -> Runner:
        runner = self._runners.get(project.persistence)
        if runner is not None:
            return runner
        fallback = self._runners.get("direct") or next(iter(self._runners.values()))
        if project.key not in self._warned_runner:
            self._warned_runner.add(project.key)
            log.warning(
                "project %s wants the %s runner, which is not available; using %s",
                project.name,
                project.persistence,
                fallback.kind,
            )
        return fallback

    # -- reading state -------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """Sessions in memory, most recently active first."""
        live = sorted(self._sessions.values(), key=lambda s: s.last_activity, reverse=True)
        return [self._info(session) for session in live]

    def get(self, key: str) -> SessionInfo | None:
        session = self._sessions.get(key)
        return self._info(session) if session is not None else None

    def _cut_short(self, session: _Session) -> RunResult:
        if session.killed:
            return RunResult(ok=False, error=KILLED_ERROR, error_kind="cancelled")
        if self._runner_for(session.project).runs_outlive_gateway:
            return RunResult(ok=False, error=DETACHED_ERROR, error_kind="detached")
        return RunResult(ok=False, error=SHUTDOWN_ERROR, error_kind="cancelled")

    def _info(self, session: _Session) -> SessionInfo:
        runner = self._runner_for(session.project)
        state: SessionState = "queued" if session.queue else "idle"
        if session.current is not None:
            state = "recovering" if session.current.recovered is not None else "running"
        in_run = session.current is not None
        return SessionInfo(
            key=session.key,
            project_key=session.project.key,
            thread_id=session.thread_id,
            agent=session.agent,
            cwd=str(session.cwd or session.project.directory),
            session_id=session.session_id,
            state=state,
            queue_depth=len(session.queue),
            last_activity=session.last_activity,
            runner=runner.kind,
            cost_usd=session.cost_usd,
            input_tokens=session.input_tokens,
            output_tokens=session.output_tokens,
            runs=session.runs,
            worktree_path=str(session.worktree_path) if session.worktree_path else None,
            run_started_at=session.run_started_at,
            last_reply=session.last_reply,
            last_error=session.last_error,
            progress=list(session.progress),
            tmux_session=runner.tmux_session(session.key) if in_run else None,
            attach_command=runner.attach_command(session.key) if in_run else None,
        )

    # -- commands ------------------------------------------------------------------

    async def kill(self, key: str) -> bool:
        """Stop the run, answer queued prompts, forget the session everywhere, remove its worktree."""
        session = self._sessions.pop(key, None)
        stored = self._store.get(key)
        if session is None and stored is None:
            return False
        project_key = session.project.key if session else (stored.channel_id if stored else None) or ""
        if session is not None:
            session.killed = True
            self._cancel_idle(session)
            self._abandon(session, KILLED_ERROR, queued_only=True)
            worker = session.worker
            if session.current is not None:
                try:
                    await self._runner_for(session.project).cancel(key)
                except Exception:
                    log.exception("cancelling the run of %s failed", key)
            else:
                self._stop_waiting(session)
            if worker is not None:
                self._ending[key] = worker
                worker.add_done_callback(lambda task: self._ended(key, task))
                # Let the run end before its directory goes; bounded, a stuck runner must not stall kill.
                await asyncio.wait({worker}, timeout=self._stop_grace_s)
            await self._release(self._runner_for(session.project), key)
        self._pending_from_disk.pop(key, None)
        self._store.delete(key)
        await self._store.flush()
        await self._remove_worktree(key, session, stored)
        self._publish(SessionKilled(key=key, project_key=project_key))
        return True

    def _ended(self, key: str, worker: asyncio.Task[None]) -> None:
        if self._ending.get(key) is worker:
            del self._ending[key]

    async def _remove_worktree(self, key: str, session: _Session | None, stored: StoredSession | None) -> None:
        if self._worktrees is None:
            return
        # A live session on a worktree project may have been killed mid-creation, before
        # its path was known: try anyway.
        may_have_worktree = (
            session is not None and (session.worktree_path is not None or session.project.worktrees)
        ) or (stored is not None and stored.worktree_path is not None)
        if not may_have_worktree:
            return
        if session is not None and session.project_dir is not None:
            project_dir = session.project_dir
        elif stored is not None and stored.project_dir:
            project_dir = Path(stored.project_dir)
        elif session is not None:
            project_dir = _project_dir(session.project)
        else:
            return
        try:
            await self._worktrees.remove(project_dir, key)
        except WorkspaceError as exc:
            log.warning("could not remove the worktree of %s: %s", key, exc)

    async def restart(self, key: str) -> bool:
        """Forget the claude session ID (the next prompt starts fresh); keep everything else."""
        session = self._sessions.get(key)
        if session is not None:
            session.session_id = None
            session.generation += 1
            session.last_activity = self._clock.now()
            self._persist(session)
            if not session.busy:
                self._arm_idle(session)
            project_key = session.project.key
        else:
            stored = self._store.get(key)
            if stored is None:
                return False
            self._store.put(dataclasses.replace(stored, session_id=None))
            project_key = stored.channel_id or ""
        await self._store.flush()
        self._publish(SessionRestarted(key=key, project_key=project_key))
        return True

    async def close(self) -> None:
        """Stop direct runs, answer every waiting prompt, persist."""
        self._closing = True
        for session in self._sessions.values():
            self._cancel_idle(session)
            self._abandon(session, SHUTDOWN_ERROR, queued_only=True)
            if session.current is None:
                self._stop_waiting(session)
        for runner in {id(r): r for r in self._runners.values()}.values():
            try:
                await runner.close()
            except Exception:
                log.exception("closing the %s runner failed", runner.kind)
        workers: set[asyncio.Task[None]] = set()
        for session in self._sessions.values():
            if session.worker is None:
                continue
            if self._runner_for(session.project).runs_outlive_gateway:
                session.worker.cancel()  # its run outlives us by design; the marker stays for recovery
            workers.add(session.worker)
        if workers:
            _, still_running = await asyncio.wait(workers, timeout=self._stop_grace_s)
            for worker in still_running:  # a direct run that would not stop
                worker.cancel()
            if still_running:
                await asyncio.wait(still_running, timeout=self._stop_grace_s)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._store.close()

    # -- idle ----------------------------------------------------------------------

    def _arm_idle(self, session: _Session) -> None:
        self._cancel_idle(session)
        delay = session.project.idle_timeout_ms / 1000
        session.idle_timer = self._clock.call_later(delay, lambda: self._on_idle(session))

    def _cancel_idle(self, session: _Session) -> None:
        if session.idle_timer is not None:
            session.idle_timer.cancel()
            session.idle_timer = None

    def _on_idle(self, session: _Session) -> None:
        session.idle_timer = None
        if self._sessions.get(session.key) is not session or session.busy:
            return  # replaced, killed, or working again: activity re-arms the timer later
        del self._sessions[session.key]
        log.info("session %s idle; dropped from memory (kept on disk)", session.key)
        self._publish(SessionIdled(key=session.key, project_key=session.project.key))
        self._spawn_background(self._release(self._runner_for(session.project), session.key))

    def _spawn_background(self, work: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _release(runner: Runner, key: str) -> None:
        try:
            await runner.release(key)
        except Exception:
            log.exception("releasing idle session %s failed", key)

    # -- helpers -------------------------------------------------------------------

    def _stop_waiting(self, session: _Session) -> None:
        """Cancel a worker that is not running claude (waiting for a slot or a worktree)."""
        if session.worker is not None:
            session.worker.cancel()
        # Here, not in the worker: a task cancelled before it first ran never runs its finally.
        if session.slot is not None:
            self._slots.withdraw(session.slot)
            session.slot = None

    def _abandon(self, session: _Session, error: str, *, queued_only: bool = False) -> None:
        turns = list(session.queue)
        session.queue.clear()
        if not queued_only and session.current is not None:
            turns.append(session.current)
        for turn in turns:
            if not turn.future.done():
                turn.future.set_result(self._failed_outcome(session, error))

    def _failed_outcome(self, session: _Session, error: str, *, kind: ErrorKind = "cancelled") -> TurnOutcome:
        result = RunResult(ok=False, error=error, error_kind=kind)
        return TurnOutcome(result=result, notices=[], session=self._info(session))

    def _persist(self, session: _Session) -> None:
        self._store.put(
            StoredSession(
                key=session.key,
                session_id=session.session_id,
                cwd=str(session.cwd or session.project.directory),
                last_activity_ms=int(session.last_activity * 1000),
                channel_id=session.project.key,
                thread_id=session.thread_id,
                agent=session.agent,
                worktree_path=str(session.worktree_path) if session.worktree_path else None,
                project_dir=str(session.project_dir) if session.project_dir else None,
                cost_usd=session.cost_usd,
                input_tokens=session.input_tokens,
                output_tokens=session.output_tokens,
                runs=session.runs,
                pending_run=session.pending,
            )
        )

    def _publish(self, event: Event) -> None:
        self._bus.publish(dataclasses.replace(event, at=self._clock.now()))


def _notify_started(turn: _Turn) -> None:
    if turn.on_started is not None:
        try:
            turn.on_started()
        except Exception:
            log.exception("on_started callback failed")


def _project_dir(project: ProjectView) -> Path:
    return Path(project.directory).expanduser()


def _preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _progress_line(progress: Progress) -> str:
    if progress.step == "tool":
        return _preview(f"{progress.tool}: {progress.text}" if progress.tool else progress.text, 200)
    if progress.step == "init":
        return "session started"
    return _preview(progress.text, 200)
