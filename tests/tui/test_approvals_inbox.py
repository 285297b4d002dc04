"""The cockpit's approvals inbox: a count in the header, the list, and deciding as the operator.

Claude asks through the real gateway's broker: a run the scripted runner holds open asks
for a tool the way the CLI's ``can_use_tool`` does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import ApprovalRequested
from mpg_tui.core.permissions import PermissionDecision
from mpg_tui.sandbox.demo_world import CERTS, SEARCH, open_day, play_demo
from mpg_tui.sandbox.world import World
from mpg_tui.tui.screens.approvals_screen import ApprovalsScreen
from mpg_tui.tui.widgets.session_detail import SessionDetail
from tests.tui.conftest import Launches, plain, settle, until
from tests.tui.test_snapshots import DemoCockpit, SnapCompare, cockpit

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


async def two_requests(world: World) -> list[asyncio.Task[PermissionDecision]]:
    """After the demo's traffic: the engineer wants to run the tests, devops asks a question."""
    await open_day(world)
    await play_demo(world)
    asking = []
    for key, tool, tool_input in [
        (f"{SEARCH}:engineer", "Bash", {"command": "python3 -m pytest -q tests/search"}),
        (f"{CERTS}:devops", "AskUserQuestion", QUESTION),
    ]:
        requested = world.expect(lambda e, key=key: isinstance(e, ApprovalRequested) and e.key == key)
        asking.append(world.live(key).ask(tool, tool_input))
        await requested
    return asking


async def test_the_inbox_lists_what_waits_and_the_operator_decides_it(
    tmp_path: Path, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(tmp_path, clock, launches)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.ready.wait()
        asking = await two_requests(app.world)
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
        first = await asking[0]
        assert (first.outcome, first.decided_by) == ("allow_session", "the operator")
        await settle(pilot, clock)
        assert table.row_count == 1
        await pilot.press("2")
        assert (await asking[1]).answers == {"Which database?": "SQLite"}
        await settle(pilot, clock)
        assert table.row_count == 0
        assert "waiting for you" not in plain(app.main.header.render(), 200)


def test_approvals_inbox(snap_compare: SnapCompare, tmp_path: Path, clock: FakeClock, launches: Launches) -> None:
    app: DemoCockpit = cockpit(tmp_path, clock, launches)

    async def run_before(pilot: Pilot[Any]) -> None:
        await app.ready.wait()
        await two_requests(app.world)
        await settle(pilot, clock)
        await pilot.press("i")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(200, 50), run_before=run_before)


async def test_the_selected_sessions_detail_shows_what_it_waits_for_and_how_to_decide(
    tmp_path: Path, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(tmp_path, clock, launches)
    async with app.run_test(size=(200, 50)) as pilot:
        await app.ready.wait()
        asking = await two_requests(app.world)
        await settle(pilot, clock)
        detail = app.main.query_one(SessionDetail)
        key = f"{SEARCH}:engineer"
        assert app.main.select_session(key)
        await until(pilot, lambda: detail.info is not None and detail.info.key == key)
        head = " ".join(plain(detail.query_one("#detail-head", Static).content, 200).split())
        assert "waits for approval: Bash python3 -m pytest -q tests/search · waiting " in head
        assert "i, then a allow · s allow for the session · d deny" in head

        clock.advance(60)  # the wait grows with the clock
        await until(pilot, lambda: "waiting 1m0" in plain(detail.query_one("#detail-head", Static).content, 200))

        await pilot.press("i")  # the inbox opens on this session's request
        assert isinstance(app.screen, ApprovalsScreen)
        assert app.screen.approvals_list.selected_id == app.main.waiting_for(key)[0].id
        await pilot.press("a")
        assert (await asking[0]).outcome == "allow"
        await pilot.press("escape")
        await settle(pilot, clock)
        assert not detail.waiting
        assert "waits for" not in plain(detail.query_one("#detail-head", Static).content, 200)
        asking[1].cancel()
