"""The runners a gateway has, and which of them runs a project's sessions.

A project names the runner it wants (``persistence``: direct or tmux); when that one is
not available its sessions fall back to the direct runner (or any), with one warning per
project. Calls that concern every runner (acknowledge, close) go through here, each
failure logged so one runner's problem does not stop the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mpg_tui.config import ProjectView
from mpg_tui.core.events import RunnerKind
from mpg_tui.core.runner import Runner

log = logging.getLogger(__name__)


class RunnerSet:
    """Runners by kind; :meth:`for_project` picks the one a project's sessions run on."""

    def __init__(self, runners: Mapping[RunnerKind, Runner]) -> None:
        if not runners:
            raise ValueError("SessionManager needs at least one runner")
        self._runners = dict(runners)
        self._warned: set[str] = set()

    def for_project(self, project: ProjectView) -> Runner:
        runner = self._runners.get(project.persistence)
        if runner is not None:
            return runner
        fallback = self._runners.get("direct") or next(iter(self._runners.values()))
        if project.key not in self._warned:
            self._warned.add(project.key)
            log.warning(
                "project %s wants the %s runner, which is not available; using %s",
                project.name,
                project.persistence,
                fallback.kind,
            )
        return fallback

    async def acknowledge(self, key: str) -> None:
        """Let every runner drop what it kept for ``key``'s last run."""
        for runner in self._runners.values():
            try:
                await runner.acknowledge(key)
            except Exception:
                log.exception("the %s runner could not acknowledge %s", runner.kind, key)

    async def close(self) -> None:
        """Close each runner once (one runner may serve several kinds)."""
        for runner in {id(r): r for r in self._runners.values()}.values():
            try:
                await runner.close()
            except Exception:
                log.exception("closing the %s runner failed", runner.kind)


async def release(runner: Runner, key: str) -> None:
    """Close what ``runner`` keeps for ``key`` (a warm claude); a failure is logged."""
    try:
        await runner.release(key)
    except Exception:
        log.exception("releasing idle session %s failed", key)
