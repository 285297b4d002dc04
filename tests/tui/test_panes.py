"""The panes follow the core's events and the operator's selection (the real gateway in the demo world)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select, Static

from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.demo_world import (
    BACKUPS,
    DOCS,
    INFRA,
    NIGHTLY,
    RESTORED,
    RESTORED_SESSION_ID,
    SEARCH,
    SHOP,
    play_demo,
)
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.screens.main_screen import CONVERSATION_REST_S
from mpg_tui.tui.widgets.chain_pane import ChainPane
from mpg_tui.tui.widgets.conversation_view import ConversationView
from mpg_tui.tui.widgets.event_log import LogLines
from mpg_tui.tui.widgets.projects_pane import ProjectsPane
from mpg_tui.tui.widgets.session_detail import SessionDetail
from mpg_tui.tui.widgets.sessions_table import SessionsTable
from mpg_tui.tui.widgets.threads_pane import ThreadsPane
from tests.tui.conftest import plain, settle, until

SIZE = (200, 50)


def cell(app: CockpitApp, key: str, column: str) -> str:
    return app.main.table.get_cell(key, column).plain


async def test_sessions_table_shows_what_the_core_had_at_start(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE):
        table = app.main.table
        assert sorted(table.visible_keys()) == sorted([RESTORED, f"{BACKUPS}:devops", f"{NIGHTLY}:devops"])
        assert cell(app, RESTORED, "cost") == "$0.212"
        assert cell(app, RESTORED, "last") == "3h ago"
        assert cell(app, f"{BACKUPS}:devops", "runner") == "tmux"
        assert cell(app, f"{NIGHTLY}:devops", "state").endswith("recovering")


async def test_run_started_and_finished_update_the_row(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    runs_before = world.gateway.totals().runs
    async with app.run_test(size=SIZE) as pilot:
        key = f"{SEARCH}:pm"
        assert await world.ask(SHOP, "@pm plan the search box", message_id=SEARCH) == key
        await settle(pilot, clock)
        assert key in app.main.table.visible_keys()
        assert cell(app, key, "state") == "● running"
        assert cell(app, key, "session_id") == "—"

        await world.finish(key, session_id="feedface-0000", cost_usd=0.5, input_tokens=1000, output_tokens=200)
        await settle(pilot, clock)
        assert cell(app, key, "state") == "○ idle"
        assert cell(app, key, "session_id") == "feedface"
        assert cell(app, key, "cost") == "$0.500"
        assert cell(app, key, "tokens") == "1.2k"
        assert app.main.header.totals.runs == runs_before + 1
        assert app.main.header.totals == world.gateway.totals()


async def test_a_failed_run_is_marked_and_its_error_shown(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await world.ask(RESTORED, "publish v2.4 too")
        await world.fail(RESTORED, "API Error: 529 overloaded", kind="overloaded")
        await settle(pilot, clock)
        assert cell(app, RESTORED, "state") == "✗ idle"
        app.main.select_session(RESTORED)
        await pilot.pause()
        head = " ".join(plain(app.main.query_one("#detail-head", Static).content).split())
        assert "API Error: 529 overloaded" in head
        assert app.main.header.totals.failures == 1
        assert app.main.header.totals == world.gateway.totals()


async def test_killed_sessions_leave_the_table_and_the_cursor_moves_on(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        first = app.main.table.key_at_cursor()
        assert first is not None
        assert await world.gateway.kill(first)
        await settle(pilot, clock)
        assert first not in app.main.table.visible_keys()
        assert app.main.selected_key == app.main.table.key_at_cursor() != first


async def test_progress_lines_appear_in_the_detail_of_the_selected_session(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        key = f"{SEARCH}:engineer"
        assert await world.ask(SHOP, "@engineer build the search box", message_id=SEARCH) == key
        await settle(pilot, clock)
        assert app.main.select_session(key)
        world.progress(key, "src/app.py", tool="Read")
        world.progress(key, "Writing the search hook now.")
        await settle(pilot, clock)
        detail = app.main.query_one(SessionDetail)
        assert detail.info is not None and detail.info.key == key
        progress = plain(app.main.query_one("#detail-progress").content)  # type: ignore[attr-defined]
        assert "Read: src/app.py" in progress
        assert "▸ Writing the search hook now." in progress


async def test_detail_shows_cwd_and_the_resume_command(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.main.select_session(RESTORED)
        await pilot.pause()
        # Drawn for the pane's width: the command may fold over two lines.
        head = " ".join(plain(app.main.query_one("#detail-head", Static).content).split())
        assert "/srv/mpg/docs-site" in head
        assert f"cd /srv/mpg/docs-site && claude --resume {RESTORED_SESSION_ID}" in head


async def test_the_detail_head_is_drawn_again_for_a_new_width(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.main.select_session(RESTORED)
        await pilot.pause()
        head = app.main.query_one("#detail-head", Static)

        def drawn() -> list[str]:
            return [line.rstrip() for line in plain(head.content, width=500).splitlines()]

        wide = drawn()
        assert max(len(line) for line in wide) > 40

        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        narrow = drawn()
        assert head.content_region.width < 40
        assert max(len(line) for line in narrow) <= head.content_region.width
        assert len(narrow) > len(wide)  # the long values folded over more lines
        assert "".join(narrow).replace(" ", "").count("--resume") == 1


async def select_shop(app: CockpitApp, pilot: Pilot[Any], world: World) -> set[str]:
    """Select the webshop in the projects pane (focused), as the operator would; its threads."""
    projects = app.main.query_one(ProjectsPane)
    projects.focus()
    projects.highlighted = projects.get_option_index(SHOP)
    await until(pilot, lambda: app.main.selected_project == SHOP)
    return {s.thread_id for s in world.gateway.sessions() if s.project_key == SHOP}


async def test_selecting_a_project_lists_only_its_threads(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await play_demo(world)
        await settle(pilot, clock)
        threads = app.main.query_one(ThreadsPane)
        shop_threads = await select_shop(app, pilot, world)
        assert len(shop_threads) == 2
        assert set(threads.thread_ids) == shop_threads
        await pilot.press("down")  # the next project: docs-site
        await until(pilot, lambda: app.main.selected_project == DOCS)
        assert set(threads.thread_ids) == {s.thread_id for s in world.gateway.sessions() if s.project_key == DOCS}
        assert threads.border_title == "Threads · docs-site"


async def test_selecting_a_thread_selects_its_busiest_session_and_shows_its_chain(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await play_demo(world)
        await settle(pilot, clock)
        app.main.query_one(ProjectsPane).highlighted = app.main.query_one(ProjectsPane).get_option_index(SHOP)
        threads = app.main.query_one(ThreadsPane)
        await until(pilot, lambda: SEARCH in threads.thread_ids)
        threads.focus()
        threads.highlighted = threads.thread_ids.index(SEARCH)
        await until(pilot, lambda: app.main.selected_key == f"{SEARCH}:engineer")
        assert app.main.selected_thread == SEARCH
        assert app.main.selected_key == f"{SEARCH}:engineer"  # running beats the idle pm
        chain = plain(app.main.query_one(ChainPane).content)  # type: ignore[attr-defined]
        assert "turns 1/5" in chain  # one handoff so far: pm → engineer
        assert chain.index("pm") < chain.index("engineer")


async def test_moving_the_session_cursor_moves_project_and_thread_with_it(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await play_demo(world)
        await settle(pilot, clock)
        keys = app.main.table.visible_keys()
        target = keys.index(f"{BACKUPS}:devops")
        app.main.table.focus()
        app.main.table.move_cursor(row=0)
        await pilot.pause()
        for _ in range(target):
            await pilot.press("down")
        await until(pilot, lambda: app.main.selected_key == f"{BACKUPS}:devops")
        assert app.main.selected_project == INFRA
        assert app.main.selected_thread == BACKUPS
        assert app.main.query_one(ThreadsPane).selected_thread == BACKUPS


async def test_clicking_a_row_selects_it(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        keys = app.main.table.visible_keys()
        # Offsets inside the table's region: one for the border, one for the header row.
        await pilot.click(SessionsTable, offset=(4, 3))
        await pilot.pause()
        assert app.main.selected_key == keys[1]


async def test_connection_changes_reach_the_header(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.main.header.connection == "ready"
        world.connect("disconnected", "4004 authentication failed")
        await settle(pilot, clock)
        assert app.main.header.connection == "disconnected"
        assert app.main.header.connection_detail == "4004 authentication failed"
        assert any("Discord disconnected" in line for line in app.main.event_log.shown_lines())


async def test_relative_times_move_with_the_clock(make_app: Callable[..., CockpitApp], clock: FakeClock) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert cell(app, f"{BACKUPS}:devops", "last") == "40m ago"
        clock.advance(25 * 60)
        app.main.tick()
        await pilot.pause()
        assert cell(app, f"{BACKUPS}:devops", "last") == "1h ago"
        assert app.main.header.uptime == clock.now() - app.core.started_at


async def test_event_log_toggles_and_filters_by_level(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        key = await world.ask(DOCS, "hello")  # info: received, thread opened, started
        assert key is not None
        assert await world.ask(INFRA, "@devops give me prod access", author="mallory", roles=()) is None  # warn
        await world.fail(key, "broken")  # error
        clock.advance(5 * 3600)  # debug: idle sessions leave memory
        await settle(pilot, clock)
        log = app.main.event_log
        entries = log.entries
        assert {e.level for e in entries} == {"debug", "info", "warn", "error"}

        def shown_at(*levels: str) -> list[str]:
            return [e.text for e in entries if e.level in levels]

        assert log.display
        assert log.shown_lines() == shown_at("info", "warn", "error")
        assert [e.text for e in log.query_one(LogLines).entries] == log.shown_lines()

        log.query_one("#log-level", Select).value = "warn"
        await pilot.pause()
        assert log.shown_lines() == shown_at("warn", "error")
        assert "refused a message from mallory: missing role" in log.shown_lines()
        assert f"{key} failed: broken" in log.shown_lines()
        assert [e.text for e in log.query_one(LogLines).entries] == log.shown_lines()

        log.set_level("debug")
        await pilot.pause()
        assert log.shown_lines() == [e.text for e in entries]
        assert any(line.endswith("went idle and left memory") for line in log.shown_lines())
        assert log.query_one("#log-level", Select).value == "debug"

        await pilot.press("l")
        assert not log.display
        await pilot.press("l")
        assert log.display


def log_on_screen(app: CockpitApp) -> list[str]:
    """The event log's lines as drawn, top to bottom, without the time and level columns."""
    lines = app.main.event_log.query_one(LogLines)
    return [lines.render_line(y).text.rstrip() for y in range(lines.scrollable_content_region.height)]


async def test_event_log_shows_the_newest_at_the_bottom_without_laying_out_the_screen(
    make_app: Callable[..., CockpitApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        for i in range(40):  # more than the log shows: its scrollbar appears (a layout)
            app.main.log_entry("info", f"first {i}")
        await pilot.pause()
        layouts: list[bool] = []
        refresh_layout = app.main._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            layouts.append(True)
            refresh_layout(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(app.main, "_refresh_layout", counted)
        for i in range(25):
            app.main.log_entry("warn", f"then {i}")
            await pilot.pause()

        assert layouts == []
        shown = log_on_screen(app)
        assert shown[-1].endswith("then 24")
        assert shown[-2].endswith("then 23")
        assert " WARN " in shown[-1]

        lines = app.main.event_log.query_one(LogLines)
        lines.scroll_to(y=0, animate=False, immediate=True)  # the operator reads back: new lines leave the view be
        await pilot.pause()
        app.main.log_entry("info", "while reading")
        await pilot.pause()
        assert log_on_screen(app)[0].endswith("first 0")
        assert lines.entries[-1].text == "while reading"


async def test_the_conversation_follows_the_cursor_once_it_rests_on_a_thread(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await play_demo(world)
        await settle(pilot, clock)
        view = app.main.query_one(ConversationView)
        table = app.main.table
        keys = table.visible_keys()
        assert app.main.select_session(keys[0])
        await until(pilot, lambda: view.thread_id == world.session(keys[0]).thread_id)
        start = world.session(keys[0]).thread_id

        table.focus()
        for _ in keys:  # down the rows until one of another thread is under the cursor
            await pilot.press("down")
            if app.main.selected_thread != start:
                break
        moved_to = app.main.selected_thread
        assert moved_to not in (None, start)
        await pilot.pause()
        assert view.thread_id == start  # the cursor has not rested yet: no conversation read

        clock.advance(CONVERSATION_REST_S)
        await until(pilot, lambda: view.thread_id == moved_to)


async def test_moving_the_thread_highlight_repaints_the_two_threads_not_the_pane(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await play_demo(world)
        await settle(pilot, clock)
        shop_threads = await select_shop(app, pilot, world)
        pane = app.main.query_one(ThreadsPane)
        await until(pilot, lambda: set(pane.thread_ids) == shop_threads)
        first, second = pane.thread_ids
        pane.highlight_thread(first)
        await pilot.pause()
        assert not pane._repaint_regions

        pane.highlight_thread(second)
        top = pane.content_offset.y
        repainted = sorted((region.y - top, region.height) for region in pane._repaint_regions)
        assert repainted == [(0, 2), (2, 2)]  # the lines of the two threads, not the pane
        await pilot.pause()
        assert pane.selected_thread == second
