"""Holds and conversations through the control API: a cockpit elsewhere lends a session out and hands it back."""

from __future__ import annotations

import asyncio

import pytest

from mpg_tui.control.client import Endpoint
from mpg_tui.control.multi import MultiCore
from mpg_tui.control.remote import RemoteCore
from mpg_tui.core.events import SessionHeld, SessionReleased
from mpg_tui.core.holds import HoldError, keep_hold
from tests.control.conftest import World
from tests.control.test_remote_core import following


async def test_a_labelled_view_holds_renews_and_releases_a_session_in_its_gateway(
    world: World, local: Endpoint
) -> None:
    thread = await world.open_thread("hello")
    multi = MultiCore([await RemoteCore.attach(Endpoint(url=local.url, label="east"))])
    async with following(multi):
        await multi.cores[0].wait_linked()
        held = asyncio.create_task(multi.bus.wait_for(SessionHeld, timeout=10))
        async with keep_hold(multi, f"east/{thread}", "remote cockpit") as grant:
            assert grant.key == f"east/{thread}" and grant.hold_id.startswith("east/")
            await held
            assert world.gateway.session(thread).held_by == "remote cockpit"  # type: ignore[union-attr]
            assert multi.session(f"east/{thread}").state == "held"  # type: ignore[union-attr]
            assert await multi.renew_hold(grant.hold_id)
            released = asyncio.create_task(multi.bus.wait_for(SessionReleased, timeout=10))
        event = await released
        assert event.key == f"east/{thread}"  # type: ignore[attr-defined]
        assert world.gateway.session(thread).held_by is None  # type: ignore[union-attr]
        entries = await multi.conversation(f"east/{thread}")
        assert [e.kind for e in entries][:2] == ["message", "reply"] and entries[0].text == "hello"


async def test_a_refused_hold_reaches_the_remote_holder_as_a_hold_error(world: World, local: Endpoint) -> None:
    await world.open_thread("hello")
    remote = RemoteCore(local)
    with pytest.raises(HoldError) as refused:
        await remote.hold("nothing-like-this", "remote cockpit")
    assert refused.value.code == "not_found" and "no session matches" in refused.value.message
