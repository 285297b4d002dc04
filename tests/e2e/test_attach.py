"""A cockpit attached to a headless gateway process over its control socket.

The gateway is a real ``mpg-tui --no-ui`` process on the loopback Discord sandbox; the
cockpit is the real app, driven with Pilot, over a :class:`RemoteCore` on the real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from mpg_tui.control.client import Endpoint
from mpg_tui.control.remote import RemoteCore
from mpg_tui.control.server import socket_path
from mpg_tui.core.events import Event, RunStarted, SessionKilled
from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from mpg_tui.tui.app import CockpitApp, make_app
from mpg_tui.tui.screens.confirm_screen import ConfirmScreen
from tests.e2e.gateway_process import (
    WAIT_S,
    Chat,
    GatewayProcess,
    Profile,
    open_thread,
    process_alive,
    running_gateway,
    write_profile,
)
from tests.tui.conftest import plain

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SIZE = (200, 50)
CHANNELS = ("attach", "restart")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer(SandboxSpec.default(CHANNELS)) as server:
        yield server


@pytest.fixture
def chat(sandbox: SandboxServer) -> Chat:
    return Chat(sandbox)


def profile_for(sandbox: SandboxServer, root: Path, channel: str) -> Profile:
    return write_profile(
        root, api_base=sandbox.api_base, token=sandbox.token, projects={sandbox.spec.channel(channel).id: (channel, {})}
    )


def local_endpoint(profile: Profile) -> Endpoint:
    return Endpoint(url=f"unix:{socket_path(profile.locations.run_dir)}")


def cockpit(remote: RemoteCore) -> CockpitApp:
    return make_app(remote, run_core=remote.run, attached_to="local", refresh_interval=0.0, environ={})


async def until(pilot_pause: Callable[[], object], check: Callable[[], bool], what: str) -> None:
    """Let the app work until ``check`` holds (each round waits for the app to go idle)."""
    async with asyncio.timeout(WAIT_S):
        while not check():
            await pilot_pause()  # type: ignore[misc]
    assert check(), what


@contextlib.asynccontextmanager
async def next_event(remote: RemoteCore, kind: type[Event]) -> AsyncIterator[asyncio.Task[Event]]:
    task: asyncio.Task[Event] = asyncio.create_task(remote.bus.wait_for(kind, timeout=WAIT_S))
    await asyncio.sleep(0)  # subscribed from here on
    yield task


async def test_an_attached_cockpit_shows_a_new_session_live_kills_its_run_and_quits_leaving_the_gateway_up(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(sandbox, tmp_path, "attach")
    async with running_gateway(profile) as gateway:
        remote = await RemoteCore.attach(local_endpoint(profile))
        app = cockpit(remote)
        async with app.run_test(size=SIZE) as pilot:
            assert "attached local" in plain(app.main.header.render())
            await remote.wait_linked()

            async with next_event(remote, RunStarted) as started:
                slow = await chat.post(chat.channel("attach"), "[[sleep:120]] a long job")
                key = (await started).key
            await until(pilot.pause, lambda: key in app.main.sessions, "the new session is listed")
            assert app.main.sessions[key].state == "running"
            # The live status line appears once claude reports progress: it is running now.
            await chat.sent_starting(key, "⚙️ Claude is working", slow.seq)
            (run,) = profile.agent_log.asked("a long job")
            assert process_alive(run.pid)

            assert app.main.select_session(key)
            await pilot.pause()
            async with next_event(remote, SessionKilled) as killed:
                await pilot.press("k")
                assert isinstance(app.screen, ConfirmScreen)
                await pilot.press("y")
                await killed
            await until(pilot.pause, lambda: key not in app.main.sessions, "the killed session leaves the table")
            assert not process_alive(run.pid)
            assert slow.id not in profile.stored_sessions()

            await pilot.press("q")  # no question: quitting an attached cockpit stops nothing
        assert not app.is_running

        assert gateway.returncode is None
        await open_thread(chat, chat.channel("attach"), "still here", "are you there?")


async def test_an_attached_cockpit_shows_disconnected_while_the_gateway_restarts_and_resyncs_after(
    sandbox: SandboxServer, chat: Chat, tmp_path: Path
) -> None:
    profile = profile_for(sandbox, tmp_path, "restart")
    first = await GatewayProcess.spawn(profile)
    second: GatewayProcess | None = None
    try:
        await first.wait_ready()
        remote = await RemoteCore.attach(local_endpoint(profile), retry_min_s=0.05, retry_max_s=0.5)
        app = cockpit(remote)
        async with app.run_test(size=SIZE) as pilot:
            await remote.wait_linked()
            first_life = remote.instance
            assert await first.terminate() == 0
            await remote.wait_linked(False)
            await until(pilot.pause, lambda: app.main.header.connection == "disconnected", "header: disconnected")

            second = await GatewayProcess.spawn(profile)
            await second.wait_ready()
            await remote.wait_linked()
            assert remote.instance != first_life and remote.resyncs == 1

            _, thread_id = await open_thread(chat, chat.channel("restart"), "after the restart", "hello again")
            await until(pilot.pause, lambda: thread_id in app.main.sessions, "a session of the new life is listed")
            await until(pilot.pause, lambda: app.main.header.connection == "ready", "header: ready again")
    finally:
        for process in (first, second):
            if process is not None:
                await process.kill()
