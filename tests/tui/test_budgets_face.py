"""Budgets in the cockpit: today's spend against each daily budget in the header, a paused thread
marked in the threads pane, and the operator's continue (the palette's "continue")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import BudgetContinued, BudgetPaused
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.widgets.cockpit_header import CockpitHeader
from mpg_tui.tui.widgets.threads_pane import ThreadsPane
from tests.tui.conftest import Launches, installed, plain, settle, until, watch_notes

SHOP = "1100000000000000001"
THREAD = "1300000000000000055"
CONFIG = {
    "projects": {
        SHOP: {"name": "shop-api", "directory": "/srv/mpg/shop-api", "maxThreadCostUsd": 1.0, "dailyBudgetUsd": 5.0}
    }
}


@pytest.fixture
async def budget_world(clock: FakeClock, tmp_path: Path) -> AsyncIterator[World]:
    world = World(CONFIG, tmp_path, clock=clock)
    world.connect("ready")
    yield world
    await world.close()


async def test_the_header_shows_todays_spend_and_a_paused_thread_continues_from_the_cockpit(
    budget_world: World, clock: FakeClock, launches: Launches
) -> None:
    world = budget_world
    app = CockpitApp(world.gateway, clock=clock, launcher=launches, environ={}, which=installed)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.ready.wait()
        notes = watch_notes(app)
        assert await world.ask(SHOP, "spend it", message_id=THREAD) == THREAD
        paused = world.expect(lambda e: isinstance(e, BudgetPaused))
        await world.finish(THREAD, cost_usd=1.25)
        await paused
        await settle(pilot, clock)

        header = app.main.query_one(CockpitHeader)
        await until(pilot, lambda: "today shop-api $1.25/$5" in plain(header.render(), 200))
        threads = app.main.query_one(ThreadsPane)
        lines = [plain(threads.get_option_at_index(i).prompt, 200) for i in range(threads.option_count)]
        assert any("⏸ paused (thread budget)" in line for line in lines)

        assert app.main.select_session(THREAD)
        continued = world.expect(lambda e: isinstance(e, BudgetContinued))
        app.action_continue_thread()
        event = await continued
        assert isinstance(event, BudgetContinued) and event.by == "the operator"
        await until(pilot, lambda: "Continued by the operator" in notes.text())
        assert world.gateway.budgets().paused == []
