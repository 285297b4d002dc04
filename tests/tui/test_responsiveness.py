"""A thousand sessions and a burst of events: the cockpit keeps up and stays consistent.

No timing here (that is the benchmark's job): these prove the burst is applied as one
batch, every row ends up matching the core, and a key pressed right after still works.
"""

from __future__ import annotations

import random

from mpg_tui.core.clock import FakeClock
from mpg_tui.tui.app import CockpitApp
from tests.tui.conftest import Launches, settle
from tests.tui.fake_core import DOCS, INFRA, SHOP, FakeCore

SESSIONS = 1000
BURST = 200


def busy_core(clock: FakeClock) -> FakeCore:
    core = FakeCore(clock)
    projects = [SHOP, DOCS, INFRA]
    for n in range(SESSIONS):
        key = f"{1_300_000_000_000_000_000 + n}:engineer"
        core.add_session(key, projects[n % 3], session_id=f"{n:08x}-0000", ago=n)
    return core


def burst(core: FakeCore, rng: random.Random) -> set[str]:
    """200 events over many sessions: runs start, report progress and finish."""
    keys = [s.key for s in core.sessions()]
    touched: set[str] = set()
    running: list[str] = []
    for _ in range(BURST):
        roll = rng.random()
        if running and roll < 0.25:
            key = running.pop(rng.randrange(len(running)))
            core.finish_run(key, cost_usd=0.01)
        elif running and roll < 0.75:
            key = rng.choice(running)
            core.progress(key, "src/main.py", tool="Read")
        else:
            key = rng.choice(keys)
            info = core.session(key)
            assert info is not None
            if info.state != "running":
                core.start_run(key, info.project_key)
                running.append(key)
        touched.add(key)
    return touched


async def test_a_burst_over_a_thousand_sessions_is_one_batch_and_keys_still_work(
    clock: FakeClock, launches: Launches
) -> None:
    core = busy_core(clock)
    app = CockpitApp(core, clock=clock, launcher=launches, environ={})
    async with app.run_test(size=(200, 50)) as pilot:
        table = app.main.table
        assert table.row_count == SESSIONS
        before = app.batches_applied

        touched = burst(core, random.Random(7))
        await pilot.press("down", "down")
        await pilot.press("l")
        await settle(pilot, clock)

        assert app.batches_applied - before == 1
        assert not app.main.event_log.display
        assert table.cursor_row == 2
        assert app.main.selected_key == table.visible_keys()[2]
        assert table.row_count == SESSIONS
        for info in core.sessions():
            assert table.get_cell(info.key, "state").plain.endswith(info.state), info.key
        for key in touched:
            info = core.session(key)
            assert info is not None
            assert table.get_cell(key, "cost").plain == ("—" if not info.cost_usd else f"${info.cost_usd:.3f}")
        assert app.main.header.totals == core.totals()


async def test_a_steady_stream_is_applied_at_most_once_per_refresh_interval(
    clock: FakeClock, launches: Launches
) -> None:
    core = busy_core(clock)
    app = CockpitApp(core, clock=clock, launcher=launches, environ={}, refresh_interval=0.1)
    async with app.run_test(size=(200, 50)) as pilot:
        key = core.sessions()[0].key
        core.start_run(key, SHOP)
        await pilot.pause()
        first = app.batches_applied
        # Events keep coming while the clock stands still: they wait for the next slot.
        for n in range(20):
            core.progress(key, f"step {n}")
            await pilot.pause()
        assert app.batches_applied == first
        clock.advance(0.1)
        await pilot.pause()
        assert app.batches_applied == first + 1
        assert app.main.query_one("#detail-progress") is not None
        info = app.main.sessions[key]
        assert info.progress[-1] == "step 19"


async def test_a_cursor_move_is_kept_when_a_batch_of_events_lands_before_its_highlight_message(
    clock: FakeClock, launches: Launches
) -> None:
    core = busy_core(clock)
    app = CockpitApp(core, clock=clock, launcher=launches, environ={})
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot, clock)
        table = app.main.table
        table.focus()
        before = table.selected_key
        table.action_cursor_down()  # the key press; its RowHighlighted message is still queued
        table.apply(core.sessions()[:50], (), clock.now())  # a batch of events lands first
        await settle(pilot, clock)
        assert table.selected_key != before
        assert table.selected_key == table.key_at_cursor()
