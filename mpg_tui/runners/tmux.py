"""Run claude inside detached tmux sessions that survive the gateway (``"persistence": "tmux"``).

One tmux server on a socket of our own (``tmux -L <socket>``, started without the user's
``~/.tmux.conf`` and without the gateway's secrets in its environment) holds one session
per running session key, named by :mod:`mpg_tui.runners.names`. The pane runs
:mod:`mpg_tui.runners.tmux_wrapper` on a private run directory (``run_dir/<name>/``,
0700, files 0600) that holds everything about the run: the request, the prompt, claude's
output, and at the end ``exit.json``. The only command tmux is given is an argument list
of our own paths, executed without a shell; user text only ever reaches files.

While a run is watched, its output file is tailed through the shared
:class:`~mpg_tui.runners.parse.OutputParser` (a short poll; the file is local), and its
end is noticed through ``tmux wait-for``: the wrapper signals a per-run channel after
writing ``exit.json``, and tmux remembers a signal sent before anyone waited. A wrapper
that dies without signalling is noticed by a slow liveness check. The gateway's timeout
and :meth:`TmuxRunner.cancel` kill the tmux session; the wrapper then ends claude's whole
process group (and the runner ends it too, as a backstop).

:meth:`TmuxRunner.close` and cancelling a ``run()`` only stop watching: the run goes on,
and the next gateway picks it up with :meth:`TmuxRunner.recover`. A run's directory stays
until :meth:`TmuxRunner.acknowledge` says its result was delivered, so a result that was
ready when the gateway died is delivered by the next one.

libtmux is synchronous; every call to it runs in a worker thread. Two tmux commands are
run as asyncio subprocesses instead: ``new-session``, which needs a scrubbed client
environment that libtmux cannot pass, and the blocking ``wait-for``, which would
otherwise hold a worker thread for the whole run.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import dataclasses
import errno
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import libtmux

from mpg_tui.core.clock import Clock
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.runner import Progress, ProgressCallback, Runner, RunRequest, RunResult
from mpg_tui.runners import tmux_wrapper
from mpg_tui.runners.command import build_argv, child_env
from mpg_tui.runners.direct import REGISTRY_PREFIX as DIRECT_REGISTRY_PREFIX
from mpg_tui.runners.names import is_session_name, session_name
from mpg_tui.runners.parse import OutputParser, missing_cli_result
from mpg_tui.runners.tmux_wrapper import (
    ERR_FILE,
    EXIT_FILE,
    OUT_FILE,
    PID_FILE,
    PROMPT_FILE,
    REQUEST_FILE,
    RequestError,
    read_request,
    write_private,
)

log = logging.getLogger(__name__)

MIN_TMUX_VERSION = (3, 0)
"""Needed for a pane command given as an argument list (run without a shell)."""
WRAPPER_SCRIPT = Path(tmux_wrapper.__file__).resolve()

_READ_SIZE = 256 * 1024
_STDERR_KEEP = 16 * 1024
_LIVENESS_INTERVAL_S = 1.0
"""How often a watched run checks that its wrapper is alive, should no signal come."""
_WRAPPER_EXIT_SLACK_S = 5.0
"""How much longer than its kill grace a killed wrapper may take to exit."""
_PANE_SIZE = ("-x", "200", "-y", "50")
_TMUX_ENV_NAMES = ("TMUX", "TMUX_PANE")

StopReason = Literal["timeout", "cancel", "detach"]
RecoveryState = Literal["running", "finished", "lost"]


class TmuxUnavailable(RuntimeError):
    """tmux persistence is configured, but tmux is missing or too old."""


class _StartFailed(Exception):
    """tmux could not create the session for a run."""


class RunDetached(Exception):
    """The runner stopped watching a run (:meth:`TmuxRunner.close`); the run goes on in tmux.

    Raised by :meth:`TmuxRunner.run` and :meth:`RecoveredRun.wait` instead of a result:
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


@dataclass(frozen=True)
class RunRecord:
    """What the run directory says about a run (its request.json)."""

    key: str
    thread_id: str
    project_key: str
    cwd: Path
    started_at: float
    """Wall-clock time the run was started (``clock.now()``)."""
    timeout_s: float
    session_id: str | None
    tmux_session: str
    executable: str
    channel: str

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> RunRecord:
        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str):
                raise RequestError(f"{REQUEST_FILE}: {name!r} is missing or not text")
            return value

        def number(name: str) -> float:
            value = data.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise RequestError(f"{REQUEST_FILE}: {name!r} is missing or not a number")
            return float(value)

        argv = data.get("argv")
        if not isinstance(argv, list) or not argv or not isinstance(argv[0], str):
            raise RequestError(f"{REQUEST_FILE}: 'argv' is missing")
        session_id = data.get("session_id")
        return cls(
            key=text("key"),
            thread_id=text("thread_id"),
            project_key=text("project_key"),
            cwd=Path(text("cwd")),
            started_at=number("started_at"),
            timeout_s=number("timeout_s"),
            session_id=session_id if isinstance(session_id, str) else None,
            tmux_session=text("tmux_session"),
            executable=argv[0],
            channel=text("channel"),
        )


class RecoveredRun:
    """A run found by :meth:`TmuxRunner.recover`: still running, finished unwatched, or lost."""

    def __init__(self, runner: TmuxRunner, record: RunRecord, state: RecoveryState) -> None:
        self._runner = runner
        self.request = record
        self.state: RecoveryState = state

    @property
    def key(self) -> str:
        return self.request.key

    async def wait(self, on_progress: ProgressCallback) -> RunResult:
        """The run's result, once it has one; progress is reported while it runs.

        Raises :class:`RunDetached` if the runner is closed meanwhile.
        """
        return await self._runner._wait_recovered(self, on_progress)

    def __repr__(self) -> str:
        return f"RecoveredRun(key={self.key!r}, state={self.state!r})"


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
    ) -> None:
        """``grace_s``: how long past its timeout an unwatched run may go on before its
        wrapper ends it. ``kill_grace_s``: SIGTERM to SIGKILL delay for claude's group.
        ``poll_interval_s``: how often a watched run's output file is read.

        Raises :class:`TmuxUnavailable` when tmux is missing or too old."""
        if not socket_name or "/" in socket_name:
            raise ValueError(f"invalid tmux socket name {socket_name!r}")
        self._tmux = ensure_tmux(tmux_bin)
        self._socket = socket_name
        self._run_dir = run_dir
        self._clock = clock
        self._grace_s = grace_s
        self._python = python
        self._kill_grace_s = kill_grace_s
        self._poll_interval_s = poll_interval_s
        self._server = libtmux.Server(socket_name=socket_name, config_file=os.devnull, tmux_bin=self._tmux)
        self._watches: dict[str, _Watch] = {}
        self._closed = False

    @property
    def socket_name(self) -> str:
        return self._socket

    @property
    def running(self) -> list[str]:
        """Keys of the runs being watched (recovered ones included)."""
        return sorted(self._watches)

    def tmux_session(self, key: str) -> str:
        """The tmux session (and run directory) name used for ``key``."""
        return session_name(key)

    def attach_command(self, key: str) -> list[str]:
        """The command that attaches a terminal to the run of ``key`` (for the cockpit)."""
        return [self._tmux, "-L", self._socket, "attach", "-t", session_name(key)]

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
        argv = build_argv(request)
        env = child_env(request.env)
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
            if await asyncio.to_thread(self._end_run, name, remove=True):
                log.warning("run %s replaces a run of the same session that was still going in tmux", request.key)
            try:
                await asyncio.to_thread(self._prepare, watch, argv, env, request.prompt)
            except OSError as exc:
                await asyncio.to_thread(_remove, watch.path)
                error = f"Could not write the run's files under {self._run_dir}: {exc.strerror or exc}."
                return RunResult(ok=False, error=error, error_kind="crash")
            try:
                watch.wrapper_pid = await self._start_session(watch)
            except _StartFailed as exc:
                await asyncio.to_thread(self._end_run, name, remove=True)
                return RunResult(
                    ok=False, error=f"Could not start a tmux session for this run: {exc}", error_kind="crash"
                )
            log.info("run %s started in tmux session %s", request.key, name)
            return await self._watch(watch, on_progress, timed=True)
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
                await asyncio.to_thread(_remove, watch.path)
            return True
        # Not watched (recovered, not yet waited for): its directory keeps the outcome
        # for RecoveredRun.wait().
        return await asyncio.to_thread(self._end_run, session_name(key), remove=False)

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
        found = await asyncio.to_thread(self._scan, frozenset(known))
        runs = [RecoveredRun(self, record, state) for record, state in found]
        for run in runs:
            log.info("recovered run %s (%s) in %s", run.key, run.state, run.request.tmux_session)
        return runs

    async def acknowledge(self, key: str) -> None:
        """The result of ``key``'s last run was delivered: remove its run directory."""
        if key in self._watches:
            log.warning("not removing the run directory of %s: a run for it is in progress", key)
            return
        await asyncio.to_thread(self._end_run, session_name(key), remove=True)

    async def release(self, key: str) -> None:
        """Nothing to drop: a finished run's directory goes with :meth:`acknowledge`."""

    async def _wait_recovered(self, run: RecoveredRun, on_progress: ProgressCallback) -> RunResult:
        self._check_open()
        key = run.key
        if key in self._watches:
            raise RuntimeError(f"a run for {key!r} is already being watched")
        watch = _Watch(run.request, self._run_dir / run.request.tmux_session)
        self._watches[key] = watch
        try:
            if run.state == "running":
                pids = await asyncio.to_thread(_read_json, watch.path / PID_FILE)
                watch.wrapper_pid = _pid(pids, "wrapper_pid")
                return await self._watch(watch, on_progress, timed=True)
            # Finished (or lost) while nobody watched: its progress is history, not news.
            return await self._watch(watch, _ignore_progress, timed=False)
        finally:
            del self._watches[key]
            watch.finished.set()

    def _scan(self, known: frozenset[str]) -> list[tuple[RunRecord, RecoveryState]]:
        """Sort the run directories and tmux sessions into runs to recover and leftovers."""
        sessions = self._session_names()
        watched = {watch.record.tmux_session for watch in self._watches.values()}
        handled: set[str] = set(watched)
        found: list[tuple[RunRecord, RecoveryState]] = []
        entries = sorted(self._run_dir.iterdir()) if self._run_dir.is_dir() else []
        for path in entries:
            name = path.name
            if name in watched or name.startswith(DIRECT_REGISTRY_PREFIX):
                continue  # the direct runner keeps its run records in the same directory
            if not is_session_name(name):
                log.warning("leaving %s alone: not a run directory of ours", path)
                continue
            handled.add(name)
            try:
                if path.is_symlink() or not path.is_dir():
                    raise RequestError("not a directory")
                record = RunRecord.from_request(read_request(path))
                if session_name(record.key) != name:
                    raise RequestError(f"its key {record.key!r} does not match its name")
            except RequestError as exc:
                log.warning("removing unreadable run %s: %s", name, exc)
                self._end_run(name, remove=True)
                continue
            if record.key not in known:
                log.info("removing the run of unknown session %s (%s)", record.key, name)
                self._end_run(name, remove=True)
                continue
            alive = name in sessions
            if (path / EXIT_FILE).exists():
                if alive:  # only with remain-on-exit, which our server does not set
                    self._kill_session(name)
                found.append((record, "finished"))
            else:
                found.append((record, "running" if alive else "lost"))
        for name in sorted(sessions - handled):
            if is_session_name(name):
                log.info("killing tmux session %s: no run of a known session", name)
                self._end_run(name, remove=False)
        return found

    # -- watching ----------------------------------------------------------------------------

    async def _watch(self, watch: _Watch, on_progress: ProgressCallback, *, timed: bool) -> RunResult:
        record = watch.record
        parser = OutputParser(cwd=record.cwd)
        tail = _Tail(watch.path / OUT_FILE)
        exited = asyncio.create_task(self._await_exit(watch))
        stopped = asyncio.create_task(watch.stopped.wait())
        timer = None
        if timed:
            remaining = record.started_at + record.timeout_s - self._clock.now()
            timer = self._clock.call_later(max(0.0, remaining), lambda: watch.stop("timeout"))
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
                await asyncio.to_thread(self._end_run, record.tmux_session, remove=False, wrapper_pid=watch.wrapper_pid)
                outcome = await asyncio.to_thread(_read_json, watch.path / EXIT_FILE)
            else:
                outcome = exited.result()
            await _pump(tail, parser, on_progress)
            for progress in parser.feed(tail.flush()):
                _emit(on_progress, progress)
            stderr = await asyncio.to_thread(_read_tail, watch.path / ERR_FILE, _STDERR_KEEP)
            result = self._result(watch, parser, outcome, stderr, killed=killed)
        finally:
            if timer is not None:
                timer.cancel()
            for task in (exited, stopped):
                task.cancel()
            await asyncio.gather(exited, stopped, return_exceptions=True)
        if not killed:
            # A pane kept open (remain-on-exit from someone else's config) must not linger.
            await asyncio.to_thread(self._kill_session, record.tmux_session)
        log.info("run %s ended: ok=%s kind=%s", record.key, result.ok, result.error_kind)
        return result

    async def _await_exit(self, watch: _Watch) -> dict[str, Any] | None:
        """exit.json once the wrapper has written it; None if the run ended without one."""
        exit_path = watch.path / EXIT_FILE
        failures = 0
        while True:
            outcome = await asyncio.to_thread(_read_json, exit_path)
            if outcome is not None:
                return outcome
            if not await self._alive(watch):
                # It may have written exit.json just before its session ended.
                return await asyncio.to_thread(_read_json, exit_path)
            if failures:  # tmux would not wait although the run seems alive: back off
                await asyncio.sleep(min(_LIVENESS_INTERVAL_S, 0.05 * 2**failures))
            failures = 0 if await self._wait_for_signal(watch) else failures + 1

    async def _wait_for_signal(self, watch: _Watch) -> bool:
        """Block in ``tmux wait-for`` until the run's channel is signalled, the tmux server
        ends, or the wrapper looks dead. False if tmux could not wait at all."""
        try:
            process = await asyncio.create_subprocess_exec(
                self._tmux,
                "-L",
                self._socket,
                "wait-for",
                watch.record.channel,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("cannot run tmux wait-for: %s", exc)
            return False
        try:
            while True:
                try:
                    await asyncio.wait_for(process.wait(), _LIVENESS_INTERVAL_S)
                except TimeoutError:
                    # Nobody signals for a wrapper that was SIGKILLed while other sessions
                    # keep the tmux server (and so this wait) going.
                    if not await self._alive(watch):
                        return True
                    continue
                return process.returncode == 0  # non-zero: no server (the run may be over)
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def _alive(self, watch: _Watch) -> bool:
        if watch.wrapper_pid is not None:
            return _pid_alive(watch.wrapper_pid)
        return await asyncio.to_thread(self._has_session, watch.record.tmux_session)

    def _result(
        self, watch: _Watch, parser: OutputParser, outcome: dict[str, Any] | None, stderr: str, *, killed: bool
    ) -> RunResult:
        record = watch.record
        exit_code = _exit_code(outcome)
        if killed:
            result = parser.finish(
                exit_code,
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
        elif isinstance(outcome.get("wrapper_error"), str) and exit_code is None:
            error = f"The run could not be supervised in tmux: {outcome['wrapper_error']}"
            result = RunResult(ok=False, error=error, error_kind="crash", stderr_tail=stderr[-2000:])
        else:
            result = parser.finish(
                exit_code,
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
        argv = [
            self._tmux,
            "-L",
            self._socket,
            "-f",
            os.devnull,  # the user's ~/.tmux.conf could keep dead panes (remain-on-exit) or add hooks
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            watch.record.tmux_session,
            "-c",
            str(watch.path),
            *_PANE_SIZE,
            "--",
            # Several words: tmux execs them without a shell. -I: no user site, no PYTHON*
            # variables, and neither the cwd nor the script's directory on sys.path.
            self._python,
            "-I",
            str(WRAPPER_SCRIPT),
            str(watch.path),
        ]
        # The first client starts the server, and the server's environment is every pane's.
        env = {name: value for name, value in child_env().items() if name not in _TMUX_ENV_NAMES}
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
            out, err = await process.communicate()
        except OSError as exc:
            raise _StartFailed(str(exc)) from exc
        if process.returncode != 0:
            raise _StartFailed(err.decode("utf-8", errors="replace").strip() or f"exit code {process.returncode}")
        try:
            return int(out.strip())
        except ValueError:
            return None

    # -- tmux and the run directory (blocking: called in worker threads) ----------------------

    def _prepare(self, watch: _Watch, argv: list[str], env: dict[str, str], prompt: str) -> None:
        record = watch.record
        _private_dir(self._run_dir)
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
            "grace_s": self._grace_s,
            "kill_grace_s": self._kill_grace_s,
            "started_at": record.started_at,
            "tmux": self._tmux,
            "socket": self._socket,
            "tmux_session": record.tmux_session,
            "channel": record.channel,
        }
        write_private(watch.path / PROMPT_FILE, prompt.encode("utf-8"))
        write_private(watch.path / REQUEST_FILE, json.dumps(request).encode("utf-8"))

    def _end_run(self, name: str, *, remove: bool, wrapper_pid: int | None = None) -> bool:
        """Kill the tmux session ``name`` and what runs in it; with ``remove``, its directory
        too. True if the session was there."""
        path = self._run_dir / name
        alive = self._has_session(name)
        if alive:
            # The pids are only trusted while the session lives: a dead run's may be reused.
            pids = _read_json(path / PID_FILE) or {}
            wrapper_pid = _pid(pids, "wrapper_pid") or wrapper_pid
            self._kill_session(name)  # SIGHUP: the wrapper ends claude's group and exits
            if wrapper_pid is not None:
                _wait_until_gone(wrapper_pid, self._kill_grace_s + _WRAPPER_EXIT_SLACK_S)
            child_pid = _pid(_read_json(path / PID_FILE) or pids, "child_pid")
            if child_pid is not None:
                _signal_group(child_pid, signal.SIGKILL)  # in case the wrapper could not
        if remove:
            _remove(path)
        return alive

    def _session_names(self) -> set[str]:
        return {str(session.session_name) for session in self._server.sessions if session.session_name}

    def _has_session(self, name: str) -> bool:
        return bool(self._server.has_session(name, exact=True))

    def _kill_session(self, name: str) -> None:
        self._server.cmd("kill-session", "-t", f"={name}")  # "no such session" is fine

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the tmux runner is closed")


class _Tail:
    """Reads a growing file from where it left off, decoding UTF-8 across reads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str:
        try:
            with self._path.open("rb") as file:
                file.seek(self._offset)
                data = file.read(_READ_SIZE)
        except FileNotFoundError:
            return ""
        self._offset += len(data)
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


async def _pump(tail: _Tail, parser: OutputParser, on_progress: ProgressCallback) -> None:
    """Feed everything new in the output file to the parser."""
    while text := await asyncio.to_thread(tail.read):
        for progress in parser.feed(text):
            _emit(on_progress, progress)


def _emit(on_progress: ProgressCallback, progress: Progress) -> None:
    try:
        on_progress(progress)
    except Exception:
        log.exception("progress callback failed on %s", progress.step)


def _ignore_progress(_progress: Progress) -> None:
    return None


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


def _exit_code(outcome: Mapping[str, Any] | None) -> int | None:
    """The exit status in the direct runner's convention: negative for a signal."""
    if outcome is None:
        return None
    code, sig = outcome.get("exit_code"), outcome.get("signal")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    if isinstance(sig, int) and not isinstance(sig, bool):
        return -sig
    return None


def _pid(data: Mapping[str, Any] | None, name: str) -> int | None:
    value = (data or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_tail(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - limit))
            return file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _remove(path: Path) -> None:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is running. A zombie is not: a wrapper whose tmux server exited
    with it is re-parented, and its new parent may take its time to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no procfs (macOS, BSD): trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _wait_until_gone(pid: int, timeout_s: float) -> None:
    """Wait (in a worker thread) for a process that is not our child to exit."""
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
