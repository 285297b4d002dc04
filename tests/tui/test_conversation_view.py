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

from mpg_tui.core.clock import FakeClock
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.widgets.conversation_view import ConversationView
from tests.tui.conftest import Launches, settle
from tests.unit.scripted_gateway import THREAD, Scripted

SnapCompare = Callable[..., bool]


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
        app.main.tick()  # the once-a-second refresh runs on real time: run it here, at a fixed moment
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
