"""Pictures of the cockpit over the real gateway in the demo world, on a frozen clock: any visual change shows up here.

Update the baselines with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after
looking at the report, and commit ``tests/tui/__snapshots__/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.demo_world import DOCS, SEARCH, SHOP, demo_world, open_day, play_demo
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp
from tests.tui.conftest import Launches, settle

SnapCompare = Callable[..., bool]


class DemoCockpit(CockpitApp):
    """The cockpit on a world it shuts down with it (the snapshot runs the app in its own event loop)."""

    def __init__(self, world: World, **kwargs: Any) -> None:
        super().__init__(world.gateway, **kwargs)
        self.world = world

    async def on_unmount(self) -> None:
        super().on_unmount()
        await self.world.close()


def cockpit(tmp_path: Path, clock: FakeClock, launches: Launches, **kwargs: Any) -> DemoCockpit:
    world = demo_world(tmp_path, clock)
    return DemoCockpit(
        world, clock=clock, launcher=launches, environ={}, dashboard_url="http://127.0.0.1:3100", **kwargs
    )


def after_demo(select: str | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DemoCockpit)
        await app.ready.wait()  # snap_compare calls this before the main screen is mounted
        for field in app.main.query(Input):
            field.cursor_blink = False  # blinking runs on wall time: a picture must not catch it mid-blink
        await open_day(app.world)
        await play_demo(app.world)
        await settle(pilot, app.world.clock)
        if select is not None:
            app.main.select_session(select)
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare: SnapCompare, tmp_path: Path, clock: FakeClock, launches: Launches) -> None:
    app = cockpit(tmp_path, clock, launches)
    assert snap_compare(app, terminal_size=(200, 50), run_before=after_demo(f"{SEARCH}:engineer"))


def test_detail_of_a_finished_agent_turn(
    snap_compare: SnapCompare, tmp_path: Path, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(tmp_path, clock, launches)
    assert snap_compare(app, terminal_size=(200, 50), run_before=after_demo(f"{SEARCH}:pm"))


def test_kill_confirmation(snap_compare: SnapCompare, tmp_path: Path, clock: FakeClock, launches: Launches) -> None:
    app = cockpit(tmp_path, clock, launches)
    assert snap_compare(app, terminal_size=(200, 50), press=["k"], run_before=after_demo(f"{SEARCH}:engineer"))


def test_narrow_terminal_with_demo_chat(
    snap_compare: SnapCompare, tmp_path: Path, clock: FakeClock, launches: Launches
) -> None:
    app = cockpit(tmp_path, clock, launches, demo_channel_ids=[(SHOP, "#shop-api"), (DOCS, "#docs-site")])
    assert snap_compare(app, terminal_size=(120, 35), run_before=after_demo(f"{SEARCH}:engineer"))
