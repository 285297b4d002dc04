"""Hardening: static files, security headers, secrets never served, bind errors reported clearly."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.dashboard import Dashboard, DashboardError
from tests.dashboard.conftest import DEFAULT_CONFIG, TOKEN, WEB, MakeWorld

ALL_ROUTES = ["/", "/health", "/api/sessions", "/api/projects", "/api/status", "/api/chains", "/metrics"]
ALL_ROUTES += ["/static/app.js", "/static/style.css", "/login", "/login/style.css"]


async def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as given (clients normalise ``..`` away before sending)."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../etc/passwd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/..\\..\\etc\\passwd",
        "/static//etc/passwd",
        "/static/",
        "/static/.",
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/app.js%00.css",
    ],
)
async def test_static_paths_cannot_reach_outside_the_static_directory(dashboard: Dashboard, target: str) -> None:
    status, body = await raw_get(dashboard.url, target)

    assert status == 404
    assert b"root:" not in body
    assert b"import" not in body


async def test_static_files_are_served_with_their_types_and_revalidation(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    async with client.get(dashboard.url + "static/app.js") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
        etag = response.headers["ETag"]
        assert "EventSource" in await response.text()
    async with client.get(dashboard.url + "static/app.js", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    async with client.get(dashboard.url + "static/style.css") as response:
        assert response.headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize("path", ALL_ROUTES)
async def test_every_response_carries_the_security_headers(
    dashboard: Dashboard, client: aiohttp.ClientSession, path: str
) -> None:
    async with client.get(dashboard.url + path.lstrip("/"), allow_redirects=False) as response:
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"


async def test_errors_carry_the_security_headers_too(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    async with client.get(dashboard.url + "static/missing.js") as response:
        assert response.status == 404
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


async def test_the_page_has_no_inline_script(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    async with client.get(dashboard.url) as response:
        page = await response.text()

    assert page.count("<script") == 1
    assert '<script src="/static/app.js" defer></script>' in page
    assert "onclick=" not in page
    assert "javascript:" not in page


async def test_no_response_ever_contains_the_token_or_config_secrets(
    make_world: MakeWorld, clock: FakeClock, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_secret = "discord-bot-token-from-env-0xDEADBEEF"
    monkeypatch.setenv("DISCORD_BOT_TOKEN", env_secret)
    config = {**DEFAULT_CONFIG, "defaults": {**DEFAULT_CONFIG["defaults"], "dashboardToken": TOKEN}}
    world = make_world(config)
    core = world.gateway
    config_secret = DEFAULT_CONFIG["defaults"]["dashboardToken"]
    await world.ask(WEB, "@pm plan coupons", message_id="1")
    await world.finish("1:pm", "HANDOFF @engineer: build coupons")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with Dashboard(core, port=0, token=TOKEN, clock=clock) as dashboard:
        bodies: list[str] = []
        for path in [*ALL_ROUTES, "/login?token=wrong", "/nope"]:
            async with client.get(dashboard.url + path.lstrip("/"), headers=headers, allow_redirects=False) as r:
                bodies.append(await r.text() + str(dict(r.headers)))
        async with client.get(dashboard.url + "login", params={"token": TOKEN}, allow_redirects=False) as r:
            bodies.append(await r.text() + str(dict(r.headers)))
        async with client.get(dashboard.url + "api/events", headers=headers) as stream:
            await stream.content.readuntil(b"\n\n")
            world.connect("ready", "ping")
            bodies.append((await stream.content.readuntil(b"\n\n")).decode())

    for body in bodies:
        assert TOKEN not in body
        assert config_secret not in body
        assert env_secret not in body


async def test_user_supplied_names_are_escaped_in_the_page(
    make_world: MakeWorld, clock: FakeClock, client: aiohttp.ClientSession
) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    agents = {"pm": {"role": hostile, "prompt": hostile}}
    config = {"projects": {"1": {"name": hostile, "directory": "/p/<b>", "agents": agents, "allowedRoles": [hostile]}}}
    world = make_world(config)
    async with Dashboard(world.gateway, port=0, clock=clock) as dashboard:
        # What members write reaches the page through events (thread names, prompts, replies, authors).
        await world.ask("1", f"@pm {hostile}", message_id="9", author=hostile)
        await world.finish("9:pm", f"{hostile}\nHANDOFF @pm: {hostile}")
        async with client.get(dashboard.url) as response:
            page = await response.text()

    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "/p/&lt;b&gt;" in page


async def test_a_port_in_use_is_a_clear_dashboard_error(core: Gateway) -> None:
    listeners = list(core.bus._listeners)  # the gateway's own
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dashboard = Dashboard(core, port=port)

        with pytest.raises(DashboardError) as info:
            await dashboard.start()

    assert str(info.value) == (
        f"Dashboard port {port} is already in use; set defaults.httpPort to another port or false"
    )
    assert not dashboard.running
    assert core.bus._listeners == listeners


async def test_an_address_that_is_not_ours_is_a_clear_dashboard_error(core: Gateway) -> None:
    dashboard = Dashboard(core, host="192.0.2.1", port=0, token=TOKEN)  # TEST-NET-1: never a local address

    with pytest.raises(DashboardError, match=r"cannot listen on 192\.0\.2\.1:0"):
        await dashboard.start()


async def test_stop_is_idempotent_and_start_twice_is_a_programming_error(dashboard: Dashboard) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await dashboard.start()
    await dashboard.stop()
    await dashboard.stop()
    assert not dashboard.running


async def test_the_access_log_never_records_query_strings_where_a_token_may_be(
    core: Gateway, clock: FakeClock, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Dashboard(core, port=0, token=TOKEN, clock=clock) as dashboard:
        for token in (TOKEN, TOKEN + "-wrong"):
            async with client.get(dashboard.url + "login", params={"token": token}, allow_redirects=False):
                pass

    assert "GET /login 303" in caplog.text
    assert "GET /login 401" in caplog.text
    assert TOKEN not in caplog.text
