"""The cockpit attached over the real control socket: what it follows and what it does on a session.

The gateway is the sandbox world's (the real core on an in-memory chat and a scripted runner)
behind the real ControlService; the cockpit is the real app over a RemoteCore, driven with Pilot.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.widgets import Static

from mpg_tui.config import parse_config
from mpg_tui.control.client import Endpoint
from mpg_tui.control.journal import EventJournal
from mpg_tui.control.remote import RemoteCore
from mpg_tui.control.server import ControlService, socket_path
from mpg_tui.core.clock import FakeClock
from mpg_tui.sandbox.demo_world import (
    DEMO_CONFIG,
    NIGHTLY,
    RESTORED,
    RESTORED_SESSION_ID,
    SEARCH,
    demo_world,
    open_day,
)
from mpg_tui.sandbox.world import World
from mpg_tui.tui.app import CockpitApp
from mpg_tui.tui.widgets.projects_pane import ProjectsPane
from mpg_tui.tui.widgets.session_detail import SessionDetail
from tests.tui.conftest import Launches, installed, plain, until, watch_notes
from tests.tui.test_approvals_inbox import two_requests
from tests.tui.test_commands import Panes

SIZE = (200, 50)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    world = demo_world(tmp_path / "state", FakeClock())
    yield world
    await world.close()


@pytest.fixture
async def remote(world: World, tmp_path: Path) -> AsyncIterator[RemoteCore]:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    service = ControlService(world.gateway, EventJournal(world.gateway), socket_file=socket_path(run_dir))
    await service.start()
    yield await RemoteCore.attach(Endpoint(url=f"unix:{socket_path(run_dir)}"))
    await service.stop()


def attached(remote: RemoteCore, launches: Launches, **kwargs: object) -> CockpitApp:
    options: dict[str, object] = {"elsewhere": remote.elsewhere, "environ": {}, **kwargs}
    return CockpitApp(
        remote,
        run_core=remote.run,
        attached_to="test",
        launcher=launches,
        which=installed,
        **options,  # type: ignore[arg-type]
    )


async def test_the_projects_list_follows_a_reload_of_the_gateways_config(world: World, remote: RemoteCore) -> None:
    app = attached(remote, Launches())
    async with app.run_test(size=SIZE) as pilot:
        await remote.wait_linked()
        pane = app.main.query_one(ProjectsPane)
        assert [p.name for p in pane.projects.values()] == ["shop-api", "docs-site", "infra"]

        config = copy.deepcopy(DEMO_CONFIG)
        config["projects"]["1100000000000000004"] = {"name": "billing", "directory": "/srv/mpg/billing"}
        del config["projects"]["1100000000000000002"]
        world.gateway.reload(parse_config(config))
        world.connect("ready")  # the next event carries the new list (a reload logs one in the gateway)

        await until(pilot, lambda: "billing" in [p.name for p in pane.projects.values()], pauses=200)
        assert [p.name for p in pane.projects.values()] == ["shop-api", "infra", "billing"]
        assert app.main.project_names["1100000000000000004"] == "billing"


async def test_an_attached_detail_shows_the_approval_its_session_waits_for(world: World, remote: RemoteCore) -> None:
    app = attached(remote, Launches())
    async with app.run_test(size=SIZE) as pilot:
        await remote.wait_linked()
        asking = await two_requests(world)
        key = f"{SEARCH}:engineer"
        await until(pilot, lambda: bool(app.main.waiting_for(key)), pauses=200)
        assert app.main.select_session(key)
        detail = app.main.query_one(SessionDetail)
        await until(pilot, lambda: detail.info is not None and detail.info.key == key)
        head = " ".join(plain(detail.query_one("#detail-head", Static).content, 200).split())
        assert "waits for approval: Bash python3 -m pytest -q tests/search" in head
        assert "i, then a allow · s allow for the session · d deny" in head
        for task in asking:
            task.cancel()


async def test_jump_and_attach_on_another_machine_say_what_to_run_there(world: World, remote: RemoteCore) -> None:
    launches = Launches()
    app = attached(remote, launches, elsewhere=lambda key: ("build-box", key))
    async with app.run_test(size=SIZE) as pilot:
        await remote.wait_linked()
        notes = watch_notes(app)
        await open_day(world)
        await until(
            pilot, lambda: f"{NIGHTLY}:devops" in app.main.sessions and RESTORED in app.main.sessions, pauses=200
        )
        app.main.table.focus()
        assert app.main.select_session(RESTORED)
        await pilot.press("j")
        assert f"ssh -t build-box mpg-tui resume {RESTORED}" in notes.text()

        assert app.main.select_session(f"{NIGHTLY}:devops")
        await pilot.press("a")
        attach = remote.session(f"{NIGHTLY}:devops")
        assert attach is not None and attach.attach_command
        assert "ssh -t build-box " + " ".join(attach.attach_command) in notes.text()
        await pilot.pause()
        assert launches.calls == []


async def test_jump_on_a_gateway_of_this_machine_runs_claude_here(world: World, remote: RemoteCore) -> None:
    assert remote.elsewhere(RESTORED) is None  # a Unix socket is this machine
    panes = Panes()  # inside tmux, claude opens in a new window (suspending needs a terminal)
    app = attached(remote, Launches(), environ={"TMUX": "x"}, pane_launcher=panes)
    async with app.run_test(size=SIZE) as pilot:
        await remote.wait_linked()
        notes = watch_notes(app)
        await open_day(world)
        await until(pilot, lambda: RESTORED in app.main.sessions, pauses=200)
        app.main.table.focus()
        assert app.main.select_session(RESTORED)
        await pilot.press("j")
        await until(pilot, lambda: bool(panes.calls or notes.calls), pauses=200)
        assert notes.text() == ""
        assert panes.calls[0][-2:] == ["--resume", RESTORED_SESSION_ID]


def test_a_gateway_over_http_is_another_machine_unless_it_is_loopback() -> None:
    far = RemoteCore(Endpoint(url="http://build-box:3100", token="t"))
    assert far.elsewhere("1200000000000000099") == ("build-box", "1200000000000000099")
    near = RemoteCore(Endpoint(url="http://127.0.0.1:3100", token="t"))
    assert near.elsewhere("1200000000000000099") is None
