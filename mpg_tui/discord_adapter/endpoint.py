"""Point discord.py at a Discord-compatible server (the sandbox) instead of discord.com.

discord.py reads its REST base from ``discord.http.Route.BASE`` each time it builds a
route, and opens the gateway at ``DiscordWebSocket.DEFAULT_GATEWAY``; after READY it
resumes at the ``resume_gateway_url`` the server gave it. Both are class attributes, so
the override is process-wide: apply it only when a base URL is configured, and
:func:`restore_discord_endpoints` undoes it.
"""

from __future__ import annotations

import logging
import re

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

log = logging.getLogger(__name__)

_API_PATH = re.compile(r"^(?P<root>.*)/api/v(?P<version>[0-9]+)/?$")
_original: tuple[str, yarl.URL] | None = None


def gateway_url_for(api_base: str) -> str:
    """``http://host:port[/prefix]/api/v10`` -> ``ws://host:port[/prefix]/`` (``https`` -> ``wss``)."""
    url = yarl.URL(api_base)
    match = _API_PATH.match(url.path)
    if url.scheme not in ("http", "https") or not url.host or match is None:
        raise ValueError(
            f"expected an http(s) URL ending in /api/v<N>, like http://127.0.0.1:8080/api/v10: {api_base!r}"
        )
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.with_scheme(scheme).with_path(match.group("root") + "/").with_query(None))


def point_discord_py_at(api_base: str, *, gateway_url: str | None = None) -> None:
    """Send discord.py's REST calls to ``api_base`` and its gateway to the server behind it.

    The gateway defaults to the root of the same host (where the sandbox serves it);
    pass ``gateway_url`` for a server that puts it elsewhere.
    """
    global _original
    gateway = gateway_url or gateway_url_for(api_base)
    if _original is None:
        _original = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    Route.BASE = api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    log.info("discord.py pointed at %s (gateway %s)", Route.BASE, gateway)


def restore_discord_endpoints() -> None:
    """Put back the endpoints discord.py had before :func:`point_discord_py_at` (no-op if never applied)."""
    global _original
    if _original is None:
        return
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = _original
    _original = None
