"""The cockpit's approvals inbox: a count in the header, the list, and deciding as the operator."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from mpg_tui.core.clock import FakeClock
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.screens.approvals_screen import ApprovalsScreen
from tests.tui.conftest import Launches, plain, settle
from tests.tui.fake_core import SEARCH, SHOP, FakeCore, play_demo
from tests.tui.test_snapshots import SnapCompare, cockpit

QUESTION = {
    "questions": [
        {
            "question": "Which database?",
            "header": "DB",
            "options": [{"label": "Postgres", "description": ""}, {"label": "SQLite", "description": ""}],
            "multiSelect": False,
        }
    ]
}


async def test_the_inbox_lists_what_waits_and_the_operator_decides_it(
    core: FakeCore, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(core, clock, launches)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.ready.wait()
        play_demo(core)
        core.ask(f"{SEARCH}:engineer", SHOP, "Bash", {"command": "python3 -m pytest"})
        core.ask(f"{SEARCH}:engineer", SHOP, "AskUserQuestion", QUESTION, by="bo")
        await settle(pilot, clock)
        assert "2 waiting for you" in plain(app.main.header.render(), 200)

        await pilot.press("i")
        screen = app.screen
        assert isinstance(screen, ApprovalsScreen)
        table = screen.approvals_list
        assert table.row_count == 2
        assert "python3 -m pytest" in str(table.get_row_at(0)[2])
        assert "1 Postgres · 2 SQLite" in str(table.get_row_at(1)[2])

        await pilot.press("s")  # allow the command for the session
        await pilot.pause()
        first = await core.asking[0]
        assert (first.outcome, first.decided_by) == ("allow_session", "the operator")
        assert table.row_count == 1
        await pilot.press("2")
        assert (await core.asking[1]).answers == {"Which database?": "SQLite"}
        await settle(pilot, clock)
        assert table.row_count == 0
        assert "waiting for you" not in plain(app.main.header.render(), 200)


def test_approvals_inbox(snap_compare: SnapCompare, core: FakeCore, clock: FakeClock, launches: Launches) -> None:
    app: CockpitApp = cockpit(core, clock, launches)

    async def run_before(pilot: Pilot[Any]) -> None:
        await app.ready.wait()
        play_demo(core)
        core.ask(f"{SEARCH}:engineer", SHOP, "Bash", {"command": "python3 -m pytest -q tests/search"})
        core.ask(f"{SEARCH}:engineer", SHOP, "AskUserQuestion", QUESTION, by="bo")
        await settle(pilot, clock)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(200, 50), run_before=run_before)
