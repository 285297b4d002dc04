"""The core's port for where a session's claude runs: a per-session workspace.

:class:`~mpg_tui.worktrees.WorktreeManager` implements it with git worktrees; the core
only sees :class:`Workspaces`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class WorkspaceError(Exception):
    """A workspace could not be made, removed or checked; the message says which and why."""


@dataclass(frozen=True)
class Workspace:
    """Where a session's claude runs."""

    cwd: Path
    worktree_path: Path | None
    """The worktree's root, or None when the session uses the plain project directory."""
    project_dir: Path


@dataclass(frozen=True)
class Removal:
    """What removing a session's workspace did."""

    removed: bool
    """Whether there was anything (a worktree, a directory, a branch) to remove."""
    kept_branch: str | None = None
    """The name the session's branch was kept under, because it held commits found nowhere
    else in the project's current branch; None when it was deleted or there was none."""


class Workspaces(ABC):
    """Creates, removes and reconciles per-session workspaces of project directories."""

    @abstractmethod
    async def workspace(self, project_dir: Path, key: str) -> Workspace:
        """Session ``key``'s workspace, made if needed; falls back to the project directory
        itself (logged) rather than failing, so a message is never lost to it."""

    @abstractmethod
    async def remove(self, project_dir: Path, key: str) -> Removal:
        """Remove session ``key``'s workspace, keeping work nobody merged. Raises WorkspaceError."""

    @abstractmethod
    async def reconcile(self, project_dir: Path, known_keys: Iterable[str]) -> list[str]:
        """Remove the workspaces of sessions not in ``known_keys`` (keeping work nobody merged);
        returns what was removed. Raises WorkspaceError."""
