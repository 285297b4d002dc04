"""Taking over the tmux runs a previous gateway left: finding them, and waiting for them.

At start-up :meth:`~mpg_tui.runners.tmux.TmuxRunner.recover` sorts the run directories
and tmux sessions into runs to recover (one :class:`RecoveredRun` each: still running,
finished while nobody watched, or lost with its session) and leftovers, which are killed
and removed: runs of session keys the gateway no longer knows, directories that cannot be
read, sessions without a run. A recovered run is then waited for like a new one, and
its directory stays until its result is acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Literal

from mpg_tui.core.runner import Progress, ProgressCallback, RunResult
from mpg_tui.runners.direct import REGISTRY_PREFIX as DIRECT_REGISTRY_PREFIX
from mpg_tui.runners.names import is_session_name, session_name
from mpg_tui.runners.tmux_rundir import RunRecord
from mpg_tui.runners.tmux_server import TmuxServer
from mpg_tui.runners.tmux_wrapper import EXIT_FILE, RequestError, read_request

if TYPE_CHECKING:
    from pathlib import Path

    from mpg_tui.runners.tmux import TmuxRunner

log = logging.getLogger(__name__)

RecoveryState = Literal["running", "finished", "lost"]


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

        Raises :class:`~mpg_tui.runners.tmux.RunDetached` if the runner is closed meanwhile.
        """
        if self.state == "running":
            return await self._runner.watch_existing(self.request, on_progress, running=True)
        # Finished (or lost) while nobody watched: its progress is history, not news.
        return await self._runner.watch_existing(self.request, _ignore_progress, running=False)

    def __repr__(self) -> str:
        return f"RecoveredRun(key={self.key!r}, state={self.state!r})"


def scan(
    server: TmuxServer, run_dir: Path, known: Collection[str], watched: Collection[str]
) -> list[tuple[RunRecord, RecoveryState]]:
    """Sort the run directories in ``run_dir`` and the server's sessions into runs of the
    keys in ``known`` to recover, and leftovers to kill and remove. ``watched`` are the
    sessions this gateway already watches. Blocking."""
    sessions = server.session_names()
    handled: set[str] = set(watched)
    found: list[tuple[RunRecord, RecoveryState]] = []
    entries = sorted(run_dir.iterdir()) if run_dir.is_dir() else []
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
            server.end_run(name, remove_dir=True)
            continue
        if record.key not in known:
            log.info("removing the run of unknown session %s (%s)", record.key, name)
            server.end_run(name, remove_dir=True)
            continue
        alive = name in sessions
        if (path / EXIT_FILE).exists():
            if alive:  # only with remain-on-exit, which our server does not set
                server.kill_session(name)
            found.append((record, "finished"))
        else:
            found.append((record, "running" if alive else "lost"))
    for name in sorted(sessions - handled):
        if is_session_name(name):
            log.info("killing tmux session %s: no run of a known session", name)
            server.end_run(name, remove_dir=False)
    return found


def _ignore_progress(_progress: Progress) -> None:
    return None
