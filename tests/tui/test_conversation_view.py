"""The conversation view on the real Gateway over a scripted runner: what a thread said, newest last.

A FakeClock stamps every event and drives the cockpit, so the picture is the same on any
machine at any time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from mpg_tui.config import parse_config
from mpg_tui.core.bus import EventBus
from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.core.ports import InboundMessage
from mpg_tui.core.sessions import SessionManager
from mpg_tui.core.store import SessionStore
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.widgets.conversation_view import ConversationView
from tests.tui.conftest import Launches, settle
from tests.unit.fake_runner import FakeRunner
from tests.unit.scripted_gateway import RecordingChat

SnapCompare = Callable[..., bool]
CHANNEL = "120000000000000001"
THREAD = "120000000000000500"
PROJECT_DIR = "/srv/mpg/webshop"


class Scripted:
    """A real gateway (sessions, holds, conversation book) whose claude is a script."""

    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        config = parse_config(
            {"projects": {CHANNEL: {"name": "webshop", "directory": PROJECT_DIR, "worktrees": False, "agents": ["pm"]}}}
        )
        self.clock = clock
        self.bus = EventBus(clock)
        self.runner = FakeRunner()
        self.chat = RecordingChat()
        self.sessions = SessionManager(
            config=config,
            store=SessionStore(tmp_path / "sessions.json", clock=clock),
            runners={"direct": self.runner},
            bus=self.bus,
            clock=clock,
            worktrees=None,
            child_env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home")},
        )
        self.gateway = Gateway(config=config, sessions=self.sessions, bus=self.bus, clock=clock, chat=self.chat)
        self._ids = 600

    async def say(self, content: str, *, opener: bool = False) -> None:
        self._ids += 1
        message = InboundMessage(
            id=THREAD if opener else str(self._ids),
            channel_id=CHANNEL if opener else THREAD,
            parent_channel_id=None if opener else CHANNEL,
            author_id="7",
            author_name="ann",
            content=content,
        )
        self.clock.advance(30)
        await self.gateway.handle_message(message)

    async def play(self) -> None:
        """A thread: a plan, a handoff-free reply, a hold with a message waiting, the hand-back."""
        await self.say("@pm plan a dark-mode toggle for the settings page", opener=True)
        self.clock.advance(60)
        grant = await self.gateway.hold(THREAD + ":pm", "cockpit, ann@laptop", lease_s=120)
        waiting = asyncio.create_task(self.say("@pm and mention the contrast checks"))
        await self.chat.until("open in a terminal", THREAD)
        self.clock.advance(20)  # within the lease: the holder hands it back itself
        await self.gateway.release_hold(grant.hold_id)
        await waiting


@pytest.fixture
def scripted(tmp_path: Path, clock: FakeClock) -> Scripted:
    return Scripted(tmp_path, clock)


def cockpit(scripted: Scripted, launches: Launches) -> CockpitApp:
    return CockpitApp(scripted.gateway, clock=scripted.clock, launcher=launches, environ={}, refresh_interval=0.0)


def played(scripted: Scripted) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CockpitApp)
        await app.ready.wait()
        await scripted.play()
        await settle(pilot, scripted.clock)
        assert app.main.select_session(THREAD + ":pm")
        await settle(pilot, scripted.clock)
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def test_conversation_view(snap_compare: SnapCompare, scripted: Scripted, launches: Launches) -> None:
    app = cockpit(scripted, launches)
    assert snap_compare(app, terminal_size=(200, 50), run_before=played(scripted))


async def test_the_conversation_view_follows_the_selected_thread_live(scripted: Scripted, launches: Launches) -> None:
    app = cockpit(scripted, launches)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.ready.wait()
        await scripted.say("@pm plan a dark-mode toggle", opener=True)
        await settle(pilot, scripted.clock)
        assert app.main.select_session(THREAD + ":pm")
        view = app.main.query_one(ConversationView)

        async def shows(count: int) -> list[str]:
            async with asyncio.timeout(10):
                while len(view.entries) < count:
                    await settle(pilot, scripted.clock)
                    await app.workers.wait_for_complete()
            return view.shown_text()

        assert await shows(2) == ["ann: @pm plan a dark-mode toggle", "@pm: echo: plan a dark-mode toggle"]
        await scripted.say("@pm thanks")
        assert (await shows(4))[2:] == ["ann: @pm thanks", "@pm: echo: thanks"]

        await pilot.press("v")
        assert not view.display
        await pilot.press("v")
        assert view.display
