"""Pictures of the cockpit on a frozen clock with fixed data: any visual change shows up here.

Update the baselines with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after
looking at the report, and commit ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from textual.pilot import Pilot

from mpg_tui.core.clock import FakeClock
from mpg_tui.tui.app import CockpitApp
from tests.tui.conftest import Launches, settle
from tests.tui.fake_core import DOCS, SEARCH, SHOP, FakeCore, play_demo

SnapCompare = Callable[..., bool]


def cockpit(core: FakeCore, clock: FakeClock, launches: Launches, **kwargs: Any) -> CockpitApp:
    return CockpitApp(core, clock=clock, launcher=launches, environ={}, dashboard_url="http://127.0.0.1:3100", **kwargs)


def after_demo(core: FakeCore, clock: FakeClock, select: str | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CockpitApp)
        await app.ready.wait()  # snap_compare calls this before the main screen is mounted
        play_demo(core)
        await settle(pilot, clock)
        if select is not None:
            app.main.select_session(select)
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare: SnapCompare, core: FakeCore, clock: FakeClock, launches: Launches) -> None:
    app = cockpit(core, clock, launches)
    assert snap_compare(app, terminal_size=(200, 50), run_before=after_demo(core, clock, f"{SEARCH}:engineer"))


def test_detail_of_a_finished_agent_turn(
    snap_compare: SnapCompare, core: FakeCore, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(core, clock, launches)
    assert snap_compare(app, terminal_size=(200, 50), run_before=after_demo(core, clock, f"{SEARCH}:pm"))


def test_kill_confirmation(snap_compare: SnapCompare, core: FakeCore, clock: FakeClock, launches: Launches) -> None:
    app = cockpit(core, clock, launches)
    assert snap_compare(
        app, terminal_size=(200, 50), press=["k"], run_before=after_demo(core, clock, f"{SEARCH}:engineer")
    )


def test_narrow_terminal_with_demo_chat(
    snap_compare: SnapCompare, core: FakeCore, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(core, clock, launches, demo_channel_ids=[(SHOP, "#shop-api"), (DOCS, "#docs-site")])
    assert snap_compare(app, terminal_size=(120, 35), run_before=after_demo(core, clock, f"{SEARCH}:engineer"))
