"""An in-memory :class:`~mpg_tui.core.runner.Runner` for tests, scripted call by call.

Each call to :meth:`FakeRunner.run` plays the next :class:`ScriptedRun` queued for its
session key (or, failing that, the next one queued for any key; or a default successful
reply). A run scripted with ``hold=True`` stays "running" until the test calls
:meth:`ScriptedRun.release` (or the run is cancelled), so tests can look at a session
mid-run and then let it finish, without sleeping::

    runner = FakeRunner()
    run = runner.script(RunResult(ok=True, text="hi", session_id="s1"), hold=True)
    task = asyncio.create_task(manager.submit(...))
    await run.started.wait()
    ...                       # the session is running now
    run.release()
    outcome = await task
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mpg_tui.core.events import RunnerKind
from mpg_tui.core.runner import Progress, ProgressCallback, Runner, RunRequest, RunResult, Usage

CANCELLED_ERROR = "Cancelled."
INTERRUPTED_ERROR = "Interrupted."

ResultSpec = RunResult | Callable[[RunRequest], RunResult] | None


@dataclass(eq=False)
class ScriptedRun:
    """What one call to ``run`` does: report ``progress``, maybe wait, then return or raise."""

    result: ResultSpec = None
    """A result, a function of the request, or None for the runner's default reply."""
    progress: Sequence[Progress] = ()
    hold: bool = False
    """Wait for :meth:`release` (or a cancel) before returning."""
    raises: Exception | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the run begins (after its progress was reported)."""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    request: RunRequest | None = None
    """The request it answered, once it ran."""
    cancelled: bool = False
    interrupted: bool = False
    _gate: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self._gate.set()


class FakeRunner(Runner):
    """Records every request; plays scripted runs; cancel() ends a held run as "cancelled"."""

    def __init__(self, kind: RunnerKind = "direct", *, runs_survive_close: bool = False) -> None:
        self.kind: RunnerKind = kind
        # Like tmux, close() leaves runs going; otherwise it cancels them, like direct runs.
        self.runs_survive_close = runs_survive_close
        self.requests: list[RunRequest] = []
        self.cancel_calls: list[str] = []
        self.interrupt_calls: list[str] = []
        self.acknowledged: list[str] = []
        self.released: list[str] = []
        self.closed = False
        self._any: deque[ScriptedRun] = deque()
        self._by_key: dict[str, deque[ScriptedRun]] = {}
        self._running: dict[str, ScriptedRun] = {}
        self._changed: list[asyncio.Future[None]] = []
        self._session_ids = itertools.count(1)

    # -- scripting -----------------------------------------------------------------

    def script(
        self,
        result: ResultSpec = None,
        *,
        key: str | None = None,
        progress: Sequence[Progress] = (),
        hold: bool = False,
        raises: Exception | None = None,
    ) -> ScriptedRun:
        """Queue what a coming run does (the next one for ``key``, or the next one at all)."""
        run = ScriptedRun(result=result, progress=progress, hold=hold, raises=raises)
        if key is None:
            self._any.append(run)
        else:
            self._by_key.setdefault(key, deque()).append(run)
        return run

    def hold(self, key: str | None = None) -> ScriptedRun:
        """Shorthand: the next run (for ``key``) gives the default reply once released."""
        return self.script(key=key, hold=True)

    def default_result(self, request: RunRequest) -> RunResult:
        """A successful echo that keeps a resumed session ID, or starts a new one."""
        session_id = request.session_id or f"session-{next(self._session_ids)}"
        return RunResult(
            ok=True,
            text=f"echo: {request.prompt}",
            session_id=session_id,
            cost_usd=0.01,
            usage=Usage(input_tokens=10, output_tokens=5),
            duration_ms=5,
            num_turns=1,
        )

    # -- observing -----------------------------------------------------------------

    @property
    def running(self) -> list[str]:
        """Keys whose run is in progress."""
        return list(self._running)

    async def wait_running(self, count: int = 1, *, key: str | None = None, timeout: float = 5.0) -> None:
        """Until ``key`` is running, or at least ``count`` runs are. Fails fast instead of hanging."""

        def ready() -> bool:
            return key in self._running if key is not None else len(self._running) >= count

        async with asyncio.timeout(timeout):
            while not ready():
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._changed.append(waiter)
                await waiter

    # -- the Runner port -----------------------------------------------------------

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        self.requests.append(request)
        run = self._next(request.key)
        run.request = request
        if request.key in self._running:
            raise AssertionError(f"two runs at once for session {request.key!r}")
        self._running[request.key] = run
        self._notify()
        try:
            for item in run.progress:
                on_progress(item)
            run.started.set()
            if run.hold:
                await run._gate.wait()
            if run.cancelled:
                return RunResult(ok=False, error=CANCELLED_ERROR, error_kind="cancelled", session_id=request.session_id)
            if run.interrupted:
                return RunResult(
                    ok=False, error=INTERRUPTED_ERROR, error_kind="interrupted", session_id=request.session_id
                )
            if run.raises is not None:
                raise run.raises
            if run.result is None:
                return self.default_result(request)
            return run.result(request) if callable(run.result) else run.result
        finally:
            del self._running[request.key]
            run.finished.set()
            self._notify()

    async def cancel(self, key: str) -> bool:
        self.cancel_calls.append(key)
        run = self._running.get(key)
        if run is None:
            return False
        run.cancelled = True
        run.release()
        return True

    async def interrupt(self, key: str) -> bool:
        """Like a live process asked to stop: the held run ends as ``interrupted``."""
        self.interrupt_calls.append(key)
        run = self._running.get(key)
        if run is None:
            return False
        run.interrupted = True
        run.release()
        await run.finished.wait()
        return True

    async def close(self) -> None:
        self.closed = True
        if self.runs_survive_close:
            return
        for key in list(self._running):
            await self.cancel(key)

    @property
    def runs_outlive_gateway(self) -> bool:
        return self.runs_survive_close

    def tmux_session(self, key: str) -> str | None:
        return f"mpg-{key}" if self.kind == "tmux" else None

    def attach_command(self, key: str) -> list[str] | None:
        return ["tmux", "-L", "fake", "attach", "-t", f"mpg-{key}"] if self.kind == "tmux" else None

    async def acknowledge(self, key: str) -> None:
        self.acknowledged.append(key)

    async def release(self, key: str) -> None:
        self.released.append(key)

    # -- internals -----------------------------------------------------------------

    def _next(self, key: str) -> ScriptedRun:
        queued = self._by_key.get(key)
        if queued:
            return queued.popleft()
        if self._any:
            return self._any.popleft()
        return ScriptedRun()

    def _notify(self) -> None:
        waiters, self._changed = self._changed, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
