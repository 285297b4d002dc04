"""Who may read the dashboard: loopback binds, bearer tokens and the login cookie.

The rules:

* Bound to loopback without a token, the dashboard is open to local processes, but only
  for requests whose ``Host`` names the loopback, so a web page cannot read it through a
  DNS-rebound name.
* Bound anywhere else, a token is mandatory (:func:`check_bind` refuses otherwise).
* With a token, every route but the sign-in form (``/login`` and its stylesheet) needs
  ``Authorization: Bearer <token>`` or the login cookie. The cookie holds an HMAC of the
  token, never the token, so reading it back tells nothing about the token. Comparisons
  use :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

log = logging.getLogger(__name__)

COOKIE_NAME = "mpg_dashboard"
COOKIE_MAX_AGE_S = 7 * 24 * 3600
LOGIN_PATH = "/login"
LOGIN_STYLE_PATH = "/login/style.css"
PUBLIC_PATHS = frozenset({LOGIN_PATH, LOGIN_STYLE_PATH})
"""What a visitor without a token may load: the sign-in form and its stylesheet."""
MIN_TOKEN_CHARS = 16
_COOKIE_CONTEXT = b"mpg-tui dashboard login v1"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UnsafeBindError(ValueError):
    """The bind address would expose the dashboard without a token."""


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a bind that would serve the dashboard to the network without a token."""
    if token is not None and not token.strip():
        raise UnsafeBindError("the dashboard token is empty; set a real token or remove it")
    if token is None and not is_loopback(host):
        shown = host or "all interfaces"
        raise UnsafeBindError(
            f"refusing to serve the dashboard on {shown} without a token: set defaults.dashboardToken "
            "(or MPG_DASHBOARD_TOKEN), or bind defaults.httpHost to 127.0.0.1"
        )
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        log.warning("the dashboard token is shorter than %d characters; use a long random one", MIN_TOKEN_CHARS)


def cookie_value(token: str) -> str:
    """What the login cookie holds: a keyed hash of the token, not the token."""
    return hmac.new(token.encode("utf-8"), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def token_matches(candidate: str, token: str) -> bool:
    return hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8"))


def _host_is_loopback(request: web.Request) -> bool:
    host = request.host
    # Strip the port: "[::1]:3100" -> "[::1]", "127.0.0.1:3100" -> "127.0.0.1".
    if host.startswith("["):
        host = host[: host.find("]") + 1] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return is_loopback(host)


class Authenticator:
    """Decides, per request, whether it may see the dashboard."""

    def __init__(self, token: str | None) -> None:
        self._token = token
        self._cookie = cookie_value(token) if token is not None else None

    @property
    def required(self) -> bool:
        return self._token is not None

    def check_token(self, candidate: str) -> bool:
        return self._token is not None and token_matches(candidate, self._token)

    def is_authorised(self, request: web.Request) -> bool:
        if self._token is None or self._cookie is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value and token_matches(value.strip(), self._token):
            return True
        cookie = request.cookies.get(COOKIE_NAME)
        return cookie is not None and hmac.compare_digest(cookie.encode("utf-8"), self._cookie.encode("utf-8"))

    def set_login_cookie(self, response: web.StreamResponse) -> None:
        if self._cookie is None:
            return
        response.set_cookie(
            COOKIE_NAME,
            self._cookie,
            max_age=COOKIE_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="Strict",
        )

    def middleware(self, unauthorised: Handler) -> Middleware:
        """An aiohttp middleware; ``unauthorised`` answers requests that are turned away."""

        @web.middleware
        async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self._token is None:
                if not _host_is_loopback(request):
                    raise web.HTTPMisdirectedRequest(
                        text="This dashboard answers only to localhost names; open it as http://127.0.0.1.\n"
                    )
                return await handler(request)
            if request.path in PUBLIC_PATHS or self.is_authorised(request):
                return await handler(request)
            return await unauthorised(request)

        return authenticate
