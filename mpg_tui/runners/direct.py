"""Run claude as a direct child process of the gateway.

Each run gets its own process group (``start_new_session``), and the group does not
outlive the run: on a normal exit, a timeout, a cancel or :meth:`DirectRunner.close`,
whatever claude left behind in it (a background ``npm run dev`` from its Bash tool, say)
is sent SIGTERM and then SIGKILL. Output goes to the shared
:class:`~mpg_tui.runners.parse.OutputParser` in whatever pieces the pipe delivers, so one
huge line (a long reply, a flood of junk) never meets a line-length limit.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any, Literal

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.events import RunnerKind
from mpg_tui.runners.base import Progress, ProgressCallback, RunRequest, RunResult
from mpg_tui.runners.command import build_argv, child_env
from mpg_tui.runners.parse import OutputParser, missing_cli_result

log = logging.getLogger(__name__)

_STDERR_KEEP = 16 * 1024
StopReason = Literal["timeout", "cancel"]


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
    group_ended: bool = False

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()


class DirectRunner:
    """The :class:`~mpg_tui.runners.base.Runner` that spawns ``claude --print`` itself."""

    kind: RunnerKind = "direct"

    def __init__(self, clock: Clock | None = None, *, stream: bool = True, kill_grace_s: float = 2.0) -> None:
        """``clock`` times the run and its timeout; ``kill_grace_s`` is how long a stopped
        claude gets between SIGTERM and SIGKILL (real time: it is about a real process).
        ``stream=False`` asks for ``--output-format json`` and so gives no progress."""
        self._clock = clock or SystemClock()
        self._stream = stream
        self._kill_grace_s = kill_grace_s
        self._live: set[_LiveRun] = set()

    @property
    def running(self) -> list[str]:
        """Keys of the runs in progress."""
        return sorted(run.key for run in self._live)

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        argv = build_argv(request, stream=self._stream)
        if not request.cwd.is_dir():
            error = f"The project directory {request.cwd} does not exist (or is not a directory)."
            return RunResult(ok=False, error=error, error_kind="crash")
        started = self._clock.monotonic()
        parser = OutputParser(cwd=request.cwd)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _RunProtocol(parser, on_progress, request.key),
                *argv,
                cwd=request.cwd,
                env=child_env(request.env),
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
        self._live.add(live)
        timer = self._clock.call_later(request.timeout_s, lambda: live.stop("timeout"))
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
            cancelled=live.stop_reason == "cancel",
            timeout_s=request.timeout_s,
        )
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

    async def close(self) -> None:
        """Stop every run in progress (they end as ``cancelled``)."""
        runs = list(self._live)
        for run in runs:
            run.stop("cancel")
        for run in runs:
            await run.finished.wait()

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
        await self._end_group(live)
        # Every holder of the pipes is gone now, so they close and the output is complete;
        # the bound is for a grandchild that left the group (setsid) and still holds one.
        try:
            await asyncio.wait_for(asyncio.shield(live.protocol.pipes_closed), self._kill_grace_s)
        except TimeoutError:
            log.warning("run %s: output pipes still open after claude ended; not waiting", live.key)

    async def _end_group(self, live: _LiveRun) -> None:
        """SIGTERM the run's process group, SIGKILL it after the grace period."""
        if live.group_ended:
            return
        live.group_ended = True
        pgid = live.transport.get_pid()
        exited = live.protocol.exited
        # The child leads the group, so the group id is its pid. While any member lives the
        # id cannot be reused; once none does, the signal simply finds no one.
        _signal_group(pgid, signal.SIGTERM)
        if not exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), self._kill_grace_s)
        _signal_group(pgid, signal.SIGKILL)
        await exited


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
