"""Pending approvals on the dashboard, and deciding them: only with the token, only as JSON from no other origin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.events import ApprovalRequested
from mpg_tui.core.gateway import Gateway
from mpg_tui.dashboard import Dashboard
from mpg_tui.sandbox.world import World
from tests.dashboard.conftest import WEB

TOKEN = "approvals-token-0123456789"
THREAD = "1300000000000000001"


@pytest.fixture
async def guarded(core: Gateway, clock: FakeClock) -> AsyncIterator[Dashboard]:
    async with Dashboard(core, port=0, token=TOKEN, clock=clock) as running:
        yield running


async def test_a_pending_request_is_listed_and_decided_only_with_the_token(
    world: World, core: Gateway, guarded: Dashboard, client: aiohttp.ClientSession
) -> None:
    key = await world.ask(WEB, "@engineer run the tests", message_id=THREAD, author="ana", roles=("dev",))
    assert key is not None
    requested = world.expect(lambda e: isinstance(e, ApprovalRequested))
    asking = world.live(key).ask("Bash", {"command": "python3 -m pytest"})
    await requested
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = guarded.url + "api/approvals"

    async with client.get(url) as response:
        assert response.status == 401
    async with client.get(url, headers=auth) as response:
        [pending] = await response.json()
    assert (pending["tool"], pending["summary"], pending["requested_by"]) == ("Bash", "python3 -m pytest", "ana")

    async with client.post(f"{url}/{pending['id']}", json={"choice": "allow"}) as response:
        assert response.status == 401
    assert not asking.done()
    async with client.post(
        f"{url}/{pending['id']}", json={"choice": "allow"}, headers={**auth, "Origin": "https://elsewhere.example"}
    ) as response:
        assert response.status == 403
    async with client.post(f"{url}/{pending['id']}", data="choice=allow", headers=auth) as response:
        assert response.status == 415
    assert not asking.done()

    async with client.post(f"{url}/{pending['id']}", json={"choice": "deny"}, headers=auth) as response:
        answer = await response.json()
    assert response.status == 200 and answer["decided"] and "Denied by the operator" in answer["text"]
    decision = await asking
    assert (decision.outcome, decision.decided_by) == ("deny", "the operator")
    async with client.get(url, headers=auth) as response:
        assert await response.json() == []
