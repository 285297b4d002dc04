"""Keys and commands: kill, restart, jump, attach, filter, quit, chat, and a failing gateway."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from textual.widgets import Input

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import Event, SessionHeld, SessionReleased
from mpg_tui.runners.names import session_name
from mpg_tui.sandbox.demo_world import (
    BACKUPS,
    BACKUPS_SESSION_ID,
    CERTS,
    DOCS,
    INFRA,
    NIGHTLY,
    RESTORED,
    RESTORED_SESSION_ID,
    SEARCH,
    SHOP,
)
from mpg_tui.sandbox.inmemory import TMUX_SOCKET
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.commands import SessionsProvider
from mpg_tui.tui.screens.approvals_screen import ApprovalsScreen
from mpg_tui.tui.screens.confirm_screen import ConfirmScreen
from mpg_tui.tui.widgets.chat_box import ChatBox
from mpg_tui.tui.widgets.filter_bar import FilterBar
from mpg_tui.worktrees import WorktreeManager
from tests.tui.conftest import Launches, installed, settle, watch_notes

SIZE = (200, 50)


async def select(app: CockpitApp, key: str) -> None:
    assert app.main.select_session(key)
    await asyncio.sleep(0)


# -- kill and restart ------------------------------------------------------------------------


async def test_kill_asks_first_and_no_keeps_the_session(make_app: Callable[..., CockpitApp], world: World) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmScreen)
        assert RESTORED in app.screen.title_text
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is app.main
        await app.workers.wait_for_complete()
        assert world.gateway.session(RESTORED) is not None


async def test_kill_confirmed_calls_the_core_and_the_row_goes(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("k")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await settle(pilot, clock)
        assert world.gateway.session(RESTORED) is None
        assert world.store.get(RESTORED) is None  # forgotten on disk too
        assert RESTORED not in app.main.table.visible_keys()
        assert f"Session {RESTORED} killed." in notes.text()


async def test_escape_and_enter_on_the_kill_dialog_do_not_kill(
    make_app: Callable[..., CockpitApp], world: World
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        for answer in ("escape", "enter"):  # enter presses the focused button: Cancel
            await pilot.press("k")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(answer)
            await pilot.pause()
            assert app.screen is app.main
        await app.workers.wait_for_complete()
        assert world.gateway.session(RESTORED) is not None


async def test_kill_acts_on_the_row_under_the_cursor_even_when_keys_come_in_a_burst(
    make_app: Callable[..., CockpitApp], world: World
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        keys = app.main.table.visible_keys()
        app.main.table.move_cursor(row=0)
        await pilot.pause()
        # Both keys are handled before the cursor's highlight message reaches the screen.
        app.main.table.action_cursor_down()
        app.action_kill()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert keys[1] in app.screen.title_text


async def test_restart_clears_the_session_id(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await settle(pilot, clock)
        assert world.session(RESTORED).session_id is None
        assert app.main.table.get_cell(RESTORED, "session_id").plain == "—"
        assert "start fresh" in notes.text()


async def test_a_command_the_core_cannot_do_is_reported_and_the_cockpit_stays_up(
    make_app: Callable[..., CockpitApp], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(key: str) -> bool:
        raise RuntimeError("store is read-only")

    monkeypatch.setattr(world.gateway, "restart", broken)  # a core with a bug: the cockpit must survive it
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert ("error", f"restart {RESTORED} failed: RuntimeError: store is read-only") in notes.calls
        assert any("store is read-only" in line for line in app.main.event_log.shown_lines())


async def test_commands_with_nothing_selected_say_so(make_app: Callable[..., CockpitApp], world: World) -> None:
    for key in [s.key for s in world.gateway.sessions()]:
        assert await world.gateway.kill(key)
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("k", "r", "j", "a")
        await pilot.pause()
        assert app.screen is app.main
        assert not app.workers  # nothing was asked of the core
        assert notes.calls.count(("warning", "Select a session first.")) == 4


# -- jump and attach ---------------------------------------------------------------------------


class SuspendingApp(CockpitApp):
    """The headless test driver cannot suspend; record that the app would have."""

    suspended = 0

    @contextmanager
    def suspend(self) -> Iterator[None]:
        self.suspended += 1
        yield


def watch_lending(world: World) -> list[tuple[str, str]]:
    """The sessions the gateway lends to a terminal and takes back, in order."""
    seen: list[tuple[str, str]] = []

    def listener(event: Event) -> None:
        if isinstance(event, SessionHeld):
            seen.append(("held", event.key))
        elif isinstance(event, SessionReleased):
            seen.append(("released", event.key))

    world.bus.listen(listener)
    return seen


class Panes:
    """A pane launcher that records the tmux command and reports a pane whose process has ended."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> int:
        self.calls.append(list(argv))
        child = subprocess.Popen(["true"])  # the window's claude, already exited when it is watched
        child.wait()
        return child.pid


async def test_jump_inside_tmux_holds_the_session_while_a_window_runs_claude_resume(
    make_app: Callable[..., CockpitApp], world: World, launches: Launches
) -> None:
    lending = watch_lending(world)
    panes = Panes()
    app = make_app(environ={"TMUX": "/tmp/tmux-1000/default,42,0"}, pane_launcher=panes)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("j")
        await app.workers.wait_for_complete()
        assert launches.calls == []
        assert panes.calls == [
            ["tmux", "new-window", "-P", "-F", "#{pane_pid}", "-c", "/srv/mpg/docs-site", "-n", "claude-000099",
             "--", "claude", "--resume", RESTORED_SESSION_ID],
        ]  # fmt: skip
        assert lending == [("held", RESTORED), ("released", RESTORED)]


async def test_enter_on_a_session_jumps_in_too(make_app: Callable[..., CockpitApp]) -> None:
    panes = Panes()
    app = make_app(environ={"TMUX": "x"}, pane_launcher=panes)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        app.main.table.focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        assert len(panes.calls) == 1
        assert panes.calls[0][-2:] == ["--resume", RESTORED_SESSION_ID]


async def test_jump_outside_tmux_suspends_and_runs_claude_in_the_session_cwd(
    world: World, clock: FakeClock, launches: Launches
) -> None:
    app = SuspendingApp(world.gateway, clock=clock, launcher=launches, environ={}, which=installed)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, f"{BACKUPS}:devops")
        await pilot.press("j")
        await app.workers.wait_for_complete()
        assert app.suspended == 1
        assert launches.calls == [(["claude", "--resume", BACKUPS_SESSION_ID], "/srv/mpg/infra")]


def git_repo(root: Path) -> Path:
    root.mkdir()
    author = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    for args in (["init", "--quiet"], ["commit", "--quiet", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", "-C", str(root), *author, *args], check=True, capture_output=True)
    return root.resolve()


async def test_jump_uses_the_worktree_when_the_session_has_one(
    tmp_path: Path, clock: FakeClock, launches: Launches
) -> None:
    project = git_repo(tmp_path / "shop")
    config = {"projects": {SHOP: {"name": "shop", "directory": str(project)}}}
    world = World(config, tmp_path, clock=clock, worktrees=WorktreeManager(timeout_s=30))
    try:
        assert await world.ask(SHOP, "fix the build", message_id="1300") == "1300"
        await world.finish("1300", session_id="cafe0000")
        worktree = world.session("1300").worktree_path
        assert worktree is not None and Path(worktree).is_dir() and Path(worktree) != project
        app = SuspendingApp(world.gateway, clock=clock, launcher=launches, environ={}, which=installed)
        async with app.run_test(size=SIZE) as pilot:
            await select(app, "1300")
            await pilot.press("j")
            await app.workers.wait_for_complete()
            assert launches.calls == [(["claude", "--resume", "cafe0000"], worktree)]
    finally:
        await world.close()


async def test_jump_without_claude_installed_says_so_instead_of_opening_a_dead_window(
    make_app: Callable[..., CockpitApp], launches: Launches
) -> None:
    app = make_app(environ={}, which=lambda _name: None)
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("j")
        await app.workers.wait_for_complete()
        assert launches.calls == []
        assert "`claude` is not on PATH" in notes.text()


async def test_a_session_without_an_id_cannot_be_jumped_into(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock, launches: Launches
) -> None:
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await world.ask(SHOP, "@pm plan the search box", message_id=SEARCH)  # its first run: no claude ID yet
        await settle(pilot, clock)
        await select(app, f"{SEARCH}:pm")
        await pilot.press("j")
        await app.workers.wait_for_complete()
        assert launches.calls == []
        assert "nothing to resume" in notes.text()


async def test_a_launch_that_fails_is_reported_and_the_session_handed_back(world: World, clock: FakeClock) -> None:
    def missing(argv: object, cwd: object) -> int:
        raise FileNotFoundError(2, "No such file or directory", "claude")

    lending = watch_lending(world)
    app = SuspendingApp(world.gateway, clock=clock, launcher=missing, environ={}, which=installed)
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("j")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert notes.calls[-1][0] == "error"
        assert f"could not open claude --resume {RESTORED_SESSION_ID[:8]}" in notes.text()
        assert lending == [("held", RESTORED), ("released", RESTORED)]


async def test_attach_inside_tmux_opens_a_window_on_the_runs_socket(
    world: World, make_app: Callable[..., CockpitApp], launches: Launches
) -> None:
    assert await world.ask(INFRA, "@devops rotate the staging certificates", message_id=CERTS) == f"{CERTS}:devops"
    app = make_app(environ={"TMUX": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await select(app, f"{CERTS}:devops")
        await pilot.press("a")
        await app.workers.wait_for_complete()
        argv, cwd = launches.calls[0]
        assert cwd is None
        assert argv[:2] == ["tmux", "new-window"]
        assert argv[-7:] == ["--", "tmux", "-L", TMUX_SOCKET, "attach", "-t", session_name(f"{CERTS}:devops")]


async def test_attach_outside_tmux_suspends_and_attaches(world: World, clock: FakeClock, launches: Launches) -> None:
    assert await world.ask(INFRA, "@devops rotate the staging certificates", message_id=CERTS) == f"{CERTS}:devops"
    app = SuspendingApp(world.gateway, clock=clock, launcher=launches, environ={})
    async with app.run_test(size=SIZE) as pilot:
        await select(app, f"{CERTS}:devops")
        await pilot.press("a")
        await app.workers.wait_for_complete()
        assert app.suspended == 1
        attach = ["tmux", "-L", TMUX_SOCKET, "attach", "-t", session_name(f"{CERTS}:devops")]
        assert launches.calls == [(attach, None)]


async def test_a_direct_run_has_nothing_to_attach_to(make_app: Callable[..., CockpitApp], launches: Launches) -> None:
    app = make_app()
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await select(app, RESTORED)
        await pilot.press("a")
        await pilot.pause()
        assert launches.calls == []
        assert "not in tmux" in notes.text()


# -- filter -----------------------------------------------------------------------------------


async def test_filter_narrows_the_table_and_escape_clears_it(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await world.ask(SHOP, "@engineer build the search box", message_id=SEARCH)
        await settle(pilot, clock)
        total = len(app.main.table.visible_keys())
        await pilot.press("slash")
        bar = app.main.query_one(FilterBar)
        assert bar.display and app.focused is bar
        await pilot.press(*"infra")
        await pilot.pause()
        assert sorted(app.main.table.visible_keys()) == [f"{NIGHTLY}:devops", f"{BACKUPS}:devops"]
        assert "2 matches “infra”" in str(app.main.table.border_title)
        # Keys typed into the filter are text, not commands.
        assert not isinstance(app.screen, ConfirmScreen)

        await pilot.press("enter")
        assert app.focused is app.main.table
        assert bar.display  # a kept filter stays visible

        bar.focus()
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.main.table.visible_keys()) == total
        assert not bar.display


async def test_filter_matches_state_and_follows_state_changes(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"running")
        await pilot.pause()
        assert app.main.table.visible_keys() == []
        await world.ask(RESTORED, "publish v2.4 too")
        await settle(pilot, clock)
        assert app.main.table.visible_keys() == [RESTORED]
        await world.finish(RESTORED)
        await settle(pilot, clock)
        assert app.main.table.visible_keys() == []


# -- quit -------------------------------------------------------------------------------------


async def test_quit_goes_straight_out_when_no_direct_run_is_in_progress(
    make_app: Callable[..., CockpitApp], world: World
) -> None:
    await world.ask(INFRA, "@devops renew the certificates")  # tmux runs survive the cockpit
    assert [s.runner for s in world.gateway.sessions() if s.state == "running"] == ["tmux"]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_quit_with_direct_runs_asks_and_no_stays(make_app: Callable[..., CockpitApp], world: World) -> None:
    await world.ask(RESTORED, "publish v2.4 too")
    await world.ask(SHOP, "@pm plan the search box", message_id=SEARCH)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.body == "2 direct runs will be stopped; tmux runs continue."
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and app.screen is app.main
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert not app.is_running


# -- the gateway worker ---------------------------------------------------------------------------


async def test_a_failing_gateway_shows_the_error_and_the_cockpit_stays_up(
    make_app: Callable[..., CockpitApp],
) -> None:
    async def run_core() -> None:
        raise ConnectionRefusedError("Discord is unreachable")

    app = make_app(run_core=run_core)
    notes = watch_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert app.main.header.problem == "gateway failed: ConnectionRefusedError: Discord is unreachable"
        assert any("Discord is unreachable" in line for line in app.main.event_log.shown_lines())
        assert ("error", "Gateway failed: Discord is unreachable") in notes.calls
        await pilot.press("l")  # and keys still work
        assert not app.main.event_log.display


async def test_a_gateway_that_stops_says_so(make_app: Callable[..., CockpitApp]) -> None:
    async def run_core() -> None:
        return None

    app = make_app(run_core=run_core)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.main.header.problem == "gateway stopped"


async def test_the_gateway_runs_alongside_the_cockpit(
    make_app: Callable[..., CockpitApp], world: World, clock: FakeClock
) -> None:
    async def run_core() -> None:
        world.connect("ready")
        await world.ask(SHOP, "@pm plan the search box", message_id=SEARCH)
        await asyncio.Event().wait()  # runs until the cockpit closes

    app = make_app(run_core=run_core)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, clock)
        assert f"{SEARCH}:pm" in app.main.table.visible_keys()
        assert app.main.header.problem is None


# -- demo chat ---------------------------------------------------------------------------------


def posted(world: World) -> list[tuple[str, str, str]]:
    return [(m.channel_id, m.author_name, m.content) for m in world.inbound]


async def test_demo_chat_box_posts_to_the_chosen_channel(make_app: Callable[..., CockpitApp], world: World) -> None:
    before = len(world.inbound)
    app = make_app(demo_channel_ids=[(SHOP, "#shop-api"), (DOCS, "#docs-site")])
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.pause()  # the demo starts in the chat box: leave it, so "c" is the chat key
        await pilot.press("escape")
        await pilot.press("c")
        chat_input = app.main.query_one("#chat-input", Input)
        assert app.focused is chat_input
        await pilot.press(*"fix the build", "enter")
        await app.workers.wait_for_complete()
        assert posted(world)[before:] == [(SHOP, "you", "fix the build")]
        assert chat_input.value == ""

        app.main.query_one("#chat-channel").value = DOCS  # type: ignore[attr-defined]
        chat_input.focus()
        await pilot.press(*"k", "enter")  # typed text, not the kill key
        await app.workers.wait_for_complete()
        assert posted(world)[-1] == (DOCS, "you", "k")
        assert not isinstance(app.screen, ConfirmScreen)


async def test_demo_starts_in_the_chat_box_so_a_newcomers_first_keys_are_a_message(
    make_app: Callable[..., CockpitApp], world: World
) -> None:
    before = len(world.inbound)
    app = make_app(demo_channel_ids=[(SHOP, "#shop-api")])
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.pause()
        await pilot.press(*"@pm add a search", "enter")  # 'a', 'r', 'c' are command keys elsewhere
        await app.workers.wait_for_complete()
        assert posted(world)[before:] == [(SHOP, "you", "@pm add a search")]
        assert not isinstance(app.screen, ConfirmScreen)


async def test_escape_leaves_the_chat_box_and_the_cockpits_keys_work_again(
    make_app: Callable[..., CockpitApp], world: World
) -> None:
    app = make_app(demo_channel_ids=[(SHOP, "#shop-api")])
    async with app.run_test(size=SIZE) as pilot:
        await app.ready.wait()
        await pilot.pause()
        assert app.focused is app.main.query_one("#chat-input", Input)
        await pilot.press("escape")
        assert app.focused is app.main.table
        await pilot.press("i")
        assert isinstance(app.screen, ApprovalsScreen)


async def test_without_demo_channels_there_is_no_chat_box(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert not app.main.query(ChatBox)
        await pilot.press("c")
        assert app.focused is app.main.table
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.enabled}
        assert "chat" not in shown and "kill" in shown


# -- command palette -----------------------------------------------------------------------------


async def test_palette_offers_every_command(make_app: Callable[..., CockpitApp]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE):
        titles = {command.title for command in app.get_system_commands(app.main)}
        for title in ("Kill session", "Restart session", "Jump into session", "Attach to tmux run",
                      "Filter sessions", "Toggle event log", "Event log level: warn", "Quit"):  # fmt: skip
            assert title in titles


async def test_palette_finds_sessions_and_goes_to_them(make_app: Callable[..., CockpitApp], world: World) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"docs", "enter")  # a filter that hides the target
        provider = SessionsProvider(app.main)
        hits = {hit.text: hit for hit in [hit async for hit in provider.search("devops")]}
        assert sorted(hits) == [
            f"Go to session {NIGHTLY}:devops · infra · devops · recovering",
            f"Go to session {BACKUPS}:devops · infra · devops · idle",
        ]
        hits[f"Go to session {BACKUPS}:devops · infra · devops · idle"].command()
        await pilot.pause()
        assert app.main.selected_key == f"{BACKUPS}:devops"
        assert app.main.table.filter_query == ""
        assert not app.main.query_one(FilterBar).display
        discovered = [hit async for hit in provider.discover()]
        assert len(discovered) == len(world.gateway.sessions()) == 3
