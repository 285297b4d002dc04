"""Process groups the runners end, and what ``/proc`` says about processes that are not our children.

Claude runs in a process group of its own, and everything it starts (a background
``npm run dev`` from its Bash tool, say) ends with the group: SIGTERM first, then SIGKILL.
Both runners and the tmux pane's wrapper end groups through this module.

Standard library only, and no asyncio: the tmux wrapper imports it in every pane and
must start fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

_PROC = Path("/proc")
_GONE_POLL_S = 0.02
"""How often :func:`wait_until_gone` looks (the process is not our child: no wait())."""


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is gone (or not ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def end_group(pgid: int, wait_for_leader: Callable[[], Awaitable[object]]) -> None:
    """SIGTERM group ``pgid``, await ``wait_for_leader`` (which the caller bounds by its
    grace period), then SIGKILL whatever is left.

    The SIGKILL goes out even when the leader ended on SIGTERM: what it left in its group
    ends with it. While any member lives the group id cannot be reused; once none does,
    the signal simply finds no one.
    """
    signal_group(pgid, signal.SIGTERM)
    await wait_for_leader()
    signal_group(pgid, signal.SIGKILL)


def end_group_now(pgid: int) -> None:
    """SIGTERM then SIGKILL without a pause: for what is left in a group whose leader has exited."""
    signal_group(pgid, signal.SIGTERM)
    signal_group(pgid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is running. A zombie is not: a process whose parent exited is
    re-parented, and its new parent may take its time to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = stat_fields(pid)
    if fields is None:
        return True  # no procfs (macOS, BSD): trust kill(0)
    return fields[:1] != ["Z"]


def wait_until_gone(pid: int, timeout_s: float) -> None:
    """Wait (blocking: call it in a worker thread) for a process that is not our child to exit."""
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(_GONE_POLL_S)


def has_procfs() -> bool:
    return (_PROC / "self" / "stat").exists()


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; None when it cannot be read."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and ")".
    return text.rpartition(")")[2].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22); None where unknown."""
    fields = stat_fields(pid)
    try:
        return int(fields[19]) if fields is not None else None  # field 22, counted from 3
    except (IndexError, ValueError):
        return None


def group_members(pgid: int) -> set[int]:
    """Live (not zombie) processes in group ``pgid``. Blocking."""
    members: set[int] = set()
    try:
        names = [entry.name for entry in os.scandir(_PROC) if entry.name.isdigit()]
    except OSError:
        return members
    for name in names:
        fields = stat_fields(int(name))
        if fields is not None and fields[0] not in ("Z", "X") and fields[2] == str(pgid):
            members.add(int(name))
    return members


def environ_has(pid: int, entry: bytes) -> bool:
    """Whether ``entry`` (``NAME=value``) is one of the entries of the process's environment."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's (unreadable)
        return False
    return entry in environ.split(b"\0")
