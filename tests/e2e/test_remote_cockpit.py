"""One cockpit over two gateways' HTTP ports (two profiles, two sandboxes), and the token rule.

Each gateway is a real ``mpg-tui --no-ui`` process serving its dashboard, and with it the
control API, on a port of its own with a token; the cockpit is the real app over a
:class:`MultiCore` of the two, as ``mpg-tui cockpit --connect`` builds it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from mpg_tui.attach import AttachError, combine, connect_all
from mpg_tui.control.multi import MultiCore
from mpg_tui.control.protocol import API_PREFIX
from mpg_tui.control.remotes import CockpitConfig, endpoints
from mpg_tui.core.events import SessionKilled
from mpg_tui.sandbox.discord import SandboxServer, SandboxSpec
from mpg_tui.tui.app import make_app
from mpg_tui.tui.screens.confirm_screen import ConfirmScreen
from tests.e2e.gateway_process import START_TIMEOUT_S, Chat, GatewayProcess, Profile, process_alive, write_profile
from tests.e2e.test_attach import SIZE, next_event, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

TOKEN = "remote-cockpit-token-0123456789"
NAMES = ("east", "west")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandboxes() -> AsyncIterator[dict[str, SandboxServer]]:
    async with (
        SandboxServer(SandboxSpec.default(["east"])) as east,
        SandboxServer(SandboxSpec.default(["west"])) as west,
    ):
        yield {"east": east, "west": west}


def profile_for(sandbox: SandboxServer, root: Path, name: str) -> Profile:
    profile = write_profile(
        root / name,
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(name).id: (name, {})},
        defaults={"httpPort": 0},
    )
    profile.env["MPG_DASHBOARD_TOKEN"] = TOKEN
    return profile


async def dashboard_url(gateway: GatewayProcess) -> str:
    await gateway.stderr.wait_for("Dashboard at", START_TIMEOUT_S)
    found = re.search(r"Dashboard at (http://\S+?)/?$", gateway.stderr.text, re.MULTILINE)
    assert found, gateway.stderr.text
    return found.group(1)


@pytest_asyncio.fixture(loop_scope="module")
async def gateways(
    sandboxes: dict[str, SandboxServer], tmp_path: Path
) -> AsyncIterator[dict[str, tuple[Profile, str]]]:
    started: dict[str, tuple[Profile, GatewayProcess]] = {}
    try:
        for name in NAMES:
            profile = profile_for(sandboxes[name], tmp_path, name)
            started[name] = (profile, await GatewayProcess.spawn(profile))
        found = {}
        for name, (profile, process) in started.items():
            await process.wait_ready()
            found[name] = (profile, await dashboard_url(process))
        yield found
    finally:
        for _, process in started.values():
            await process.kill()


async def test_one_cockpit_shows_both_gateways_and_a_kill_reaches_the_right_one(
    sandboxes: dict[str, SandboxServer], gateways: dict[str, tuple[Profile, str]], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    found = endpoints(
        [f"{name}={url}" for name, (_, url) in gateways.items()], CockpitConfig(), token_file=token_file, env={}
    )
    core = combine(await connect_all(found))
    assert isinstance(core, MultiCore)
    assert sorted(p.name for p in core.projects()) == ["east · east", "west · west"]

    app = make_app(core, run_core=core.run, attached_to="east, west", refresh_interval=0.0, environ={})
    async with app.run_test(size=SIZE) as pilot:
        keys = {}
        for name in NAMES:
            chat = Chat(sandboxes[name])
            posted = await chat.post(chat.channel(name), f"[[sleep:120]] long job in {name}")
            thread = await chat.thread_for(posted)
            await chat.sent_starting(thread, "⚙️ Claude is working", posted.seq)
            keys[name] = f"{name}/{thread}"
        await until(pilot.pause, lambda: set(keys.values()) <= set(app.main.sessions), "both sessions are listed")
        assert {app.main.sessions[k].project_key for k in keys.values()} == {
            f"east/{sandboxes['east'].spec.channel('east').id}",
            f"west/{sandboxes['west'].spec.channel('west').id}",
        }
        runs = {name: gateways[name][0].agent_log.asked(f"long job in {name}")[0] for name in NAMES}

        assert app.main.select_session(keys["east"])
        await pilot.pause()
        async with next_event(core.cores[0], SessionKilled) as killed:
            await pilot.press("k")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            assert (await killed).key == keys["east"]
        await until(pilot.pause, lambda: keys["east"] not in app.main.sessions, "east's session leaves the table")
        assert not process_alive(runs["east"].pid)
        assert process_alive(runs["west"].pid)
        assert keys["west"] in app.main.sessions
        await pilot.press("q")


async def test_a_wrong_token_is_refused_with_401_and_nothing_else(gateways: dict[str, tuple[Profile, str]]) -> None:
    _, url = gateways["east"]
    for attempt in ("wrong-token-wrong-token-0000", None):
        with pytest.raises(AttachError, match="refused"):
            await connect_all(
                endpoints([url], CockpitConfig(), token_file=None, env={"MPG_DASHBOARD_TOKEN": attempt or ""})
            )
    async with aiohttp.ClientSession() as session:
        for path in ("snapshot", "events"):
            async with session.get(f"{url}{API_PREFIX}/{path}", headers={"Authorization": "Bearer nope"}) as response:
                assert response.status == 401
                assert set(await response.json()) == {"error", "hint"}
        async with session.post(f"{url}{API_PREFIX}/commands/kill", json={"args": {"key": "1"}}) as response:
            assert response.status == 401
        async with session.get(f"{url}{API_PREFIX}/snapshot", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
