"""Command palette: go to any session by typing part of its key, project, agent or state."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from mpg_tui.core.api import SessionInfo
from mpg_tui.tui.screens.main_screen import MainScreen

DISCOVER = 10
"""Sessions offered before anything is typed: the busiest, most recent ones."""


class SessionsProvider(Provider):
    def _screen(self) -> MainScreen | None:
        screen = self.screen
        return screen if isinstance(screen, MainScreen) else None

    def _title(self, screen: MainScreen, info: SessionInfo) -> str:
        project = screen.project_names.get(info.project_key, info.project_key)
        return f"Go to session {info.key} · {project} · {info.agent or 'default'} · {info.state}"

    async def discover(self) -> Hits:
        screen = self._screen()
        if screen is None:
            return
        busy = sorted(screen.sessions.values(), key=lambda s: (s.state != "idle", s.last_activity), reverse=True)
        for info in busy[:DISCOVER]:
            yield DiscoveryHit(self._title(screen, info), partial(screen.select_session, info.key))

    async def search(self, query: str) -> Hits:
        screen = self._screen()
        if screen is None:
            return
        matcher = self.matcher(query)
        for info in list(screen.sessions.values()):
            title = self._title(screen, info)
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(screen.select_session, info.key), text=title)
