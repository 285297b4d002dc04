"""The workers that take each session's queued turns, one at a time, within the run limit.

A session with prompts has one worker task. It waits for a run slot (:class:`RunSlots`,
first come, first served), for its workspace, and for the hand-back while the session is
held; then it runs the next turn through :class:`TurnRunner` and answers its future.
Whatever ends a worker early (kill, shutdown), every prompt it still had gets an answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mpg_tui.core.api import SessionInfo
from mpg_tui.core.holds import HoldBook
from mpg_tui.core.runner import RunResult
from mpg_tui.core.runner_set import RunnerSet
from mpg_tui.core.session_files import prepare_workspace
from mpg_tui.core.session_state import LiveSession, TurnOutcome
from mpg_tui.core.slots import RunSlots
from mpg_tui.core.turn_runner import KILLED_ERROR, SHUTDOWN_ERROR, TurnRunner, cut_short
from mpg_tui.core.workspace import Workspaces

log = logging.getLogger(__name__)


class SessionWorkers:
    """Starts and stops the worker of each session; owns the run slots."""

    def __init__(
        self,
        *,
        limit: int,
        turns: TurnRunner,
        runners: RunnerSet,
        holds: HoldBook,
        worktrees: Workspaces | None,
        info: Callable[[LiveSession], SessionInfo],
        closing: Callable[[], bool],
        on_drained: Callable[[LiveSession], None],
    ) -> None:
        self.slots = RunSlots(limit)
        self._turns = turns
        self._runners = runners
        self._holds = holds
        self._worktrees = worktrees
        self._info = info
        self._closing = closing
        self._on_drained = on_drained
        self._ending: dict[str, asyncio.Task[None]] = {}  # workers of killed sessions, still winding down

    def ensure(self, session: LiveSession) -> None:
        """Start ``session``'s worker unless it has one; it takes its place in the slot line now."""
        if session.worker is None:
            session.slot = self.slots.request()
            session.worker = asyncio.get_running_loop().create_task(self._drain(session), name=f"session {session.key}")

    def winding_down(self, key: str, worker: asyncio.Task[None]) -> None:
        """``key`` was killed while ``worker`` still runs: a new worker of ``key`` waits for it."""
        self._ending[key] = worker
        worker.add_done_callback(lambda task: self._ended(key, task))

    def _ended(self, key: str, worker: asyncio.Task[None]) -> None:
        if self._ending.get(key) is worker:
            del self._ending[key]

    async def _drain(self, session: LiveSession) -> None:
        try:
            ending = self._ending.get(session.key)
            if ending is not None:
                # A killed run of the same key is still being stopped: never two runs of one key.
                await asyncio.wait({ending})
            while session.queue and not (session.killed or self._closing()):
                if self._holds.held(session.key):
                    await self._wait_for_hand_back(session)
                    continue
                if session.slot is None:
                    session.slot = self.slots.request()
                await prepare_workspace(session, self._worktrees)
                await session.slot
                if not session.queue or session.killed or self._closing():
                    break  # answered by kill/close while we waited
                if self._holds.held(session.key):
                    continue  # lent to a terminal while we waited for a slot
                turn = session.queue.popleft()
                session.current = turn
                result: RunResult | None = None
                notices: list[str] = []
                try:
                    result, notices = await self._turns.run(session, turn, self._runners.for_project(session.project))
                except Exception as exc:
                    log.exception("running a turn of %s failed", session.key)
                    result = RunResult(ok=False, error=f"Internal error: {exc}", error_kind="crash")
                finally:
                    session.current = None
                    self.slots.release()
                    session.slot = None
                    if result is None:  # cancelled mid-run (shutdown): the caller still gets an answer
                        result = cut_short(session, self._runners.for_project(session.project))
                    if not turn.future.done():
                        turn.future.set_result(TurnOutcome(result=result, notices=notices, session=self._info(session)))
        except asyncio.CancelledError:
            # Killed or shut down while waiting: whoever is still waiting gets an answer.
            self.abandon(session, KILLED_ERROR if session.killed else SHUTDOWN_ERROR)
            raise
        finally:
            if session.slot is not None:
                self.slots.withdraw(session.slot)
                session.slot = None
            session.worker = None
            self._on_drained(session)

    async def _wait_for_hand_back(self, session: LiveSession) -> None:
        """A held session's prompts wait without taking a run slot from other sessions."""
        if session.slot is not None:
            self.slots.withdraw(session.slot)
            session.slot = None
        log.info("session %s is held; %d prompt(s) wait for its hand-back", session.key, len(session.queue))
        await self._holds.wait_released(session.key)

    def stop_waiting(self, session: LiveSession) -> None:
        """Cancel a worker that is not running claude (waiting for a slot or a worktree)."""
        if session.worker is not None:
            session.worker.cancel()
        # Here, not in the worker: a task cancelled before it first ran never runs its finally.
        if session.slot is not None:
            self.slots.withdraw(session.slot)
            session.slot = None

    def abandon(self, session: LiveSession, error: str, *, queued_only: bool = False) -> None:
        """Answer the session's queued turns (and, unless ``queued_only``, its current one) with ``error``."""
        turns = list(session.queue)
        session.queue.clear()
        if not queued_only and session.current is not None:
            turns.append(session.current)
        for turn in turns:
            if not turn.future.done():
                result = RunResult(ok=False, error=error, error_kind="cancelled")
                turn.future.set_result(TurnOutcome(result=result, notices=[], session=self._info(session)))
