"""The dashboard shows a thread's conversation and a held session, from the real Gateway over a scripted runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.dashboard import Dashboard
from tests.dashboard.conftest import get_json
from tests.unit.scripted_gateway import THREAD, Scripted


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[Scripted]:
    world = Scripted(tmp_path, FakeClock())
    yield world
    await world.sessions.close()


async def test_a_threads_conversation_is_served_as_json_and_on_the_page_escaped(
    scripted: Scripted, client: aiohttp.ClientSession
) -> None:
    await scripted.say("@pm plan <b>dark mode</b>", opener=True)
    async with Dashboard(scripted.gateway, port=0, clock=scripted.clock) as dashboard:
        document = await get_json(client, dashboard, f"/api/threads/{THREAD}/conversation")
        assert [(e["kind"], e["who"], e["text"]) for e in document["entries"]] == [
            ("message", "ann", "@pm plan <b>dark mode</b>"),
            ("reply", "@pm", "echo: plan <b>dark mode</b>"),
        ]
        async with client.get(dashboard.url + f"?thread={THREAD}") as response:
            page = await response.text()
        assert 'data-thread="120000000000000500"' in page
        assert "plan &lt;b&gt;dark mode&lt;/b&gt;" in page and "<b>dark mode</b>" not in page
        assert f'href="/?thread={THREAD}#conversation"' in page


async def test_a_held_session_shows_as_held_with_its_holder(scripted: Scripted, client: aiohttp.ClientSession) -> None:
    await scripted.say("@pm plan it", opener=True)
    await scripted.gateway.hold(THREAD + ":pm", "cockpit, ann@laptop")
    async with Dashboard(scripted.gateway, port=0, clock=scripted.clock) as dashboard:
        (session,) = await get_json(client, dashboard, "/api/sessions")
        async with client.get(dashboard.url) as response:
            page = await response.text()
    assert session["state"] == "held" and session["heldBy"] == "cockpit, ann@laptop"
    assert session["heldSince"] is not None
    assert "open in a terminal (cockpit, ann@laptop): messages wait" in page
