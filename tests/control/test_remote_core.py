"""A cockpit's view of a gateway over the control socket follows the real core, and commands reach it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mpg_tui.control.client import ControlClient, Endpoint
from mpg_tui.control.multi import MultiCore
from mpg_tui.control.remote import RemoteCore
from mpg_tui.control.server import ControlService
from mpg_tui.core.events import RunFinished, RunStarted, SessionKilled, StateResynced
from tests.control.conftest import BOT_TOKEN, World


@contextlib.asynccontextmanager
async def following(core: RemoteCore | MultiCore) -> AsyncIterator[None]:
    task = asyncio.create_task(core.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_new_threads_session_appears_in_the_remote_view_while_it_runs(world: World, local: Endpoint) -> None:
    remote = await RemoteCore.attach(local)
    assert [p.name for p in remote.projects()] == ["shop"]
    assert remote.sessions() == []
    async with following(remote):
        await remote.wait_linked()
        run = world.runner.hold()
        started = asyncio.create_task(remote.bus.wait_for(RunStarted))
        opening = asyncio.create_task(world.open_thread("add a dark mode"))
        event = await started
        info = remote.session(event.key)
        assert info is not None and info.state == "running" and info.project_key == world.gateway.projects()[0].key

        finished = asyncio.create_task(remote.bus.wait_for(RunFinished))
        run.release()
        await opening
        await finished
        info = remote.session(event.key)
        assert info is not None and info.state == "idle" and info.runs == 1
        assert remote.totals().runs == world.gateway.totals().runs == 1


async def test_kill_through_the_remote_view_ends_the_run_in_the_gateway(world: World, local: Endpoint) -> None:
    remote = await RemoteCore.attach(local)
    async with following(remote):
        await remote.wait_linked()
        run = world.runner.hold()
        started = asyncio.create_task(remote.bus.wait_for(RunStarted))
        opening = asyncio.create_task(world.open_thread("a long job"))
        key = (await started).key
        killed = asyncio.create_task(remote.bus.wait_for(SessionKilled))

        assert await remote.kill(key) is True

        await killed
        await opening
        assert run.cancelled
        assert world.gateway.session(key) is None and remote.session(key) is None
        assert await remote.kill(key) is False


async def test_a_restarted_control_service_is_followed_again_after_a_resync(
    world: World, control: ControlService, local: Endpoint
) -> None:
    remote = await RemoteCore.attach(local, retry_min_s=0.01, retry_max_s=0.05)
    async with following(remote):
        await remote.wait_linked()
        first_life = remote.instance
        await control.stop()
        await remote.wait_linked(False)
        assert remote.connection_state == "disconnected"

        # Meanwhile a session starts; the new life of the service has new sequence numbers.
        from mpg_tui.control.journal import EventJournal

        assert control.socket_file is not None
        revived = ControlService(world.gateway, EventJournal(world.gateway), socket_file=control.socket_file)
        await world.open_thread("made while the cockpit was away")
        resynced = asyncio.create_task(remote.bus.wait_for(StateResynced))
        await revived.start()
        try:
            event = await resynced
            await remote.wait_linked()
            (info,) = remote.sessions()
            assert info.key in event.keys
            assert remote.instance != first_life
        finally:
            await revived.stop()


async def test_two_labelled_gateways_in_one_view_route_each_command_to_its_own(world: World, local: Endpoint) -> None:
    # The same gateway twice under two names stands in for two gateways: keys are told apart by label.
    cores = [
        await RemoteCore.attach(Endpoint(url=local.url, label="east")),
        await RemoteCore.attach(Endpoint(url=local.url, label="west")),
    ]
    multi = MultiCore(cores)
    assert sorted(p.name for p in multi.projects()) == ["east · shop", "west · shop"]
    async with following(multi):
        for core in cores:
            await core.wait_linked()
        with multi.bus.subscribe(RunFinished) as finished:
            thread = await world.open_thread("hello")
            await finished.get()
            await finished.get()  # once through each view
        assert {s.key for s in multi.sessions()} == {f"east/{thread}", f"west/{thread}"}
        assert multi.session(f"west/{thread}") is not None
        assert await multi.kill(f"nowhere/{thread}") is False
        assert await multi.restart(f"east/{thread}") is True


async def test_the_bot_token_never_crosses_the_control_api(world: World, local: Endpoint) -> None:
    async with ControlClient(local) as client:
        async with client.events() as lines:
            await world.open_thread(f"oops I pasted {BOT_TOKEN}")
            seen = []
            async for line in lines:
                seen.append(str(line))
                if line.get("type") == "event" and line["event"]["kind"] == "run_finished":
                    break
        snapshot = str(await client.snapshot())
    assert any("[redacted]" in line for line in seen)
    assert not any(BOT_TOKEN in line for line in [*seen, snapshot])
