"""Handing the terminal to another program: resume a claude session, attach to a tmux run.

The cockpit builds argument lists here and starts them through a :data:`Launcher`, so
tests record the argv instead of running claude or tmux. Inside tmux a new window is
opened and the cockpit stays on screen; outside tmux the cockpit suspends itself and the
program takes over the terminal until it exits.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mpg_tui.core.api import SessionInfo


class Launcher(Protocol):
    def __call__(self, argv: Sequence[str], cwd: str | None) -> int:
        """Run ``argv`` in ``cwd`` to completion and return its exit status."""


def run_process(argv: Sequence[str], cwd: str | None) -> int:
    """The real launcher: inherit the terminal, wait for the program to exit."""
    return subprocess.run(list(argv), cwd=cwd, check=False).returncode


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
