"""Who gets in: loopback-only by default, a token for anything else, bearer or login cookie."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from mpg_tui.core.clock import FakeClock
from mpg_tui.core.gateway import Gateway
from mpg_tui.dashboard import Dashboard, DashboardError
from mpg_tui.dashboard.auth import COOKIE_NAME, cookie_value, is_loopback
from tests.dashboard.conftest import TOKEN

PROTECTED = ["/", "/health", "/api/sessions", "/api/projects", "/api/status", "/api/chains", "/metrics"]
PROTECTED += ["/api/events", "/static/app.js", "/static/style.css"]


@pytest.fixture
async def guarded(core: Gateway, clock: FakeClock) -> AsyncIterator[Dashboard]:
    async with Dashboard(core, port=0, token=TOKEN, clock=clock) as running:
        yield running


@pytest.fixture
async def jar_client() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: the default jar ignores cookies from IP-address hosts such as 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "gateway.example"])
async def test_binding_beyond_loopback_without_a_token_is_refused(core: Gateway, host: str) -> None:
    dashboard = Dashboard(core, host=host, port=0)

    with pytest.raises(DashboardError, match="without a token") as info:
        await dashboard.start()

    assert "dashboardToken" in str(info.value)
    assert not dashboard.running


async def test_an_empty_token_is_refused(core: Gateway) -> None:
    with pytest.raises(DashboardError, match="token is empty"):
        await Dashboard(core, host="0.0.0.0", port=0, token="  ").start()


async def test_binding_all_interfaces_with_a_token_serves_and_still_demands_it(
    core: Gateway, clock: FakeClock, client: aiohttp.ClientSession
) -> None:
    async with Dashboard(core, host="0.0.0.0", port=0, token=TOKEN, clock=clock) as dashboard:
        async with client.get(dashboard.url + "health") as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with client.get(dashboard.url + "health", headers=headers) as response:
            assert response.status == 200


@pytest.mark.parametrize("path", PROTECTED)
async def test_every_route_needs_the_token(guarded: Dashboard, client: aiohttp.ClientSession, path: str) -> None:
    async with client.get(guarded.url + path.lstrip("/")) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", PROTECTED)
async def test_the_bearer_token_opens_every_route(guarded: Dashboard, client: aiohttp.ClientSession, path: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with client.get(guarded.url + path.lstrip("/"), headers=headers) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer ", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN.upper()}"],
)
async def test_a_wrong_token_is_refused(guarded: Dashboard, client: aiohttp.ClientSession, header: str) -> None:
    async with client.get(guarded.url + "api/status", headers={"Authorization": header}) as response:
        assert response.status == 401
        assert await response.json() == {
            "error": "unauthorized",
            "hint": "send 'Authorization: Bearer <token>' or sign in at /login",
        }


async def test_a_browser_without_the_token_gets_the_sign_in_form(
    guarded: Dashboard, client: aiohttp.ClientSession
) -> None:
    async with client.get(guarded.url, headers={"Accept": "text/html"}) as response:
        assert response.status == 401
        page = await response.text()
    assert '<form class="login-card" method="post" action="/login">' in page
    async with client.get(guarded.url + "login/style.css") as response:
        assert response.status == 200


async def test_login_link_sets_an_httponly_strict_cookie_holding_an_hmac_not_the_token(
    guarded: Dashboard, jar_client: aiohttp.ClientSession
) -> None:
    async with jar_client.get(guarded.url + "login", params={"token": TOKEN}, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/"
        set_cookie = response.headers["Set-Cookie"]
    assert f"{COOKIE_NAME}={cookie_value(TOKEN)}" in set_cookie
    assert TOKEN not in set_cookie
    assert "HttpOnly" in set_cookie
    assert "SameSite=Strict" in set_cookie
    assert "Path=/" in set_cookie

    async with jar_client.get(guarded.url + "api/status") as response:
        assert response.status == 200


async def test_login_form_post_sets_the_cookie_too(guarded: Dashboard, jar_client: aiohttp.ClientSession) -> None:
    async with jar_client.post(guarded.url + "login", data={"token": TOKEN}) as response:
        assert response.status == 200  # followed the redirect to the page
        assert response.url.path == "/"
        assert "Multi-Project Gateway" in await response.text()


async def test_login_with_a_wrong_token_says_so_and_sets_nothing(
    guarded: Dashboard, jar_client: aiohttp.ClientSession
) -> None:
    async with jar_client.post(guarded.url + "login", data={"token": "guess"}) as response:
        assert response.status == 401
        assert "That token is not right." in await response.text()
        assert "Set-Cookie" not in response.headers
    async with jar_client.get(guarded.url + "api/status") as response:
        assert response.status == 401


async def test_a_forged_cookie_is_refused(guarded: Dashboard, client: aiohttp.ClientSession) -> None:
    for forged in (TOKEN, cookie_value(TOKEN + "x"), ""):
        async with client.get(guarded.url + "api/status", headers={"Cookie": f"{COOKIE_NAME}={forged}"}) as response:
            assert response.status == 401


async def test_without_a_token_loopback_is_open_but_only_to_loopback_host_names(
    dashboard: Dashboard, client: aiohttp.ClientSession
) -> None:
    async with client.get(dashboard.url + "api/status") as response:
        assert response.status == 200
    port = dashboard.url.rsplit(":", 1)[1].rstrip("/")
    async with client.get(dashboard.url + "api/status", headers={"Host": f"localhost:{port}"}) as response:
        assert response.status == 200
    # A page on another site that rebinds its own name to 127.0.0.1 must not read the API.
    async with client.get(dashboard.url + "api/status", headers={"Host": f"evil.example:{port}"}) as response:
        assert response.status == 421


async def test_login_is_not_needed_without_a_token(dashboard: Dashboard, client: aiohttp.ClientSession) -> None:
    async with client.get(dashboard.url + "login", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("app.localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
