"""Run claude inside detached tmux sessions that survive the gateway (``"persistence": "tmux"``).

One tmux server of our own (:mod:`mpg_tui.runners.tmux_server`) holds one session per
running session key, named by :mod:`mpg_tui.runners.names`. The pane runs
:mod:`mpg_tui.runners.tmux_wrapper` on a private run directory (``run_dir/<name>/``,
0700, files 0600) that holds everything about the run: the request, the prompt, claude's
output, and at the end ``exit.json`` (read through :mod:`mpg_tui.runners.tmux_rundir`).
The only command tmux is given is an argument list of our own paths, executed without a
shell; user text only ever reaches files.

While a run is watched, its output file is tailed through the shared
:class:`~mpg_tui.runners.parse.OutputParser` (a short poll; the file is local), and its
end is noticed through ``tmux wait-for``: the wrapper signals a per-run channel after
writing ``exit.json``, and tmux remembers a signal sent before anyone waited. A wrapper
that dies without signalling is noticed by a slow liveness check. The gateway's timeout
and :meth:`TmuxRunner.cancel` kill the tmux session; the wrapper then ends claude's whole
process group (and the runner ends it too, as a backstop).

:meth:`TmuxRunner.close` and cancelling a ``run()`` only stop watching: the run goes on,
and the next gateway picks it up with :meth:`TmuxRunner.recover`
(:mod:`mpg_tui.runners.tmux_recovery`). A run's directory stays until
:meth:`TmuxRunner.acknowledge` says its result was delivered, so a result that was ready
when the gateway died is delivered by the next one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mpg_tui.core.clock import Clock
from mpg_tui.core.deadline import RunDeadline
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.permissions import HumanWaits
from mpg_tui.core.runner import Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.fsutil import atomic_write
from mpg_tui.runners import tmux_wrapper
from mpg_tui.runners.approval_tool import ApprovalToolLaunch
from mpg_tui.runners.command import build_argv, child_env, run_env
from mpg_tui.runners.names import session_name
from mpg_tui.runners.parse import OutputParser, missing_cli_result
from mpg_tui.runners.process import pid_alive
from mpg_tui.runners.tmux_recovery import RecoveredRun, scan
from mpg_tui.runners.tmux_rundir import (
    RunRecord,
    Tail,
    exit_code,
    pid_field,
    private_dir,
    read_json,
    read_tail,
    remove,
)
from mpg_tui.runners.tmux_server import LIVENESS_INTERVAL_S, StartFailed, TmuxServer
from mpg_tui.runners.tmux_wrapper import ERR_FILE, EXIT_FILE, OUT_FILE, PID_FILE, PROMPT_FILE, REQUEST_FILE

log = logging.getLogger(__name__)

MIN_TMUX_VERSION = (3, 0)
"""Needed for a pane command given as an argument list (run without a shell)."""
WRAPPER_SCRIPT = Path(tmux_wrapper.__file__).resolve()

_STDERR_KEEP = 16 * 1024

StopReason = Literal["timeout", "cancel", "detach"]


class TmuxUnavailable(RuntimeError):
    """tmux persistence is configured, but tmux is missing or too old."""


class RunDetached(Exception):
    """The runner stopped watching a run (:meth:`TmuxRunner.close`); the run goes on in tmux.

    Raised by :meth:`TmuxRunner.run` and ``RecoveredRun.wait`` instead of a result:
    nothing should be delivered, the next gateway recovers the run and delivers it.
    """


def ensure_tmux(tmux_bin: str | None = None) -> str:
    """The path of a usable tmux (3.0 or newer); :class:`TmuxUnavailable` otherwise."""
    found = shutil.which(tmux_bin or "tmux")
    if found is None:
        raise TmuxUnavailable(
            "tmux persistence is configured but tmux was not found on PATH; "
            'install tmux or remove "persistence": "tmux"'
        )
    try:
        version = subprocess.run([found, "-V"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise TmuxUnavailable(f"could not run {found} -V: {exc}") from exc
    numbers = re.search(r"(\d+)\.(\d+)", version)
    # Builds from git say "tmux master" or "tmux next-3.6": newer than any release we need.
    if numbers and (int(numbers[1]), int(numbers[2])) < MIN_TMUX_VERSION:
        raise TmuxUnavailable(
            f"{version} is too old for tmux persistence (3.0 or newer is needed); "
            'upgrade tmux or remove "persistence": "tmux"'
        )
    return found


@dataclass(eq=False)
class _Watch:
    """The gateway's side of one run it is watching."""

    record: RunRecord
    path: Path
    wrapper_pid: int | None = None
    stop_reason: StopReason | None = None
    killed: bool = False
    """The run was ended by us (timeout, cancel) rather than by itself."""
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()


class TmuxRunner(Runner):
    """The :class:`~mpg_tui.core.runner.Runner` whose runs live in tmux and survive restarts."""

    kind: RunnerKind = "tmux"
    runs_outlive_gateway = True

    def __init__(
        self,
        socket_name: str,
        run_dir: Path,
        *,
        clock: Clock,
        grace_s: float = 60.0,
        python: str = sys.executable,
        kill_grace_s: float = 2.0,
        poll_interval_s: float = 0.2,
        tmux_bin: str | None = None,
        approval_tool: ApprovalToolLaunch | None = None,
    ) -> None:
        """``grace_s``: how long past its timeout an unwatched run may go on before its
        wrapper ends it. ``kill_grace_s``: SIGTERM to SIGKILL delay for claude's group.
        ``poll_interval_s``: how often a watched run's output file is read.

        Raises :class:`TmuxUnavailable` when tmux is missing or too old."""
        if not socket_name or "/" in socket_name:
            raise ValueError(f"invalid tmux socket name {socket_name!r}")
        self._server = TmuxServer(ensure_tmux(tmux_bin), socket_name, run_dir, kill_grace_s=kill_grace_s)
        self._run_dir = run_dir
        self._clock = clock
        self._grace_s = grace_s
        self._python = python
        self._kill_grace_s = kill_grace_s
        self._poll_interval_s = poll_interval_s
        self._watches: dict[str, _Watch] = {}
        self._approval_tool = approval_tool
        self._closed = False

    @property
    def socket_name(self) -> str:
        return self._server.socket_name

    @property
    def running(self) -> list[str]:
        """Keys of the runs being watched (recovered ones included)."""
        return sorted(self._watches)

    def tmux_session(self, key: str) -> str:
        """The tmux session (and run directory) name used for ``key``."""
        return session_name(key)

    def attach_command(self, key: str) -> list[str]:
        """The command that attaches a terminal to the run of ``key`` (for the cockpit)."""
        return self._server.attach_command(session_name(key))

    # -- Runner ------------------------------------------------------------------------------

    async def run(self, request: RunRequest, on_progress: ProgressCallback) -> RunResult:
        """Start ``request`` in a new tmux session and watch it to the end.

        The run directory stays until :meth:`acknowledge`. Raises :class:`RunDetached`
        if :meth:`close` is called meanwhile; a cancelled caller only stops watching.
        """
        self._check_open()
        if request.key in self._watches:
            raise RuntimeError(f"a run for {request.key!r} is already in progress")
        if not request.cwd.is_dir():
            error = f"The project directory {request.cwd} does not exist (or is not a directory)."
            return RunResult(ok=False, error=error, error_kind="crash")
        argv = build_argv(request, approval_tool=self._approval_tool)
        env = child_env(run_env(request, self._approval_tool))
        if shutil.which(argv[0], path=env.get("PATH", os.defpath)) is None:
            return missing_cli_result(argv[0])
        name = session_name(request.key)
        record = RunRecord(
            key=request.key,
            thread_id=request.thread_id,
            project_key=request.project_key,
            cwd=request.cwd,
            started_at=self._clock.now(),
            timeout_s=request.timeout_s,
            session_id=request.session_id,
            tmux_session=name,
            executable=argv[0],
            channel=f"{name}-{secrets.token_hex(8)}",
        )
        watch = _Watch(record, self._run_dir / name)
        self._watches[request.key] = watch
        try:
            if await asyncio.to_thread(self._server.end_run, name, remove_dir=True):
                log.warning("run %s replaces a run of the same session that was still going in tmux", request.key)
            try:
                await asyncio.to_thread(self._prepare, watch, argv, env, request.prompt, self._grace_for(request))
            except OSError as exc:
                await asyncio.to_thread(remove, watch.path)
                error = f"Could not write the run's files under {self._run_dir}: {exc.strerror or exc}."
                return RunResult(ok=False, error=error, error_kind="crash")
            try:
                watch.wrapper_pid = await self._start_session(watch)
            except StartFailed as exc:
                await asyncio.to_thread(self._server.end_run, name, remove_dir=True)
                return RunResult(
                    ok=False, error=f"Could not start a tmux session for this run: {exc}", error_kind="crash"
                )
            log.info("run %s started in tmux session %s", request.key, name)
            waits = request.permissions.waits if request.permissions is not None else None
            return await self._watch(watch, on_progress, timed=True, waits=waits)
        finally:
            del self._watches[request.key]
            watch.finished.set()

    async def cancel(self, key: str) -> bool:
        """Kill the tmux session of ``key`` and claude's process group; False if none.

        A watched run then ends as ``cancelled`` (and its directory is removed); returns
        once it has.
        """
        watch = self._watches.get(key)
        if watch is not None:
            watch.stop("cancel")
            await watch.finished.wait()
            if watch.killed and watch.stop_reason == "cancel" and key not in self._watches:
                # A cancelled run has nothing left to deliver.
                await asyncio.to_thread(remove, watch.path)
            return True
        # Not watched (recovered, not yet waited for): its directory keeps the outcome
        # for RecoveredRun.wait().
        return await asyncio.to_thread(self._server.end_run, session_name(key), remove_dir=False)

    async def interrupt(self, key: str) -> bool:
        """A tmux run cannot be asked to stop its turn (its claude reads no stdin): end it,
        as :meth:`cancel` does; the session keeps its claude session ID."""
        return await self.cancel(key)

    async def close(self) -> None:
        """Stop watching every run; the runs themselves go on in tmux (by design)."""
        self._closed = True
        watches = list(self._watches.values())
        for watch in watches:
            watch.stop("detach")
        for watch in watches:
            await watch.finished.wait()

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self, known: Mapping[str, object]) -> list[RecoveredRun]:
        """Find the runs a previous gateway left behind, for the session keys in ``known``.

        Runs of other keys, and anything of ours that cannot be read, are killed and
        removed. Call once at start-up, before new runs.
        """
        self._check_open()
        watched = {watch.record.tmux_session for watch in self._watches.values()}
        found = await asyncio.to_thread(scan, self._server, self._run_dir, frozenset(known), watched)
        runs = [RecoveredRun(self, record, state) for record, state in found]
        for run in runs:
            log.info("recovered run %s (%s) in %s", run.key, run.state, run.request.tmux_session)
        return runs

    async def acknowledge(self, key: str) -> None:
        """The result of ``key``'s last run was delivered: remove its run directory."""
        if key in self._watches:
            log.warning("not removing the run directory of %s: a run for it is in progress", key)
            return
        await asyncio.to_thread(self._server.end_run, session_name(key), remove_dir=True)

    async def release(self, key: str) -> None:
        """Nothing to drop: a finished run's directory goes with :meth:`acknowledge`."""

    async def watch_existing(self, record: RunRecord, on_progress: ProgressCallback, *, running: bool) -> RunResult:
        """Watch a run this runner did not start (for ``RecoveredRun.wait``) to its end.

        A ``running`` run is timed from its start and its wrapper is watched; any other
        only has its outcome read.
        """
        self._check_open()
        key = record.key
        if key in self._watches:
            raise RuntimeError(f"a run for {key!r} is already being watched")
        watch = _Watch(record, self._run_dir / record.tmux_session)
        self._watches[key] = watch
        try:
            if running:
                pids = await asyncio.to_thread(read_json, watch.path / PID_FILE)
                watch.wrapper_pid = pid_field(pids, "wrapper_pid")
            return await self._watch(watch, on_progress, timed=running)
        finally:
            del self._watches[key]
            watch.finished.set()

    # -- watching ----------------------------------------------------------------------------

    def _grace_for(self, request: RunRequest) -> float:
        """How long past its timeout the wrapper lets an unwatched run go on. A run that may
        wait for people gets room for a few of their answers: while the gateway watches, its
        own deadline stops during those waits, but the wrapper cannot know about them."""
        if request.permissions is None or self._approval_tool is None:
            return self._grace_s
        return self._grace_s + 4 * request.permissions.timeout_s

    async def _watch(
        self, watch: _Watch, on_progress: ProgressCallback, *, timed: bool, waits: HumanWaits | None = None
    ) -> RunResult:
        record = watch.record
        parser = OutputParser(cwd=record.cwd)
        tail = Tail(watch.path / OUT_FILE)
        exited = asyncio.create_task(self._await_exit(watch))
        stopped = asyncio.create_task(watch.stopped.wait())
        timer = None
        if timed:
            remaining = record.started_at + record.timeout_s - self._clock.now()
            timer = RunDeadline(self._clock, max(0.0, remaining), lambda: watch.stop("timeout"), waits)
        try:
            while True:
                await _pump(tail, parser, on_progress)
                done, _ = await asyncio.wait(
                    {exited, stopped}, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                if done:
                    break
            if watch.stop_reason == "detach":
                raise RunDetached(record.key)
            killed = watch.killed = not exited.done()
            if killed:
                await asyncio.to_thread(
                    self._server.end_run, record.tmux_session, remove_dir=False, wrapper_pid=watch.wrapper_pid
                )
                outcome = await asyncio.to_thread(read_json, watch.path / EXIT_FILE)
            else:
                outcome = exited.result()
            await _pump(tail, parser, on_progress)
            for progress in parser.feed(tail.flush()):
                _emit(on_progress, progress)
            stderr = await asyncio.to_thread(read_tail, watch.path / ERR_FILE, _STDERR_KEEP)
            result = self._result(watch, parser, outcome, stderr, killed=killed)
        finally:
            if timer is not None:
                timer.cancel()
            for task in (exited, stopped):
                task.cancel()
            await asyncio.gather(exited, stopped, return_exceptions=True)
        if not killed:
            # A pane kept open (remain-on-exit from someone else's config) must not linger.
            await asyncio.to_thread(self._server.kill_session, record.tmux_session)
        log.info("run %s ended: ok=%s kind=%s", record.key, result.ok, result.error_kind)
        return result

    async def _await_exit(self, watch: _Watch) -> dict[str, Any] | None:
        """exit.json once the wrapper has written it; None if the run ended without one."""
        exit_path = watch.path / EXIT_FILE
        failures = 0
        while True:
            outcome = await asyncio.to_thread(read_json, exit_path)
            if outcome is not None:
                return outcome
            if not await self._alive(watch):
                # It may have written exit.json just before its session ended.
                return await asyncio.to_thread(read_json, exit_path)
            if failures:  # tmux would not wait although the run seems alive: back off
                await asyncio.sleep(min(LIVENESS_INTERVAL_S, 0.05 * 2**failures))
            waited = await self._server.wait_for(watch.record.channel, lambda: self._alive(watch))
            failures = 0 if waited else failures + 1

    async def _alive(self, watch: _Watch) -> bool:
        if watch.wrapper_pid is not None:
            return pid_alive(watch.wrapper_pid)
        return await asyncio.to_thread(self._server.has_session, watch.record.tmux_session)

    def _result(
        self, watch: _Watch, parser: OutputParser, outcome: dict[str, Any] | None, stderr: str, *, killed: bool
    ) -> RunResult:
        record = watch.record
        code = exit_code(outcome)
        if killed:
            result = parser.finish(
                code,
                stderr,
                timed_out=watch.stop_reason == "timeout",
                cancelled=watch.stop_reason == "cancel",
                timeout_s=record.timeout_s,
            )
        elif outcome is None:
            result = _lost_result(parser, stderr)
        elif isinstance(outcome.get("spawn_error"), str):
            if outcome.get("errno") in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
                result = missing_cli_result(record.executable)
            else:
                error = f"Could not start `{record.executable}`: {outcome['spawn_error']}."
                result = RunResult(ok=False, error=error, error_kind="crash")
        elif isinstance(outcome.get("wrapper_error"), str) and code is None:
            error = f"The run could not be supervised in tmux: {outcome['wrapper_error']}"
            result = RunResult(ok=False, error=error, error_kind="crash", stderr_tail=stderr[-2000:])
        else:
            result = parser.finish(
                code,
                stderr,
                timed_out=outcome.get("timed_out") is True,
                cancelled=outcome.get("cancelled") is True,
                timeout_s=record.timeout_s,
            )
        if not result.duration_ms:
            elapsed_ms = int((self._clock.now() - record.started_at) * 1000)
            result = dataclasses.replace(result, duration_ms=max(0, elapsed_ms))
        return result

    async def _start_session(self, watch: _Watch) -> int | None:
        """Start the wrapper in a new tmux session; its pid (the pane's), if tmux said."""
        # -I: no user site, no PYTHON* variables, and neither the cwd nor the script's
        # directory on sys.path.
        wrapper = [self._python, "-I", str(WRAPPER_SCRIPT), str(watch.path)]
        return await self._server.new_session(watch.record.tmux_session, watch.path, wrapper)

    # -- the run directory (blocking: called in worker threads) -------------------------------

    def _prepare(self, watch: _Watch, argv: list[str], env: dict[str, str], prompt: str, grace_s: float) -> None:
        record = watch.record
        private_dir(self._run_dir)
        watch.path.mkdir(mode=0o700)
        request = {
            "format": tmux_wrapper.FORMAT,
            "key": record.key,
            "thread_id": record.thread_id,
            "project_key": record.project_key,
            "session_id": record.session_id,
            "cwd": str(record.cwd),
            "argv": argv,
            # Computed here, like the direct runner's: a long-lived tmux server's own
            # environment may be stale or hold what claude must not see.
            "env": env,
            "timeout_s": record.timeout_s,
            "grace_s": grace_s,
            "kill_grace_s": self._kill_grace_s,
            "started_at": record.started_at,
            "tmux": self._server.tmux,
            "socket": self._server.socket_name,
            "tmux_session": record.tmux_session,
            "channel": record.channel,
        }
        atomic_write(watch.path / PROMPT_FILE, prompt)
        atomic_write(watch.path / REQUEST_FILE, json.dumps(request))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the tmux runner is closed")


async def _pump(tail: Tail, parser: OutputParser, on_progress: ProgressCallback) -> None:
    """Feed everything new in the output file to the parser."""
    while text := await asyncio.to_thread(tail.read):
        for progress in parser.feed(text):
            _emit(on_progress, progress)


def _emit(on_progress: ProgressCallback, progress: Progress) -> None:
    try:
        on_progress(progress)
    except Exception:
        log.exception("progress callback failed on %s", progress.step)


def _lost_result(parser: OutputParser, stderr: str) -> RunResult:
    if parser.has_result:  # claude finished; only the wrapper's record of it is missing
        return parser.finish(0, stderr)
    error = (
        "The run was lost: its tmux session ended without recording how claude finished "
        "(tmux was killed, or the machine restarted)."
    )
    return RunResult(
        ok=False, error=error, error_kind="crash", session_id=parser.session_id, stderr_tail=stderr[-2000:]
    )
