"""Handing the terminal to another program: resume a claude session, attach to a tmux run.

The cockpit builds argument lists here and starts them through a :data:`Launcher`, so
tests record the argv instead of running claude or tmux. Inside tmux a new window is
opened and the cockpit stays on screen; outside tmux the cockpit suspends itself and the
program takes over the terminal until it exits.

Jumping into a session holds it (:mod:`mpg_tui.core.holds`) for as long as its claude
runs: outside tmux that is until the launcher returns; inside tmux the new window's
process is watched (:data:`PaneLauncher` reports its PID) until it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mpg_tui.core.api import HoldGrant, SessionInfo

PANE_PID_FORMAT = "#{pane_pid}"


class Launcher(Protocol):
    def __call__(self, argv: Sequence[str], cwd: str | None) -> int:
        """Run ``argv`` in ``cwd`` to completion and return its exit status."""


def run_process(argv: Sequence[str], cwd: str | None) -> int:
    """The real launcher: inherit the terminal, wait for the program to exit."""
    return subprocess.run(list(argv), cwd=cwd, check=False).returncode


class PaneLauncher(Protocol):
    def __call__(self, argv: Sequence[str]) -> int:
        """Run ``argv`` (a ``tmux new-window -P -F '#{pane_pid}'`` command) and return the pane's PID."""


def open_pane(argv: Sequence[str]) -> int:
    """The real pane launcher: tmux prints the new pane's PID."""
    done = subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=30)
    return int(done.stdout.strip().splitlines()[-1])


async def process_gone(pid: int) -> None:
    """Until process ``pid`` (not necessarily our child) has ended."""
    try:
        fd = os.pidfd_open(pid)  # Linux: readable once the process has ended
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def holder_name(what: str = "cockpit") -> str:
    """How a hold names its holder for the thread and the faces: "cockpit, ann@host"."""
    with contextlib.suppress(KeyError, OSError):
        return f"{what}, {getpass.getuser()}@{socket.gethostname()}"
    return f"{what}, {socket.gethostname()}"


@dataclass(frozen=True)
class Handover:
    """A program to run for the operator, and whether it needs the cockpit's terminal."""

    argv: list[str]
    cwd: str | None
    foreground: bool
    """True: suspend the cockpit while it runs. False: it opens its own tmux window."""
    what: str
    """Human words for notifications: "claude --resume 3f2a1b9c"."""


def inside_tmux(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("TMUX"))


def session_workdir(info: SessionInfo) -> str:
    """Where claude ran for this session: its worktree when it has one.

    ``claude --resume`` only finds a session from the directory it was created in.
    """
    return info.worktree_path or info.cwd


def window_name(info: SessionInfo) -> str:
    """A short tmux window name: the agent (or "claude") and the thread ID's tail."""
    return f"{info.agent or 'claude'}-{info.thread_id[-6:]}"


def resume_handover(info: SessionInfo, environ: Mapping[str, str], claude: Sequence[str] = ("claude",)) -> Handover:
    """``claude --resume <id>`` in the session's directory. Requires ``info.session_id``."""
    if not info.session_id:
        raise ValueError(f"session {info.key} has no claude session ID yet")
    cwd = session_workdir(info)
    command = [*claude, "--resume", info.session_id]
    what = f"claude --resume {info.session_id[:8]}"
    if inside_tmux(environ):
        return Handover(["tmux", "new-window", "-c", cwd, "-n", window_name(info), "--", *command], None, False, what)
    return Handover(command, cwd, True, what)


def held_handover(
    grant: HoldGrant, info: SessionInfo, environ: Mapping[str, str], claude: Sequence[str] = ("claude",)
) -> Handover:
    """``claude --resume`` of a held session, with what the gateway's grant says (directory, ID, variables).

    Inside tmux the window's command prints its pane's PID (the hold lasts until it exits).
    """
    env = [f"{name}={value}" for name, value in sorted(grant.env.items())]
    command = [*claude, "--resume", grant.session_id]
    if env:  # the variables claude needs to find the session, through env(1): no shell involved
        command = ["env", *env, *command]
    what = f"claude --resume {grant.session_id[:8]}"
    if inside_tmux(environ):
        argv = ["tmux", "new-window", "-P", "-F", PANE_PID_FORMAT, "-c", grant.cwd, "-n", window_name(info), "--"]
        return Handover([*argv, *command], None, False, what)
    return Handover(command, grant.cwd, True, what)


def attach_handover(info: SessionInfo, environ: Mapping[str, str]) -> Handover:
    """The gateway's attach command for a tmux-backed run. Requires ``info.attach_command``."""
    if not info.attach_command or not info.tmux_session:
        raise ValueError(f"session {info.key} is not running in tmux")
    command = list(info.attach_command)
    what = f"tmux session {info.tmux_session}"
    if inside_tmux(environ):
        # A client of another tmux server may run inside one of our panes: tmux only
        # refuses nesting a server inside itself.
        return Handover(["tmux", "new-window", "-n", f"run-{window_name(info)}", "--", *command], None, False, what)
    return Handover(command, None, True, what)


@dataclass(frozen=True)
class Refusal:
    """Why the cockpit will not jump into or attach to a session, in the operator's words."""

    title: str
    text: str
    severity: Literal["warning", "error"] = "warning"


def jump_refusal(
    info: SessionInfo, which: Callable[[str], str | None], claude: Sequence[str] = ("claude",)
) -> Refusal | None:
    """What stops ``j`` on this machine before any hold is asked for; None when nothing does."""
    if not info.session_id:
        return Refusal(
            "Cannot jump in",
            f"{info.key} has no claude session yet (no run has finished), so there is nothing to resume.",
        )
    if which(claude[0]) is None:
        return Refusal(
            "Cannot jump in",
            f"`{claude[0]}` is not on PATH here, so there is no claude to resume the session "
            "with. Install Claude Code (npm install -g @anthropic-ai/claude-code) and try again.",
            "error",
        )
    if info.held_since is not None:
        return Refusal("Cannot jump in", f"{info.key} is already open in a terminal ({info.held_by}).")
    return None
