"""Our own tmux server, and ending the runs in its sessions.

One tmux server on a socket of our own (``tmux -L <socket>``, started without the user's
``~/.tmux.conf`` and without the gateway's secrets in its environment) holds one session
per running session key. Each session's pane runs the wrapper on the run directory of
the same name under ``run_dir``.

libtmux is synchronous: the methods that use it block, and the runner calls them in
worker threads. Two tmux commands are run as asyncio subprocesses instead:
``new-session``, which needs a scrubbed client environment that libtmux cannot pass, and
the blocking ``wait-for``, which would otherwise hold a worker thread for a whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import libtmux

from mpg_tui.runners.command import child_env
from mpg_tui.runners.process import signal_group, wait_until_gone
from mpg_tui.runners.tmux_rundir import pid_field, read_json, remove
from mpg_tui.runners.tmux_wrapper import PID_FILE

log = logging.getLogger(__name__)

LIVENESS_INTERVAL_S = 1.0
"""How often a wait for a run's signal checks that its wrapper is alive, should none come."""
_WRAPPER_EXIT_SLACK_S = 5.0
"""How much longer than its kill grace a killed wrapper may take to exit."""
_PANE_SIZE = ("-x", "200", "-y", "50")
_TMUX_ENV_NAMES = ("TMUX", "TMUX_PANE")


class StartFailed(Exception):
    """tmux could not create the session for a run."""


class TmuxServer:
    """The tmux server on socket ``socket_name``, whose sessions' run directories are in ``run_dir``."""

    def __init__(self, tmux: str, socket_name: str, run_dir: Path, *, kill_grace_s: float) -> None:
        """``tmux`` is the path of a usable tmux binary; ``kill_grace_s`` is the wrapper's
        SIGTERM-to-SIGKILL delay for claude's group."""
        self.tmux = tmux
        self.socket_name = socket_name
        self._run_dir = run_dir
        self._kill_grace_s = kill_grace_s
        self._server = libtmux.Server(socket_name=socket_name, config_file=os.devnull, tmux_bin=tmux)

    def attach_command(self, name: str) -> list[str]:
        """The command that attaches a terminal to session ``name``."""
        return [self.tmux, "-L", self.socket_name, "attach", "-t", name]

    # -- blocking (libtmux) ------------------------------------------------------------------

    def session_names(self) -> set[str]:
        return {str(session.session_name) for session in self._server.sessions if session.session_name}

    def has_session(self, name: str) -> bool:
        return bool(self._server.has_session(name, exact=True))

    def kill_session(self, name: str) -> None:
        self._server.cmd("kill-session", "-t", f"={name}")  # "no such session" is fine

    def end_run(self, name: str, *, remove_dir: bool, wrapper_pid: int | None = None) -> bool:
        """Kill the tmux session ``name`` and what runs in it; with ``remove_dir``, its run
        directory too. True if the session was there."""
        path = self._run_dir / name
        alive = self.has_session(name)
        if alive:
            # The pids are only trusted while the session lives: a dead run's may be reused.
            pids = read_json(path / PID_FILE) or {}
            wrapper_pid = pid_field(pids, "wrapper_pid") or wrapper_pid
            self.kill_session(name)  # SIGHUP: the wrapper ends claude's group and exits
            if wrapper_pid is not None:
                wait_until_gone(wrapper_pid, self._kill_grace_s + _WRAPPER_EXIT_SLACK_S)
            child_pid = pid_field(read_json(path / PID_FILE) or pids, "child_pid")
            if child_pid is not None:
                signal_group(child_pid, signal.SIGKILL)  # in case the wrapper could not
        if remove_dir:
            remove(path)
        return alive

    # -- asyncio subprocesses ----------------------------------------------------------------

    async def new_session(self, name: str, cwd: Path, command: list[str]) -> int | None:
        """Start ``command`` (run without a shell) in a new detached session; the pane's pid,
        if tmux said. Raises :class:`StartFailed`."""
        argv = [
            self.tmux,
            "-L",
            self.socket_name,
            "-f",
            os.devnull,  # the user's ~/.tmux.conf could keep dead panes (remain-on-exit) or add hooks
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            name,
            "-c",
            str(cwd),
            *_PANE_SIZE,
            "--",
            *command,  # several words: tmux execs them without a shell
        ]
        # The first client starts the server, and the server's environment is every pane's.
        env = {key: value for key, value in child_env().items() if key not in _TMUX_ENV_NAMES}
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
            raise StartFailed(str(exc)) from exc
        if process.returncode != 0:
            raise StartFailed(err.decode("utf-8", errors="replace").strip() or f"exit code {process.returncode}")
        try:
            return int(out.strip())
        except ValueError:
            return None

    async def wait_for(self, channel: str, alive: Callable[[], Awaitable[bool]]) -> bool:
        """Block in ``tmux wait-for`` until ``channel`` is signalled, the tmux server ends,
        or ``alive`` says the run's wrapper is gone. False if tmux could not wait at all."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.tmux,
                "-L",
                self.socket_name,
                "wait-for",
                channel,
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
                    await asyncio.wait_for(process.wait(), LIVENESS_INTERVAL_S)
                except TimeoutError:
                    # Nobody signals for a wrapper that was SIGKILLed while other sessions
                    # keep the tmux server (and so this wait) going.
                    if not await alive():
                        return True
                    continue
                return process.returncode == 0  # non-zero: no server (the run may be over)
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
