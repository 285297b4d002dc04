"""The files of a session outside the store: the directory claude runs in, and attachments.

A session runs claude in its own git worktree (projects with ``worktrees``) or in the
project directory. This module chooses and creates that directory, removes the worktree
and the session's attachments when the session goes, and tidies both at start-up for
sessions that no longer exist. Removal problems are logged, not raised: a file left
behind must not stop a kill or a start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

from mpg_tui.core.attachments import cleanup_attachments, sweep_attachments
from mpg_tui.core.session_state import LiveSession, project_dir_of
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.workspace import WorkspaceError, Workspaces

log = logging.getLogger(__name__)

RECONCILE_AT_ONCE = 8
"""Projects whose worktrees are checked at the same time at start-up."""


async def prepare_workspace(session: LiveSession, worktrees: Workspaces | None) -> None:
    """Choose the directory ``session`` runs claude in, creating its worktree if needed; once per session."""
    async with session.workspace_lock:
        if not session.workspace_ready:
            await _choose_workspace(session, worktrees)


async def _choose_workspace(session: LiveSession, worktrees: Workspaces | None) -> None:
    project_dir = project_dir_of(session.project)
    use_worktree = worktrees is not None and session.project.worktrees
    if session.cwd is not None and not await asyncio.to_thread(session.cwd.is_dir):
        if use_worktree and session.worktree_path is not None:
            session.cwd = None  # recreated below at the same path, so the claude session still resumes
        else:
            log.warning("stored directory %s of %s is gone; using %s", session.cwd, session.key, project_dir)
            session.cwd = project_dir
    if session.cwd is None:
        if use_worktree and worktrees is not None:
            workspace = await worktrees.workspace(project_dir, session.key)
            session.cwd, session.worktree_path = workspace.cwd, workspace.worktree_path
            project_dir = workspace.project_dir
        else:
            session.cwd, session.worktree_path = project_dir, None
    session.project_dir = session.project_dir or project_dir
    session.workspace_ready = True


async def reconcile_all_worktrees(worktrees: Workspaces, directories: Iterable[Path], known: list[str]) -> None:
    """Remove worktrees in ``directories`` that belong to no session in ``known``."""
    at_once = asyncio.Semaphore(RECONCILE_AT_ONCE)

    async def reconcile(directory: Path) -> None:
        async with at_once:
            try:
                await worktrees.reconcile(directory, known)
            except WorkspaceError as exc:
                log.warning("could not reconcile worktrees of %s: %s", directory, exc)

    # Side by side (a few at a time): each is a few git processes, and 100 projects one
    # after the other added ~200 ms to every start (bench/scale.py).
    await asyncio.gather(*(reconcile(directory) for directory in sorted(directories)))


async def sweep_all_attachments(directories: Iterable[Path], known: list[str]) -> None:
    """Remove attachments of sessions that were killed or expired without their files going."""

    def sweep() -> None:  # one thread for all: a start with many projects must stay quick
        for directory in sorted(directories):
            try:
                sweep_attachments(directory, known)
            except OSError as exc:
                log.warning("could not sweep attachments in %s: %s", directory, exc)

    await asyncio.to_thread(sweep)


async def remove_attachments(key: str, cwd: Path | None) -> None:
    """Remove the attachments session ``key`` received in ``cwd``."""
    if cwd is None:
        return
    try:
        if await asyncio.to_thread(cleanup_attachments, cwd, key):
            log.info("removed the attachments of session %s", key)
    except OSError as exc:
        log.warning("could not remove the attachments of %s in %s: %s", key, cwd, exc)


async def remove_worktree(
    worktrees: Workspaces | None, key: str, session: LiveSession | None, stored: StoredSession | None
) -> str | None:
    """Remove the session's worktree; the branch its unmerged work was kept under, if any."""
    if worktrees is None:
        return None
    # A live session on a worktree project may have been killed mid-creation, before
    # its path was known: try anyway.
    may_have_worktree = (session is not None and (session.worktree_path is not None or session.project.worktrees)) or (
        stored is not None and stored.worktree_path is not None
    )
    if not may_have_worktree:
        return None
    if session is not None and session.project_dir is not None:
        project_dir = session.project_dir
    elif stored is not None and stored.project_dir:
        project_dir = Path(stored.project_dir)
    elif session is not None:
        project_dir = project_dir_of(session.project)
    else:
        return None
    try:
        removal = await worktrees.remove(project_dir, key)
    except WorkspaceError as exc:
        log.warning("could not remove the worktree of %s: %s", key, exc)
        return None
    return removal.kept_branch
