"""Warm claude processes: one live ``claude --input-format stream-json`` per session, kept between turns.

A cold turn costs a whole claude start (about 0.6 s with the real CLI before the model is
even asked, and every MCP server of the user's set-up starting again). :class:`LiveRunner`
keeps each session's claude running after its turn and writes the session's next message
to the same process's stdin, so a follow-up costs a pipe write (see ``docs/live-sessions.md``).

* One process per session key (a thread, or a thread and an agent: each has its own system
  prompt). A process is reused only for the same command line, directory, environment
  and claude session ID; anything else (``!restart``, a fresh retry, an edited config)
  closes it and starts another, resuming the session with ``--resume``.
* Each process leads its own process group, registered in the orphan-run registry like a
  direct run, so the next gateway ends it if this one is SIGKILLed.
* Idle processes close after ``idle_s`` (their stdin is closed; claude exits), and at most
  ``max_processes`` are kept: the least recently used idle one closes first.
* A process that exits between turns is noticed and forgotten; one that exits during a
  turn fails that turn as a crash (the core retries or tells the thread), and a reused
  process that died before saying anything about the new message is replaced at once,
  resuming the session, without failing the turn.
* A turn's timeout first interrupts it (``control_request`` ``interrupt``), then, if claude
  does not end the turn within the grace period, ends the process group. The timeout stops
  counting while a permission request waits for a person (:class:`RunDeadline`). ``!stop``
  (:meth:`LiveRunner.interrupt`) interrupts the same way and the process stays warm.
* Requests without ``warm`` (``"warm": false``) go to the one-turn-per-process
  :class:`~mpg_tui.runners.direct.DirectRunner` this runner wraps.

Requests from claude to the host (``can_use_tool``) reach the handler that
``control_handler`` returns for the session, by default the turn's asker
(:func:`~mpg_tui.runners.approval_stdio.permission_handler`). A process's pipes and state
are :mod:`mpg_tui.runners.live_process`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.deadline import RunDeadline
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.permissions import AskPermission
from mpg_tui.core.runner import INTERRUPTED_ERROR, Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.runners.approval_stdio import permission_handler
from mpg_tui.runners.command import build_argv, child_env
from mpg_tui.runners.direct import DirectRunner
from mpg_tui.runners.live_process import LineProtocol, StopReason, WarmProcess, WarmTurn, fingerprint
from mpg_tui.runners.parse import OutputParser, missing_cli_result
from mpg_tui.runners.process import end_group
from mpg_tui.runners.run_registry import RUN_ID_ENV, RunRegistry, new_run_id
from mpg_tui.runners.stream_protocol import CONTROL_TYPES, ControlChannel, ControlError, RequestHandler, user_message

log = logging.getLogger(__name__)

BUDGET_FLAG = "--max-budget-usd"

REGISTRY_PREFIX = "live-run-"
"""Registry files are ``<registry_dir>/live-run-<run id>.json`` (the direct runner's are ``direct-run-``)."""
DEFAULT_IDLE_S = 600.0


class LiveRunner(Runner):
    """The direct runner with warm processes; see the module docstring."""

    kind: RunnerKind = "direct"
    runs_outlive_gateway = False

    def __init__(
        self,
        cold: DirectRunner | None = None,
        clock: Clock | None = None,
        *,
        idle_s: float = DEFAULT_IDLE_S,
        max_processes: int = 4,
        kill_grace_s: float = 2.0,
        interrupt_grace_s: float = 5.0,
        registry_dir: Path | None = None,
        control_handler: Callable[[str], RequestHandler | None] | None = None,
    ) -> None:
        """``cold`` runs the requests that are not ``warm`` (by default a DirectRunner on the
        same clock and registry). ``interrupt_grace_s`` is how long an interrupted turn may
        take to end before its process group is ended; ``control_handler(key)`` gives the
        handler of claude's requests for a session's process."""
        self._clock = clock or SystemClock()
        self._cold = cold or DirectRunner(self._clock, kill_grace_s=kill_grace_s, registry_dir=registry_dir)
        self._idle_s = idle_s
        self._max = max(1, max_processes)
        self._kill_grace_s = kill_grace_s
        self._interrupt_grace_s = interrupt_grace_s
        self._registry = RunRegistry(registry_dir, REGISTRY_PREFIX, self._clock) if registry_dir is not None else None
        self._asks: dict[str, AskPermission | None] = {}
        self._control_handler = control_handler or (lambda key: permission_handler(lambda: self._asks.get(key)))
        """Per session, how its current turn asks a person (``can_use_tool``), if it may."""
        self._procs: dict[str, WarmProcess] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- settings and state -------------------------------------------------------------

    def reconfigure(self, *, idle_s: float, max_processes: int) -> None:
        """New limits (a config reload): idle processes close, busy ones after their turn."""
        self._idle_s = idle_s
        self._max = max(1, max_processes)
        for proc in list(self._procs.values()):
            self._retire(proc)

    @property
    def warm(self) -> dict[str, int]:
        """Session key → pid of every warm process."""
        return {key: proc.pid for key, proc in self._procs.items()}

    @property
    def running(self) -> list[str]:
        """Keys of the turns in progress, warm or cold."""
        return sorted({*self._cold.running, *(key for key, proc in self._procs.items() if proc.turn is not None)})

    # -- the Runner port ----------------------------------------------------------------

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        if not request.warm or BUDGET_FLAG in request.args:
            # claude's --max-budget-usd counts a process's whole life, not a turn: a warm
            # process would refuse every turn once its earlier turns added up to the cap.
            # A turn with a dollar cap gets a process of its own, and a warm one it had
            # is closed (its next uncapped turn resumes the session in a new one).
            if request.warm and request.key in self._procs:
                await self._end(self._procs[request.key], graceful=True)
            return await self._cold.run(request, on_progress)
        if not request.cwd.is_dir():
            error = f"The project directory {request.cwd} does not exist (or is not a directory)."
            return RunResult(ok=False, error=error, error_kind="crash")
        started = self._clock.monotonic()
        self._asks[request.key] = request.ask_permission
        wanted = fingerprint(request)
        for attempt in range(2):
            proc = self._procs.get(request.key)
            reused = (
                proc is not None
                and proc.usable
                and proc.fingerprint == wanted
                and proc.session_id == request.session_id
            )
            if proc is not None and not reused:
                why = "it exited" if proc.protocol.exited.done() else "its session or settings changed"
                log.info("closing the warm claude of %s: %s", request.key, why)
                await self._end(proc, graceful=True)
            if not reused or proc is None:
                spawned = await self._spawn(request, wanted)
                if isinstance(spawned, RunResult):
                    return spawned
                proc = spawned
            result, silent_death = await self._turn(proc, request, on_progress)
            if reused and silent_death and attempt == 0:
                log.warning("the warm claude of %s had died; starting it again with --resume", request.key)
                continue
            break
        if not result.duration_ms:
            elapsed_ms = int((self._clock.monotonic() - started) * 1000)
            result = dataclasses.replace(result, duration_ms=max(0, elapsed_ms))
        return result

    async def interrupt(self, key: str) -> bool:
        proc = self._procs.get(key)
        turn = proc.turn if proc is not None else None
        if proc is None or turn is None:
            return await self._cold.interrupt(key)
        await self._stop_turn(proc, turn, "interrupt")
        await turn.finished.wait()
        return True

    async def cancel(self, key: str) -> bool:
        proc = self._procs.get(key)
        turn = proc.turn if proc is not None else None
        if proc is None or turn is None:
            return await self._cold.cancel(key)
        await self._stop_turn(proc, turn, "cancel")
        await turn.finished.wait()
        return True

    async def close(self) -> None:
        """End every process, warm or cold (turns in progress end as ``cancelled``)."""
        procs = list(self._procs.values())
        for proc in procs:
            if proc.turn is not None and proc.turn.stop_reason is None:
                proc.turn.stop_reason = "cancel"
        await asyncio.gather(self._cold.close(), *(self._end(proc, graceful=proc.turn is None) for proc in procs))
        for proc in procs:
            if proc.turn is not None:
                await proc.turn.finished.wait()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def tmux_session(self, key: str) -> None:
        return None

    def attach_command(self, key: str) -> None:
        return None

    async def acknowledge(self, key: str) -> None:
        await self._cold.acknowledge(key)

    async def release(self, key: str) -> None:
        """The session went idle, was killed or restarted: its warm process closes (after the
        turn in progress, if there is one)."""
        await self._cold.release(key)
        proc = self._procs.get(key)
        if proc is not None:
            if proc.turn is None:
                await self._end(proc, graceful=True)
            else:
                proc.retire = True

    async def sweep_orphans(self) -> list[str]:
        """End the processes, warm or cold, a previous gateway left behind; returns their keys."""
        ended = await self._cold.sweep_orphans()
        if self._registry is not None:
            mine = {proc.registered for proc in self._procs.values() if proc.registered is not None}
            ended += await self._registry.sweep(mine, self._kill_grace_s)
        return ended

    # -- processes ----------------------------------------------------------------------

    async def _spawn(self, request: RunRequest, wanted: tuple[object, ...]) -> WarmProcess | RunResult:
        argv = build_argv(request, live=True)
        run_id = new_run_id()
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                LineProtocol,
                *argv,
                cwd=request.cwd,
                env=child_env({**(request.env or {}), RUN_ID_ENV: run_id}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError):
            return missing_cli_result(argv[0])
        except OSError as exc:
            return RunResult(ok=False, error=f"Could not start `{argv[0]}`: {exc.strerror or exc}.", error_kind="crash")
        registered = self._registry.register(request.key, transport.get_pid(), run_id) if self._registry else None
        stdin = transport.get_pipe_transport(0)

        def write(data: bytes) -> None:
            if not isinstance(stdin, asyncio.WriteTransport) or stdin.is_closing():
                raise BrokenPipeError("claude's stdin is closed")
            stdin.write(data)

        handler = self._control_handler(request.key) if self._control_handler is not None else None
        proc = WarmProcess(
            key=request.key,
            fingerprint=wanted,
            transport=transport,
            protocol=protocol,
            control=ControlChannel(write, handler=handler),
            session_id=request.session_id,
            last_used=self._clock.monotonic(),
            registered=registered,
        )
        protocol.on_line = lambda line: self._on_line(proc, line)
        protocol.on_exit = lambda: self._on_exit(proc)
        self._procs[request.key] = proc
        log.debug("warm claude for %s started: pid %s in %s", request.key, proc.pid, request.cwd)
        self._trim()
        return proc

    async def _turn(
        self, proc: WarmProcess, request: RunRequest, on_progress: ProgressCallback
    ) -> tuple[RunResult, bool]:
        """One turn on ``proc``; its result, and whether the process died without a word about it."""
        loop = asyncio.get_running_loop()
        turn = WarmTurn(OutputParser(cwd=request.cwd), on_progress, loop.create_future())
        proc.turn = turn
        stderr_before = proc.protocol.stderr_bytes
        self._cancel_idle(proc)
        proc.last_used = self._clock.monotonic()
        # Time spent waiting for a person (a ``can_use_tool`` the relay holds) does not count.
        waits = request.permissions.waits if request.permissions is not None else None
        timer = RunDeadline(
            self._clock, request.timeout_s, lambda: self._stop_in_background(proc, turn, "timeout"), waits
        )
        try:
            with contextlib.suppress(OSError):  # a dead process: its exit says the rest
                self._write(proc, request.prompt)
            await asyncio.wait({turn.done, proc.protocol.exited}, return_when=asyncio.FIRST_COMPLETED)
            exited = not turn.done.done()
            if exited:
                await asyncio.shield(self._end(proc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.protocol.pipes_closed), self._kill_grace_s)
        except asyncio.CancelledError:
            turn.stop_reason = turn.stop_reason or "cancel"
            await asyncio.shield(self._end(proc))
            raise
        finally:
            timer.cancel()
            proc.turn = None
            turn.finished.set()
        if exited:
            stderr = proc.protocol.stderr.decode("utf-8", errors="replace")
            result = turn.parser.finish(proc.transport.get_returncode(), stderr)
            proc.transport.close()
        else:
            result = turn.parser.finish(None, "")
        result = self._as_stopped(result, turn, request.timeout_s)
        self._check_session(proc, result)
        # Nothing on stdout or stderr: it had died before it could read the message (killed
        # between turns, just before we noticed); a crash says something and is not retried.
        silent = not turn.saw_output and proc.protocol.stderr_bytes == stderr_before
        silent_death = exited and silent and turn.stop_reason is None
        if not exited:
            proc.turns += 1
            if proc.retire:
                self._in_background(self._end(proc, graceful=True))
            else:
                self._arm_idle(proc)
                self._trim()
        log.debug("turn of %s on its warm claude ended: ok=%s kind=%s", proc.key, result.ok, result.error_kind)
        return result, silent_death

    def _write(self, proc: WarmProcess, prompt: str) -> None:
        stdin = proc.transport.get_pipe_transport(0)
        if not isinstance(stdin, asyncio.WriteTransport) or stdin.is_closing():
            raise BrokenPipeError("claude's stdin is closed")
        stdin.write(user_message(prompt))

    def _as_stopped(self, result: RunResult, turn: WarmTurn, timeout_s: float) -> RunResult:
        """The result of a turn we stopped, unless it finished well before the stop landed."""
        if result.ok or turn.stop_reason is None:
            return result
        if turn.stop_reason == "interrupt":
            return dataclasses.replace(result, error=INTERRUPTED_ERROR, error_kind="interrupted")
        stopped = OutputParser().finish(
            None,
            "",
            timed_out=turn.stop_reason == "timeout",
            cancelled=turn.stop_reason == "cancel",
            timeout_s=timeout_s,
        )
        return dataclasses.replace(result, error=stopped.error, error_kind=stopped.error_kind)

    def _check_session(self, proc: WarmProcess, result: RunResult) -> None:
        """Every result names the process's session; a process now in another one follows it."""
        if not result.session_id:
            return
        if proc.session_id is not None and result.session_id != proc.session_id:
            log.warning(
                "the warm claude of %s answered in session %s, not %s", proc.key, result.session_id, proc.session_id
            )
        proc.session_id = result.session_id

    def _on_line(self, proc: WarmProcess, line: str) -> None:
        text = line.strip()
        if not text:
            return
        obj: Any = None
        if text.startswith("{"):
            with contextlib.suppress(ValueError):
                obj = json.loads(text)
        if isinstance(obj, dict) and obj.get("type") in CONTROL_TYPES:
            proc.control.handle(obj)
            return
        turn = proc.turn
        if turn is None:
            log.debug("warm claude of %s, between turns: %s", proc.key, text[:200])
            return
        turn.saw_output = True
        progress = turn.parser.feed_object(obj) if isinstance(obj, dict) else turn.parser.feed(text + "\n")
        for item in progress:
            self._emit(turn, item, proc.key)
        if isinstance(obj, dict) and obj.get("type") == "result" and not turn.done.done():
            turn.done.set_result(None)

    @staticmethod
    def _emit(turn: WarmTurn, item: Progress, key: str) -> None:
        try:
            turn.on_progress(item)
        except Exception:
            log.exception("run %s: progress callback failed on %s", key, item.step)

    def _on_exit(self, proc: WarmProcess) -> None:
        proc.control.close("claude exited")
        if proc.turn is None and proc.ending is None:
            code = proc.transport.get_returncode()
            log.info("the warm claude of %s exited between turns (status %s)", proc.key, code)
            self._in_background(self._end(proc))

    # -- stopping -----------------------------------------------------------------------

    def _stop_in_background(self, proc: WarmProcess, turn: WarmTurn, reason: StopReason) -> None:
        self._in_background(self._stop_turn(proc, turn, reason))

    async def _stop_turn(self, proc: WarmProcess, turn: WarmTurn, reason: StopReason) -> None:
        """Interrupt the turn (or, for ``cancel``, end the process); end the process group if the
        interrupt does not end the turn within the grace period. One stop per turn."""
        if turn.done.done() or turn.finished.is_set():
            return
        if turn.stopping is None:
            turn.stop_reason = reason
            turn.stopping = asyncio.ensure_future(self._stopping(proc, turn, reason))
        await asyncio.shield(turn.stopping)

    async def _stopping(self, proc: WarmProcess, turn: WarmTurn, reason: StopReason) -> None:
        if reason != "cancel":
            try:
                async with asyncio.timeout(self._interrupt_grace_s):
                    await proc.control.request("interrupt", timeout_s=self._interrupt_grace_s)
                    await asyncio.wait({turn.done, proc.protocol.exited}, return_when=asyncio.FIRST_COMPLETED)
            except (ControlError, TimeoutError) as exc:
                log.warning("the warm claude of %s did not stop its turn (%s); ending it", proc.key, exc or "no answer")
            if turn.done.done():
                return
        await self._end(proc)

    def _end(self, proc: WarmProcess, *, graceful: bool = False) -> asyncio.Future[None]:
        """Close the process (``graceful``: end of stdin first, so claude exits on its own) and
        whatever is left in its group; forget it. One ending per process."""
        if self._procs.get(proc.key) is proc:
            del self._procs[proc.key]
        self._cancel_idle(proc)
        if proc.ending is None:
            proc.ending = asyncio.ensure_future(self._ending(proc, graceful))
        return proc.ending

    async def _ending(self, proc: WarmProcess, graceful: bool) -> None:
        exited = proc.protocol.exited
        if graceful and not exited.done():
            stdin = proc.transport.get_pipe_transport(0)
            if stdin is not None:
                stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), self._kill_grace_s)

        async def wait_for_claude() -> None:
            if not exited.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), self._kill_grace_s)

        await end_group(proc.pid, wait_for_claude)
        await exited
        proc.control.close("claude was closed")
        if proc.registered is not None and self._registry is not None:
            self._registry.unregister(proc.registered)
            proc.registered = None
        if proc.turn is None:
            proc.transport.close()  # a turn in progress closes it once its output is read
        log.debug("warm claude of %s closed after %d turn(s)", proc.key, proc.turns)

    def _retire(self, proc: WarmProcess) -> None:
        if proc.turn is None:
            self._in_background(self._end(proc, graceful=True))
        else:
            proc.retire = True

    def _trim(self) -> None:
        """Close least recently used idle processes beyond the limit."""
        while len(self._procs) > self._max:
            idle = [proc for proc in self._procs.values() if proc.turn is None and proc.turns > 0]
            if not idle:
                return  # every one is busy (or just started): the next turn's end tries again
            oldest = min(idle, key=lambda proc: proc.last_used)
            log.info("closing the warm claude of %s: more than %d warm processes", oldest.key, self._max)
            self._in_background(self._end(oldest, graceful=True))

    # -- idle ---------------------------------------------------------------------------

    def _arm_idle(self, proc: WarmProcess) -> None:
        self._cancel_idle(proc)
        proc.idle_timer = self._clock.call_later(self._idle_s, lambda: self._on_idle(proc))

    def _cancel_idle(self, proc: WarmProcess) -> None:
        if proc.idle_timer is not None:
            proc.idle_timer.cancel()
            proc.idle_timer = None

    def _on_idle(self, proc: WarmProcess) -> None:
        proc.idle_timer = None
        if proc.turn is None and self._procs.get(proc.key) is proc:
            log.info("closing the warm claude of %s: idle for %g s", proc.key, self._idle_s)
            self._in_background(self._end(proc, graceful=True))

    def _in_background(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
