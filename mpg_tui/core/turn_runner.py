"""One turn of a session, start to finish: mark it, run it (resuming, once more fresh), record it.

:class:`TurnRunner` is what :class:`~mpg_tui.core.sessions.SessionManager` calls once a
turn has its slot and workspace. It writes the ``pendingRun`` marker, publishes
``RunStarted``/``RunProgress``/``RunRecovering``/``RunFinished``, retries once with a fresh
claude session when the stored one cannot be resumed, and folds the result into the
session's totals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from mpg_tui.core.approval_tokens import RunGrant
from mpg_tui.core.approvals import ApprovalBroker
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import Clock
from mpg_tui.core.embeds import RECOVERED_PREFIX, SESSION_CHANGED_NOTICE, SESSION_EXPIRED_NOTICE
from mpg_tui.core.events import Event, RunFinished, RunProgress, RunRecovering, RunStarted
from mpg_tui.core.permissions import PermissionRelay
from mpg_tui.core.runner import INTERRUPTED_ERROR, ErrorKind, Progress, Runner, RunRequest, RunResult
from mpg_tui.core.session_state import LiveSession, RecoveredWait, Turn, preview, progress_line
from mpg_tui.core.sessions_file import PendingRun
from mpg_tui.core.store import SessionStore

log = logging.getLogger(__name__)

EXPIRED_NOTICE = SESSION_EXPIRED_NOTICE
CHANGED_NOTICE = SESSION_CHANGED_NOTICE
RECOVERED_NOTICE = f"🔄 {RECOVERED_PREFIX}"
KILLED_ERROR = "Session was killed."
SHUTDOWN_ERROR = "The gateway is shutting down."
DETACHED_ERROR = "The gateway stopped watching this tmux run; the next gateway delivers its result."
BUDGET_PAUSED_ERROR = "Not started: a spending limit is reached."

# Failures that say "this session cannot be resumed". Auth, limits, API trouble and
# timeouts would fail a fresh session just the same, and retrying would throw away the
# conversation for nothing.
RETRY_FRESH_ON: frozenset[ErrorKind] = frozenset({"session_not_found", "crash", "empty"})


def cut_short(session: LiveSession, runner: Runner) -> RunResult:
    """The result of a turn that ended because the session was killed or the gateway stops."""
    if session.killed:
        return RunResult(ok=False, error=KILLED_ERROR, error_kind="cancelled")
    if runner.runs_outlive_gateway:
        return RunResult(ok=False, error=DETACHED_ERROR, error_kind="detached")
    return RunResult(ok=False, error=SHUTDOWN_ERROR, error_kind="cancelled")


def cap_argument(dollars: float) -> str:
    """``--max-budget-usd``'s value: plain decimal, never rounded below a sliver above zero."""
    return f"{max(dollars, 0.000001):.6f}".rstrip("0").rstrip(".")


class TurnRunner:
    """Runs one turn of a session on its runner; see the module docstring."""

    def __init__(
        self,
        *,
        store: SessionStore,
        bus: EventBus,
        clock: Clock,
        command: tuple[str, ...],
        child_env: Mapping[str, str] | None,
        spawn: Callable[[Coroutine[Any, Any, object]], None],
        closing: Callable[[], bool],
        approvals: ApprovalBroker | None = None,
    ) -> None:
        """``spawn`` runs background work the owner awaits on close; ``closing`` says the
        gateway is shutting down; ``approvals`` relays what claude asks to a person (without
        it, what the tool lists do not allow is refused)."""
        self._store = store
        self._bus = bus
        self._clock = clock
        self._command = command
        self._child_env = child_env
        self._spawn = spawn
        self._closing = closing
        self._approvals = approvals

    async def run(self, session: LiveSession, turn: Turn, runner: Runner) -> tuple[RunResult, list[str]]:
        """The turn's result and the notices for the thread before it."""
        if turn.recovered is not None:
            return await self._run_recovered(session, turn, turn.recovered)
        args = session.project.claude_args(warn=False)
        if turn.agent is not None:
            args += ["--append-system-prompt", turn.agent.system_prompt]
        if turn.allowance is not None:
            allowance = turn.allowance()
            if allowance.stop is not None:
                return RunResult(ok=False, error=BUDGET_PAUSED_ERROR, error_kind="budget_paused"), []
            if allowance.cap_usd is not None:
                # Last, so it wins over one in claudeArgs: claude itself ends the turn at the cap.
                args += ["--max-budget-usd", cap_argument(allowance.cap_usd)]
        generation = session.generation
        await self._mark_started(session, runner, turn)
        runs, notices = await self._run_resuming(runner, session, turn, args, generation)
        result = runs[-1]
        if session.killed and not result.ok:
            result = dataclasses.replace(result, error=KILLED_ERROR, error_kind="cancelled")
        elif session.stop_requested and not result.ok:
            # However the runner ended it (a live interrupt, or the end of a one-turn process).
            result = dataclasses.replace(result, error=INTERRUPTED_ERROR, error_kind="interrupted")
        elif self._closing() and not result.ok:
            result = cut_short(session, runner)
        self._record(session, result, runs, generation)
        return result, notices

    async def _run_recovered(
        self, session: LiveSession, turn: Turn, wait: RecoveredWait
    ) -> tuple[RunResult, list[str]]:
        session.run_started_at = turn.started_at or self._clock.now()
        session.progress.clear()
        generation = session.generation
        self._publish(RunRecovering(key=session.key, project_key=session.project.key, thread_id=session.thread_id))
        turn.notify_started()
        try:
            result = await wait(lambda progress: self._on_progress(session, turn, progress))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("waiting for the recovered run of %s failed", session.key)
            result = RunResult(ok=False, error=f"The recovered run could not be read: {exc}", error_kind="crash")
        self._record(session, result, [result], generation, recovered=True)
        return result, [RECOVERED_NOTICE]

    async def _mark_started(self, session: LiveSession, runner: Runner, turn: Turn) -> None:
        now = self._clock.now()
        session.run_started_at = now
        session.last_activity = now
        session.progress.clear()
        session.stop_requested = False
        session.pending = PendingRun(int(now * 1000), runner.kind, preview(turn.prompt, 200))
        self._store.put(session.stored())
        # Written alongside the spawn rather than before it, and without fsync: it only has to
        # outlive a killed gateway (so the next start tells the thread), and waiting for it
        # would add a disk write to every reply.
        self._spawn(self._store.flush(durable=False))
        self._publish(
            RunStarted(
                key=session.key,
                project_key=session.project.key,
                thread_id=session.thread_id,
                agent=session.agent,
                runner=runner.kind,
                cwd=str(session.cwd),
                session_id=session.session_id,
                prompt_preview=preview(turn.prompt),
            )
        )
        turn.notify_started()

    async def _run_resuming(
        self, runner: Runner, session: LiveSession, turn: Turn, args: list[str], generation: int
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
        if not retry or session.killed or session.stop_requested or self._closing() or restarted:
            return [result], []
        log.info("session %s could not resume %s (%s); retrying fresh", session.key, resumed, result.error_kind)
        fresh, _ = await self._call_runner(runner, session, turn, args, None)
        if fresh.ok or result.error_kind == "session_not_found":
            session.session_id = None  # gone for good; a transient failure keeps it for next time
        return [result, fresh], [EXPIRED_NOTICE] if fresh.ok else []

    def _record(
        self,
        session: LiveSession,
        result: RunResult,
        runs: list[RunResult],
        generation: int,
        *,
        recovered: bool = False,
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
        if not session.killed and not (self._closing() and not result.ok):
            # A run our own shutdown cut short keeps its marker: the next start tells the thread.
            session.pending = None
            self._store.put(session.stored())
        self._publish(
            RunFinished(
                key=session.key,
                project_key=session.project.key,
                thread_id=session.thread_id,
                agent=session.agent,
                ok=result.ok,
                session_id=session.session_id,
                reply_preview=preview(result.text),
                error=result.error,
                cost_usd=cost,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                duration_ms=sum(run.duration_ms for run in runs),
                recovered=recovered,
            )
        )

    async def _call_runner(
        self, runner: Runner, session: LiveSession, turn: Turn, args: list[str], session_id: str | None
    ) -> tuple[RunResult, bool]:
        """The runner's result, and whether it raised (a bug, not claude's failure: no retry)."""
        assert session.cwd is not None  # set by _prepare_workspace
        if session.killed or self._closing():
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
            env=self._env_for(session),
            thread_id=session.thread_id,
            project_key=session.project.key,
            permissions=self._relay_for(session, turn),
            warm=session.project.warm,
        )
        try:
            return await runner.run(request, lambda progress: self._on_progress(session, turn, progress)), False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("the %s runner failed on session %s", runner.kind, session.key)
            return RunResult(ok=False, error=f"Running claude failed: {exc}", error_kind="crash"), True
        finally:
            if self._approvals is not None and request.permissions is not None:
                self._approvals.relay_ended(request.permissions)

    def _relay_for(self, session: LiveSession, turn: Turn) -> PermissionRelay | None:
        if self._approvals is None:
            return None
        requester = turn.requester
        grant = RunGrant(
            key=session.key,
            project_key=session.project.key,
            thread_id=session.thread_id,
            requester_id=requester.id if requester is not None else None,
            requester_name=requester.name if requester is not None else "",
        )
        return self._approvals.relay_for(grant, session.project)

    def _env_for(self, session: LiveSession) -> Mapping[str, str] | None:
        """Extra environment for the run: the project's ``passEnv`` (which the runner would strip
        as secret-looking) from the gateway's environment, then the configured child env."""
        passed = {name: os.environ[name] for name in session.project.pass_env if name in os.environ}
        if not passed:
            return self._child_env
        return {**passed, **(self._child_env or {})}

    def _on_progress(self, session: LiveSession, turn: Turn, progress: Progress) -> None:
        session.progress.append(progress_line(progress))
        session.last_activity = self._clock.now()
        self._publish(RunProgress(key=session.key, step=progress.step, text=progress.text, tool=progress.tool))
        if turn.on_progress is not None:
            try:
                turn.on_progress(progress)
            except Exception:
                log.exception("on_progress callback failed for %s", session.key)

    def _publish(self, event: Event) -> None:
        self._bus.publish(dataclasses.replace(event, at=self._clock.now()))
