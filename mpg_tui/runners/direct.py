"""Run claude as a direct child process of the gateway.

Each run gets its own process group (``start_new_session``), and the group does not
outlive the run: on a normal exit, a timeout, a cancel or :meth:`DirectRunner.close`,
whatever claude left behind in it (a background ``npm run dev`` from its Bash tool, say)
is sent SIGTERM and then SIGKILL. Output goes to the shared
:class:`~mpg_tui.runners.parse.OutputParser` in whatever pieces the pipe delivers, so one
huge line (a long reply, a flood of junk) never meets a line-length limit.

A gateway that is SIGKILLed cannot end its runs, so each live run is also written down in
the orphan-run registry (:mod:`mpg_tui.runners.run_registry`) and carries a random mark
in its environment; at the next start-up :meth:`DirectRunner.sweep_orphans` ends those
of the previous gateway's runs it can prove are ours.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.deadline import RunDeadline
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.runner import INTERRUPTED_ERROR, Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.runners.approval_tool import ApprovalToolLaunch
from mpg_tui.runners.command import build_argv, child_env, run_env
from mpg_tui.runners.parse import OutputParser, missing_cli_result
from mpg_tui.runners.process import end_group, end_group_now
from mpg_tui.runners.run_registry import RUN_ID_ENV, RunRegistry, new_run_id

log = logging.getLogger(__name__)

_STDERR_KEEP = 16 * 1024
StopReason = Literal["timeout", "cancel", "interrupt"]

REGISTRY_PREFIX = "direct-run-"
"""Registry files are ``<registry_dir>/direct-run-<run id>.json``."""


class _RunProtocol(asyncio.SubprocessProtocol):
    """Feeds claude's output to the parser as it arrives and notices the exit at once.

    ``Process.wait()`` of asyncio (3.11) also waits for every pipe to close, which a
    background child holding stdout can delay for ever; ``process_exited`` does not.
    Parsing inside ``pipe_data_received`` needs no reader tasks and no line limit.
    """

    def __init__(self, parser: OutputParser, on_progress: ProgressCallback, key: str) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipes_closed: asyncio.Future[None] = loop.create_future()
        self.stderr = bytearray()
        self._parser = parser
        self._on_progress = on_progress
        self._key = key
        self._stdout_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._open = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if fd == 1:
            self._emit(self._parser.feed(self._stdout_decoder.decode(raw)))
        elif fd == 2:
            self.stderr += raw
            if len(self.stderr) > _STDERR_KEEP:
                del self.stderr[: len(self.stderr) - _STDERR_KEEP]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd not in self._open:
            return  # stdin: claude stopped reading, its exit status tells the story
        self._open.discard(fd)
        if fd == 1:
            self._emit(self._parser.feed(self._stdout_decoder.decode(b"", final=True)))
        if not self._open and not self.pipes_closed.done():
            self.pipes_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def _emit(self, progress: list[Progress]) -> None:
        for item in progress:
            try:
                self._on_progress(item)
            except Exception:
                log.exception("run %s: progress callback failed on %s", self._key, item.step)


@dataclass(eq=False)
class _LiveRun:
    key: str
    transport: asyncio.SubprocessTransport
    protocol: _RunProtocol
    stop_reason: StopReason | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    ending: asyncio.Future[None] | None = None
    registered: Path | None = None
    """The run's registry file, while it exists."""

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()


class DirectRunner(Runner):
    """The :class:`~mpg_tui.core.runner.Runner` that spawns ``claude --print`` itself."""

    kind: RunnerKind = "direct"
    runs_outlive_gateway = False

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        stream: bool = True,
        kill_grace_s: float = 2.0,
        registry_dir: Path | None = None,
        approval_tool: ApprovalToolLaunch | None = None,
    ) -> None:
        """``clock`` times the run and its timeout; ``kill_grace_s`` is how long a stopped
        claude gets between SIGTERM and SIGKILL (real time: it is about a real process).
        ``stream=False`` asks for ``--output-format json`` and so gives no progress.
        ``registry_dir`` (private, one per gateway instance) is where live runs are written
        down for :meth:`sweep_orphans`; without it runs are not registered.
        ``approval_tool``: how a run whose approvals are relayed gets the MCP permission tool
        (this runner does not hold a conversation with claude, so it cannot answer itself)."""
        self._clock = clock or SystemClock()
        self._stream = stream
        self._kill_grace_s = kill_grace_s
        self._registry = RunRegistry(registry_dir, REGISTRY_PREFIX, self._clock) if registry_dir is not None else None
        self._live: set[_LiveRun] = set()
        self._approval_tool = approval_tool

    @property
    def running(self) -> list[str]:
        """Keys of the runs in progress."""
        return sorted(run.key for run in self._live)

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        argv = build_argv(request, stream=self._stream, approval_tool=self._approval_tool)
        if not request.cwd.is_dir():
            error = f"The project directory {request.cwd} does not exist (or is not a directory)."
            return RunResult(ok=False, error=error, error_kind="crash")
        started = self._clock.monotonic()
        parser = OutputParser(cwd=request.cwd)
        loop = asyncio.get_running_loop()
        run_id = new_run_id()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _RunProtocol(parser, on_progress, request.key),
                *argv,
                cwd=request.cwd,
                # Applied last, so that no configured environment can take the mark away.
                env=child_env({**run_env(request, self._approval_tool), RUN_ID_ENV: run_id}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError):
            return missing_cli_result(argv[0])
        except OSError as exc:
            return RunResult(ok=False, error=f"Could not start `{argv[0]}`: {exc.strerror or exc}.", error_kind="crash")
        live = _LiveRun(request.key, transport, protocol)
        # Written before anything else can run on the loop: only a SIGKILL landing in the
        # moment between the spawn and this write leaves a run the next sweep cannot see.
        if self._registry is not None:
            live.registered = self._registry.register(request.key, transport.get_pid(), run_id)
        self._live.add(live)
        waits = request.permissions.waits if request.permissions is not None else None
        timer = RunDeadline(self._clock, request.timeout_s, lambda: live.stop("timeout"), waits)
        log.debug("run %s started: pid %s in %s", request.key, transport.get_pid(), request.cwd)
        try:
            await self._supervise(live, request.prompt)
        finally:
            timer.cancel()
            self._live.discard(live)
            # Also reached when our caller is cancelled: nothing of the run may survive, even
            # if it is cancelled again while the group is being ended (hence the shield).
            try:
                await asyncio.shield(self._end_group(live))
            finally:
                transport.close()
                live.finished.set()
        result = parser.finish(
            transport.get_returncode(),
            protocol.stderr.decode("utf-8", errors="replace"),
            timed_out=live.stop_reason == "timeout",
            cancelled=live.stop_reason in ("cancel", "interrupt"),
            timeout_s=request.timeout_s,
        )
        if live.stop_reason == "interrupt":
            result = dataclasses.replace(result, error=INTERRUPTED_ERROR, error_kind="interrupted")
        if not result.duration_ms:
            elapsed_ms = int((self._clock.monotonic() - started) * 1000)
            result = dataclasses.replace(result, duration_ms=max(0, elapsed_ms))
        log.debug("run %s ended: ok=%s kind=%s", request.key, result.ok, result.error_kind)
        return result

    async def cancel(self, key: str) -> bool:
        """Stop the run for ``key``; returns once its process group is gone."""
        matches = [run for run in self._live if run.key == key]
        for run in matches:
            run.stop("cancel")
        for run in matches:
            await run.finished.wait()
        return bool(matches)

    async def interrupt(self, key: str) -> bool:
        """A one-turn claude has no stdin left to ask: end its process group (the turn ends as
        ``interrupted``; the session keeps its claude session ID)."""
        matches = [run for run in self._live if run.key == key]
        for run in matches:
            run.stop("interrupt")
        for run in matches:
            await run.finished.wait()
        return bool(matches)

    async def close(self) -> None:
        """Stop every run in progress (they end as ``cancelled``)."""
        runs = list(self._live)
        for run in runs:
            run.stop("cancel")
        for run in runs:
            await run.finished.wait()

    def tmux_session(self, key: str) -> None:
        return None

    def attach_command(self, key: str) -> None:
        return None

    async def acknowledge(self, key: str) -> None:
        """Nothing to drop: a direct run's result lives only in memory."""

    async def release(self, key: str) -> None:
        """Nothing to drop: no process outlives its turn."""

    async def _supervise(self, live: _LiveRun, prompt: str) -> None:
        stdin = live.transport.get_pipe_transport(0)
        if isinstance(stdin, asyncio.WriteTransport):
            stdin.write(prompt.encode("utf-8"))
            stdin.close()  # flushes what is buffered, then closes: claude sees the end of its input
        stopped = asyncio.ensure_future(live.stopped.wait())
        either: set[asyncio.Future[Any]] = {live.protocol.exited, stopped}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        await asyncio.shield(self._end_group(live))
        if live.protocol.pipes_closed.done():
            return
        # Every holder of the pipes is gone now, so they close and the output is complete;
        # the bound is for a grandchild that left the group (setsid) and still holds one.
        try:
            await asyncio.wait_for(asyncio.shield(live.protocol.pipes_closed), self._kill_grace_s)
        except TimeoutError:
            log.warning("run %s: output pipes still open after claude ended; not waiting", live.key)

    def _end_group(self, live: _LiveRun) -> asyncio.Future[None]:
        """SIGTERM the run's process group, SIGKILL it after the grace period; unregister it.

        When claude has exited already (the usual end), what is left of its group ends at
        once: no task, and none of its passes of the loop between claude's exit and the
        reply. Otherwise one task per run, however often it is asked for: a caller cancelled
        while waiting for it must not cut the ending short (the SIGKILL, the registry file).
        """
        if live.ending is None:
            if live.protocol.exited.done():
                end_group_now(live.transport.get_pid())
                self._unregister(live)
                live.ending = asyncio.get_running_loop().create_future()
                live.ending.set_result(None)
            else:
                live.ending = asyncio.ensure_future(self._signal_group_until_ended(live))
        return live.ending

    async def _signal_group_until_ended(self, live: _LiveRun) -> None:
        exited = live.protocol.exited

        async def wait_for_claude() -> None:
            if not exited.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(exited), self._kill_grace_s)

        # The child leads the group, so the group id is its pid.
        await end_group(live.transport.get_pid(), wait_for_claude)
        await exited
        self._unregister(live)

    def _unregister(self, live: _LiveRun) -> None:
        if live.registered is not None and self._registry is not None:
            self._registry.unregister(live.registered)
            live.registered = None

    async def sweep_orphans(self) -> list[str]:
        """End the runs a previous gateway left behind in the registry; returns their keys.

        Meant for start-up, before any message is handled. Each leftover file is removed;
        its process group is signalled (SIGTERM, SIGKILL after the kill grace) only when
        it is verifiably the recorded run's.
        """
        if self._registry is None:
            return []
        mine = {run.registered for run in self._live if run.registered is not None}
        return await self._registry.sweep(mine, self._kill_grace_s)
