"""Claude sessions, one per thread (or thread and agent): queues, limits, resume and lifecycle.

:class:`SessionManager` owns everything between "run this prompt for session ``key``"
and a finished :class:`~mpg_tui.core.runner.RunResult`:

* the sessions in memory, created or revived from the store on their first prompt;
* one FIFO queue per session key, so one claude run at a time per key, and a global limit
  of ``maxConcurrentSessions`` runs (the workers: :mod:`mpg_tui.core.session_worker`);
* the working directory, a per-session git worktree or the project directory, and the
  files a session leaves behind (:mod:`mpg_tui.core.session_files`);
* usage totals, the ``pendingRun`` marker and persistence through the
  :class:`~mpg_tui.core.store.SessionStore` (a turn itself: :mod:`mpg_tui.core.turn_runner`);
* idle timeout (memory only; the session stays on disk), ``kill``, ``stop`` and ``restart``;
* holds (:mod:`mpg_tui.core.holds`): no run of a held session starts; its prompts wait;
* the events faces render: ``SessionQueued``, ``RunStarted``, ``RunProgress``,
  ``RunFinished``, ``SessionKilled``, ``SessionRestarted``, ``SessionIdled``.

Every submitted prompt gets an answer: kill and shutdown resolve waiting prompts with a
cancelled result instead of leaving their callers hanging.

The module is a little over 500 lines because it is the one session API the gateway and
the lending code call: each command (kill, restart, close, the lending calls) changes the
same registry, workers, store and runners together, and splitting them further would put
one session's lifecycle in several modules that all share that state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from mpg_tui.config import Agent, GatewayConfig, ProjectView
from mpg_tui.core.api import KilledSession, SessionInfo
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.budget import Allowance
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.events import (
    Event,
    RunnerKind,
    SessionIdled,
    SessionKilled,
    SessionQueued,
    SessionRestarted,
)
from mpg_tui.core.holds import HoldBook
from mpg_tui.core.runner import Progress, Runner, RunResult
from mpg_tui.core.runner_set import RunnerSet, release
from mpg_tui.core.session_files import (
    prepare_workspace,
    reconcile_all_worktrees,
    remove_attachments,
    remove_worktree,
    sweep_all_attachments,
)
from mpg_tui.core.session_state import (
    LiveSession,
    RecoveredWait,
    Requester,
    ThreadNames,
    Turn,
    TurnOutcome,
    project_dir_of,
)
from mpg_tui.core.session_worker import SessionWorkers
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.store import SessionStore
from mpg_tui.core.turn_runner import KILLED_ERROR, SHUTDOWN_ERROR, TurnRunner
from mpg_tui.core.workspace import Workspaces

log = logging.getLogger(__name__)


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
        holds: HoldBook | None = None,
        approvals: ApprovalBroker | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._runners = RunnerSet(runners)
        self._bus = bus
        self._clock = clock
        self._worktrees = worktrees
        self._command = command
        self._child_env = child_env
        self._stop_grace_s = stop_grace_s
        self.holds = holds or HoldBook(clock)
        """Sessions lent to a terminal: their runs wait until handed back."""
        self._approvals = approvals
        self._sessions: dict[str, LiveSession] = {}
        self._pending_from_disk: dict[str, StoredSession] = {}
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._thread_names = ThreadNames()
        self._turns = TurnRunner(
            store=store,
            bus=bus,
            clock=clock,
            command=command,
            child_env=child_env,
            spawn=self._spawn_background,
            closing=lambda: self._closing,
            approvals=approvals,
        )
        self._workers = SessionWorkers(
            limit=config.defaults.max_concurrent_sessions,
            turns=self._turns,
            runners=self._runners,
            holds=self.holds,
            worktrees=worktrees,
            info=self._info,
            closing=lambda: self._closing,
            on_drained=self._drained,
        )
        store.on_expired(self._on_expired)

    def reload(self, config: GatewayConfig) -> None:
        """Use a new config: its run limit at once; its project settings from each session's next prompt."""
        self._config = config
        self._workers.slots.resize(config.defaults.max_concurrent_sessions)

    # -- start-up ------------------------------------------------------------------

    async def load(self, *, reconcile_worktrees: bool = True) -> None:
        """Read the store; note runs the last gateway did not finish; remove orphaned worktrees."""
        entries = await asyncio.to_thread(self._store.load)
        self._pending_from_disk = {entry.key: entry for entry in entries if entry.pending_run is not None}
        if self._pending_from_disk:
            log.warning("%d run(s) were in progress when the gateway stopped", len(self._pending_from_disk))
        known = [entry.key for entry in entries]
        project_dirs = {project_dir_of(view) for view in self._config.views()}
        await sweep_all_attachments(project_dirs | {Path(entry.cwd) for entry in entries}, known)
        if reconcile_worktrees and self._worktrees:
            directories = {Path(view.directory) for view in self._config.views() if view.worktrees}
            await reconcile_all_worktrees(self._worktrees, directories, known)

    def _on_expired(self, entries: list[StoredSession]) -> None:
        gone = [entry for entry in entries if entry.key not in self._sessions]
        if not gone:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a save at shutdown: the next start-up sweeps them
        for entry in gone:
            self._spawn_background(remove_attachments(entry.key, Path(entry.cwd)))

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

    def name_thread(self, thread_id: str, name: str) -> None:
        """Remember a thread's name: its sessions keep it, in memory and on disk."""
        self._thread_names.remember(thread_id, name)
        for session in self._sessions.values():
            if session.thread_id == thread_id and session.thread_name != name:
                session.thread_name = name
                self._persist(session)

    def _thread_name(self, thread_id: str) -> str | None:
        """The name of ``thread_id`` as last opened, or as any stored session of it has it."""
        name = self._thread_names.get(thread_id)
        if name is None:
            name = next(
                (e.thread_name for e in self._store.entries() if e.thread_id == thread_id and e.thread_name), None
            )
        return name

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
        allowance: Callable[[], Allowance] | None = None,
        on_held: Callable[[], Awaitable[None]] | None = None,
        requester: Requester | None = None,
    ) -> TurnOutcome:
        """Run ``prompt`` in session ``key`` after the prompts already queued for it.

        ``allowance`` is asked when the turn's time comes; a turn it stops ends with error
        kind ``budget_paused`` without running. While ``key`` is held, the prompt waits for
        the hand-back; ``on_held`` is awaited instead of ``on_queued``, once per hold.
        ``requester`` is who asked for it: they may decide what claude asks during the run.
        """
        if self._closing:
            unborn = LiveSession(key, project, thread_id, agent.name if agent else None, self._clock.now())
            info = unborn.info(self._runner_for(project))
            return TurnOutcome(RunResult(ok=False, error=SHUTDOWN_ERROR, error_kind="cancelled"), [], info)
        session = self._session_for(key, project, thread_id, agent)
        position = self.position(key)
        timeout = timeout_s if timeout_s is not None else project.defaults.run_timeout_ms / 1000
        turn = Turn(
            prompt,
            agent,
            timeout,
            on_progress,
            asyncio.get_running_loop().create_future(),
            on_started=on_started,
            allowance=allowance,
            requester=requester,
        )
        session.queue.append(turn)
        self._cancel_idle(session)
        # The worker takes its place in the slot line now, so the order of submits is the
        # order of runs even while ``on_queued`` is being awaited.
        self._workers.ensure(session)
        hold = self.holds.get(key)
        if hold is not None:
            self._publish(SessionQueued(key=key, project_key=project.key, position=len(session.queue)))
            if on_held is not None and hold.claim_notice():
                try:
                    await on_held()
                except Exception:
                    log.exception("on_held callback failed for %s", key)
        elif position > 0:
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
        await prepare_workspace(session, self._worktrees)
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
        return self._workers.slots.position_for_new()

    def _session_for(self, key: str, project: ProjectView, thread_id: str, agent: Agent | None) -> LiveSession:
        session = self._sessions.get(key)
        if session is not None:
            session.project = project  # the config may have been reloaded
            if agent is not None:
                session.agent = agent.name
            return session
        session = LiveSession(key, project, thread_id, agent.name if agent else None, self._clock.now())
        stored = self._store.get(key)
        if stored is not None:
            session.revive(stored)
            log.info("revived session %s from disk (claude session %s)", key, stored.session_id)
        session.thread_name = session.thread_name or self._thread_name(thread_id)
        self._sessions[key] = session
        return session

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
        turn = Turn("", agent, 0.0, on_progress, future, recovered=wait, started_at=started_at, on_started=on_started)
        session.queue.appendleft(turn)
        self._cancel_idle(session)
        self._workers.ensure(session)
        return await asyncio.shield(future)

    async def acknowledge(self, key: str) -> None:
        """The thread has the result of ``key``'s last run: let runners drop what they kept for it."""
        await self._runners.acknowledge(key)

    def _runner_for(self, project: ProjectView) -> Runner:
        return self._runners.for_project(project)

    # -- reading state -------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """Sessions in memory, most recently active first."""
        live = sorted(self._sessions.values(), key=lambda s: s.last_activity, reverse=True)
        return [self._info(session) for session in live]

    def get(self, key: str) -> SessionInfo | None:
        session = self._sessions.get(key)
        return self._info(session) if session is not None else None

    @property
    def command(self) -> tuple[str, ...]:
        """The claude executable (and fixed leading arguments) runs use."""
        return self._command

    @property
    def child_env(self) -> Mapping[str, str] | None:
        """Variables claude runs with on top of the gateway's environment."""
        return self._child_env

    def known_session_ids(self) -> set[str]:
        """Claude session IDs of every session in memory or on disk."""
        live = {s.session_id for s in self._sessions.values() if s.session_id}
        return live | {e.session_id for e in self._store.entries() if e.session_id}

    def waiting(self, key: str) -> int:
        """Prompts queued for ``key``."""
        session = self._sessions.get(key)
        return len(session.queue) if session is not None else 0

    def known_keys(self) -> list[str]:
        """Keys of every session in memory or on disk."""
        return list(dict.fromkeys([*self._sessions, *(entry.key for entry in self._store.entries())]))

    # -- lending a session to a terminal ---------------------------------------------

    async def release_process(self, key: str) -> None:
        """Close what the runner keeps for ``key`` (a warm claude), so that a terminal's
        ``claude --resume`` is the only process writing the session."""
        session = self._sessions.get(key)
        if session is not None:
            await release(self._runner_for(session.project), key)

    def lendable(self, key: str) -> SessionInfo | None:
        """``key``'s session, brought into memory from disk if needed (so faces show it held)."""
        session = self._sessions.get(key)
        if session is None:
            stored = self._store.get(key)
            if stored is None:
                return None
            project = next((p for p in self._config.views() if p.key == stored.channel_id), None)
            if project is None:
                return None
            agent = project.agent(stored.agent) if stored.agent else None
            session = self._session_for(key, project, stored.thread_id or key.split(":", 1)[0], agent)
        return self._info(session)

    def running(self, key: str) -> bool:
        session = self._sessions.get(key)
        return session is not None and session.current is not None

    async def quiet(self, key: str, *, stop: bool) -> None:
        """Until ``key``'s run in progress (if any) has ended; ``stop`` cancels it first.

        The caller has put a hold on ``key``, so no other run of it starts meanwhile.
        """
        session = self._sessions.get(key)
        while session is not None and session.current is not None:
            turn = session.current
            if stop:
                try:
                    await self._runner_for(session.project).cancel(key)
                except Exception:
                    log.exception("stopping the run of %s failed", key)
            await asyncio.wait({turn.future})

    def set_session_id(self, key: str, session_id: str) -> None:
        """The terminal carried the session on under a new ID: resume that one from now on."""
        session = self._sessions.get(key)
        if session is not None:
            session.session_id = session_id
            self._persist(session)
            return
        stored = self._store.get(key)
        if stored is not None:
            self._store.put(dataclasses.replace(stored, session_id=session_id))

    def arm_idle(self, key: str) -> None:
        """A hold ended: a session with nothing to do may leave memory again after its idle time."""
        session = self._sessions.get(key)
        if session is not None and not session.busy:
            self._arm_idle(session)

    # -- commands ------------------------------------------------------------------

    async def kill(self, key: str) -> KilledSession | None:
        """Stop the run, answer queued prompts, forget the session everywhere, remove its worktree
        and attachments; None when there was no such session."""
        session = self._sessions.pop(key, None)
        stored = self._store.get(key)
        if session is None and stored is None:
            return None
        project_key = session.project.key if session else (stored.channel_id if stored else None) or ""
        if session is not None:
            session.killed = True
            self._cancel_idle(session)
            self._workers.abandon(session, KILLED_ERROR, queued_only=True)
            worker = session.worker
            if session.current is not None:
                try:
                    await self._runner_for(session.project).cancel(key)
                except Exception:
                    log.exception("cancelling the run of %s failed", key)
            else:
                self._workers.stop_waiting(session)
            if worker is not None:
                self._workers.winding_down(key, worker)
                # Let the run end before its directory goes; bounded, a stuck runner must not stall kill.
                await asyncio.wait({worker}, timeout=self._stop_grace_s)
            await release(self._runner_for(session.project), key)
        self._pending_from_disk.pop(key, None)
        self._store.delete(key)
        await self._store.flush()
        kept_branch = await remove_worktree(self._worktrees, key, session, stored)
        cwd = session.cwd if session is not None else None
        await remove_attachments(key, cwd or (Path(stored.cwd) if stored is not None else None))
        if self._approvals is not None:
            self._approvals.forget_session(key)
        self._publish(SessionKilled(key=key, project_key=project_key, kept_branch=kept_branch))
        return KilledSession(key=key, project_key=project_key, kept_branch=kept_branch)

    async def stop(self, key: str) -> bool:
        """Stop the turn in progress for ``key`` (``!stop``); the session, its claude session and
        the prompts queued behind the turn stay. False when nothing was running."""
        session = self._sessions.get(key)
        if session is None or session.current is None:
            return False
        session.stop_requested = True
        try:
            return await self._runner_for(session.project).interrupt(key)
        except Exception:
            log.exception("interrupting the run of %s failed", key)
            return False

    async def restart(self, key: str) -> bool:
        """Forget the claude session ID (the next prompt starts fresh); keep everything else."""
        session = self._sessions.get(key)
        if session is not None:
            # Its warm claude is in the old session: it closes (after the turn in progress).
            await release(self._runner_for(session.project), key)
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
        if self._approvals is not None:
            self._approvals.forget_session(key)
        self._publish(SessionRestarted(key=key, project_key=project_key))
        return True

    async def close(self) -> None:
        """Stop direct runs, answer every waiting prompt, persist."""
        self._closing = True
        for session in self._sessions.values():
            self._cancel_idle(session)
            self._workers.abandon(session, SHUTDOWN_ERROR, queued_only=True)
            if session.current is None:
                self._workers.stop_waiting(session)
        await self._runners.close()
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
        if self._background:  # the last save may have expired sessions whose files go now
            await asyncio.gather(*self._background, return_exceptions=True)

    # -- idle ----------------------------------------------------------------------

    def _arm_idle(self, session: LiveSession) -> None:
        self._cancel_idle(session)
        delay = session.project.idle_timeout_ms / 1000
        session.idle_timer = self._clock.call_later(delay, lambda: self._on_idle(session))

    def _cancel_idle(self, session: LiveSession) -> None:
        if session.idle_timer is not None:
            session.idle_timer.cancel()
            session.idle_timer = None

    def _drained(self, session: LiveSession) -> None:
        """``session``'s worker ended: unless the session went meanwhile, its idle time starts."""
        if not session.killed and not self._closing and self._sessions.get(session.key) is session:
            self._arm_idle(session)

    def _on_idle(self, session: LiveSession) -> None:
        session.idle_timer = None
        if self._sessions.get(session.key) is not session or session.busy or self.holds.held(session.key):
            return  # replaced, killed, working again or held: activity re-arms the timer later
        del self._sessions[session.key]
        log.info("session %s idle; dropped from memory (kept on disk)", session.key)
        self._publish(SessionIdled(key=session.key, project_key=session.project.key))
        self._spawn_background(release(self._runner_for(session.project), session.key))

    def _spawn_background(self, work: Coroutine[Any, Any, object]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- helpers -------------------------------------------------------------------

    def _persist(self, session: LiveSession) -> None:
        self._store.put(session.stored())

    def _info(self, session: LiveSession) -> SessionInfo:
        return session.info(self._runner_for(session.project), self.holds.get(session.key))

    def _publish(self, event: Event) -> None:
        self._bus.publish(dataclasses.replace(event, at=self._clock.now()))
