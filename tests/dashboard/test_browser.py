"""The page in a real browser: headless Chromium over the DevTools protocol.

Skipped when ``/usr/bin/chromium`` is missing on a developer machine (``scripts/ensure-chromium``
installs it); on CI (``CI`` set) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.dashboard import Dashboard
from mpg_tui.sandbox.world import World
from tests.dashboard.cdp import CHROMIUM, Browser, Page
from tests.dashboard.conftest import API, TOKEN, WEB

THREAD = "1300000000000000042"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI; the test setup must run scripts/ensure-chromium")
        pytest.skip(f"{CHROMIUM} is not installed (run scripts/ensure-chromium)")
    async with Browser() as running:
        yield running


def row(key: str) -> str:
    """JavaScript for the sessions-table row of ``key`` (null when absent)."""
    return f"document.querySelector('#sessions tr[data-key=' + {json.dumps(json.dumps(key))} + ']')"


async def open_live(browser: Browser, url: str) -> Page:
    page = await browser.new_page()
    await page.navigate(url)
    # "live" is set when the event stream is open, i.e. the page's bus subscription exists.
    await page.wait_for("document.body.dataset.live === 'live'")
    return page


async def test_a_session_started_after_load_appears_live_without_reloading(
    browser: Browser, world: World, dashboard: Dashboard
) -> None:
    page = await open_live(browser, dashboard.url)
    assert await page.evaluate(f"{row(THREAD + ':pm')} === null")
    await page.evaluate("window.__sameDocument = true")

    await world.ask(WEB, "@pm Plan the <search> feature", message_id=THREAD)

    state = await page.wait_for(f"{row(THREAD + ':pm')}?.dataset.state")
    assert state == "running"
    assert await page.evaluate(f"{row(THREAD + ':pm')}.querySelector('.agent').textContent") == "@pm"
    assert await page.evaluate("document.getElementById('sessions-count').textContent") == "1"
    log_line = await page.wait_for("document.querySelector('#events .ev-run_started .text')?.textContent")
    assert log_line == f"{THREAD}:pm started as @pm (direct): Plan the <search> feature"

    await world.finish(f"{THREAD}:pm", cost_usd=0.25)

    assert await page.wait_for(f"{row(THREAD + ':pm')}?.dataset.state === 'idle'")
    assert await page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    assert page.errors == []


async def test_chains_and_connection_changes_update_live(browser: Browser, world: World, dashboard: Dashboard) -> None:
    page = await open_live(browser, dashboard.url)

    await world.ask(WEB, "@pm plan coupons", message_id=THREAD)
    await world.finish(f"{THREAD}:pm", "HANDOFF @engineer: build coupons", cost_usd=0.018)
    world.connect("disconnected", "network down")

    # The chain shows up with the pm's hop first; wait until the handoff has reached it too.
    hops = await page.wait_for(
        f"(() => {{ const c = document.querySelector('#chains .chain[data-thread=\"{THREAD}\"]');"
        " const hops = c && [...c.querySelectorAll('.hop b')].map((b) => b.textContent);"
        " return hops && hops.length === 3 && hops.join(' > '); })()"
    )
    assert hops == "user > @pm > @engineer"
    label = await page.wait_for("document.querySelector('#connection.conn-disconnected .label')?.textContent")
    assert label == "Discord disconnected"
    assert page.errors == []


async def test_signing_in_with_the_token_link_gives_a_live_page(
    browser: Browser, world: World, clock: FakeClock
) -> None:
    async with Dashboard(world.gateway, port=0, token=TOKEN, clock=clock) as dashboard:
        page = await browser.new_page()
        await page.navigate(dashboard.url)
        assert await page.evaluate("document.querySelector('form.login-card') !== null")
        page.errors.clear()  # the browser logs the expected 401 of that first visit

        await page.navigate(f"{dashboard.url}login?token={TOKEN}")
        await page.wait_for("document.body.dataset.live === 'live'")

        assert await page.evaluate("location.pathname + location.search") == "/"
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts
        await world.ask(API, "hello", message_id=THREAD)
        assert await page.wait_for(f"{row(THREAD)}?.dataset.state") == "running"
        assert page.errors == []


async def test_a_request_appears_live_and_the_operator_decides_it_with_a_click(
    browser: Browser, world: World, clock: FakeClock
) -> None:
    async with Dashboard(world.gateway, port=0, token=TOKEN, clock=clock) as dashboard:
        page = await browser.new_page()
        await page.navigate(f"{dashboard.url}login?token={TOKEN}")
        await page.wait_for("document.body.dataset.live === 'live'")
        page.errors.clear()
        key = await world.ask(WEB, "@engineer run the tests", message_id=THREAD, author="ana", roles=("dev",))
        assert key is not None
        asking = world.live(key).ask("Bash", {"command": "python3 -m pytest"})

        summary = await page.wait_for("document.querySelector('#approvals li.approval .summary')?.textContent")
        assert summary == "python3 -m pytest"
        assert await page.evaluate("document.getElementById('approvals-count').textContent") == "1"
        await page.evaluate("document.querySelector('#approvals button[data-choice=\"allow\"]').click()")

        decision = await asking
        assert (decision.outcome, decision.decided_by) == ("allow", "the operator")
        assert await page.wait_for("document.querySelector('#approvals li.approval') === null")
        assert await page.evaluate("document.getElementById('approvals-count').textContent") == "0"
        assert page.errors == []
