"""The server-rendered page: the same data as the API, readable without JavaScript."""

from __future__ import annotations

import re

import aiohttp
import pytest

from mpg_tui import __version__
from mpg_tui.core.clock import FakeClock
from mpg_tui.dashboard import Dashboard
from mpg_tui.dashboard.page import fmt_cost, fmt_tokens
from mpg_tui.sandbox.world import World
from mpg_tui.timefmt import format_ago, format_duration, format_run_length
from tests.dashboard.conftest import API, WEB


async def fetch_page(client: aiohttp.ClientSession, dashboard: Dashboard) -> str:
    async with client.get(dashboard.url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        return await response.text()


def text_of(page: str, element_id: str) -> str:
    """The text inside the element with ``id`` (tags removed)."""
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:span|strong|tbody|div|ol)>\s*(?:</|<(?!/))', page, re.S)
    assert match, f"no element #{element_id}"
    return re.sub(r"<[^>]+>", " ", match[1])


async def test_without_javascript_the_page_refreshes_itself_every_five_seconds(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    page = await fetch_page(client, dashboard)

    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page


async def test_header_shows_connection_uptime_and_version(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    world.connect("disconnected", "network down")
    clock.advance(3600)

    page = await fetch_page(client, dashboard)

    assert '<span id="connection" class="pill conn-disconnected"' in page
    assert "Discord disconnected" in page
    assert '<strong id="uptime">1h 01m</strong>' in page
    assert f'<span id="version">v{__version__}</span>' in page


async def test_sessions_are_rendered_with_state_queue_agent_cost_tokens_and_activity(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    await world.ask(WEB, "@pm plan coupons", message_id="5")
    await world.finish("5:pm", cost_usd=0.0123, input_tokens=12_300, output_tokens=456)
    assert await world.ask(API, "rotate the keys", message_id="6") == "6"
    for n in range(3):
        await world.ask("6", f"and then step {n}")  # queued behind it
    world.progress("6", "src/app.py", tool="Edit")
    clock.advance(125)

    page = await fetch_page(client, dashboard)

    running = re.search(r'<tr data-key="6" data-state="running">.*?</tr>', page, re.S)
    idle = re.search(r'<tr data-key="5:pm" data-state="idle">.*?</tr>', page, re.S)
    assert running and idle
    assert '<span class="badge state-running">running</span>' in running[0]
    assert '<td class="num hot">3</td>' in running[0]
    assert "Edit: src/app.py" in running[0]
    assert "2m ago" in running[0]
    assert ">api<" in running[0]
    assert "@pm" in idle[0]
    assert "$0.012" in idle[0]
    assert "12.3k / 456" in idle[0]
    assert re.search(r'<div class="card-value">2</div><div class="card-sub">1 running · 3 queued</div>', page)


async def test_chains_render_user_then_each_hop_with_state_duration_and_cost(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    await world.ask(WEB, "@pm plan coupons", message_id="77")
    clock.advance(12.4)
    await world.finish("77:pm", "HANDOFF @engineer: build coupons", cost_usd=0.018)

    page = await fetch_page(client, dashboard)

    chain = re.search(r'<div class="chain" data-thread="77">.*?</div></div>', page, re.S)
    assert chain
    hops = re.findall(r'<span class="hop hop-(\w+)"><b>([^<]+)</b>(?:<small>([^<]*)</small>)?', chain[0])
    assert hops == [
        ("user", "user", ""),
        ("done", "@pm", "done · 12.4s · $0.018"),
        ("running", "@engineer", "running"),
    ]
    assert "turn 1/5" in chain[0]  # one handoff taken


async def test_projects_render_with_their_agents_and_roles(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    page = await fetch_page(client, dashboard)

    assert '<span class="agent">@pm</span><span class="role">Product Manager</span>' in page
    assert '<span class="tag">roles: dev</span>' in page
    assert '<span class="tag">10/min per user</span>' in page
    assert '<div class="dir mono">/srv/projects/api</div>' in page


async def test_recent_events_are_in_the_log_newest_first(
    world: World, clock: FakeClock, dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    await world.ask(WEB, "@pm plan it", message_id="8")
    clock.advance(1.5)
    await world.finish("8:pm", cost_usd=0.5)

    page = await fetch_page(client, dashboard)

    kinds = re.findall(r'<li class="ev ev-(\w+)', page)
    assert kinds == [
        "handoff_stopped", "reply_sent", "run_finished", "run_started", "thread_opened", "message_received",
    ]  # fmt: skip
    assert "8:pm finished in 1.5s · $0.500" in page
    assert "8:pm started as @pm (direct): plan it" in page


async def test_an_empty_gateway_says_so_instead_of_showing_blank_tables(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    page = await fetch_page(client, dashboard)

    assert "No sessions yet." in page
    assert "No agent handoffs yet." in page
    assert "Waiting for events…" in page


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "now"), (42, "42s ago"), (125, "2m ago"), (7300, "2h ago"), (200_000, "2d ago")]
)
def test_relative_times(seconds: float, text: str) -> None:
    assert format_ago(seconds) == text


def test_number_formats() -> None:
    assert [fmt_cost(v) for v in (0, 0.0042, 0.25, 1234.5)] == ["$0.00", "$0.0042", "$0.250", "$1,234.50"]
    assert [fmt_tokens(v) for v in (999, 12_345, 3_400_000)] == ["999", "12.3k", "3.40M"]
    assert [format_run_length(v) for v in (0.45, 12.4, 95.8, 4000)] == ["450ms", "12.4s", "1m35s", "1h06m"]
    assert [format_duration(v) for v in (59, 61, 3661, 90_000)] == ["59s", "1m", "1h 01m", "1d 01h"]
