"""Injected REST failures (rate limits, server errors, refusals, in Discord's exact shape) and held calls.

A :class:`Fault` matches a method and a route pattern over the path below ``/api/v10``
(``*`` is one path segment, ``**`` any number) and answers the next ``count`` matching
requests instead of the real handler, which then has no effect.

Rate limits carry the headers discord.py reads. With ``via=True`` (what Discord's API
sends) discord.py sleeps ``retry_after`` and retries; with ``via=False`` it takes the 429
for a Cloudflare ban and raises ``HTTPException`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mpg_tui.sandbox.discord.errors import ApiError

log = logging.getLogger(__name__)

_BODIES: dict[int, tuple[str, int]] = {
    400: ("400: Bad Request", 0),
    401: ("401: Unauthorized", 0),
    403: ("Missing Permissions", 50013),
    404: ("404: Not Found", 0),
    500: ("500: Internal Server Error", 0),
    502: ("502: Bad Gateway", 0),
    503: ("503: Service Unavailable", 0),
    504: ("504: Gateway Timeout", 0),
}


def compile_route(pattern: str) -> re.Pattern[str]:
    """``/channels/*/messages`` -> a regex over the request path; ``**`` spans segments."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append(".*")
        else:
            parts.append("[^/]+".join(re.escape(piece) for piece in segment.split("*")))
    return re.compile("/" + "/".join(parts))


@dataclass
class Fault:
    method: str
    route: str
    status: int
    remaining: int = 1
    retry_after: float = 0.1
    via: bool = True
    is_global: bool = False
    message: str | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if not 400 <= self.status <= 599:
            raise ValueError(f"a fault's status must be 4xx or 5xx, not {self.status}")
        if self.remaining < 1:
            raise ValueError("a fault's count must be at least 1")
        if self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        self._regex = compile_route(self.route)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and self._regex.fullmatch(path) is not None

    def error(self) -> ApiError:
        if self.status == 429:
            headers = {
                "Retry-After": str(math.ceil(self.retry_after)),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Scope": "global" if self.is_global else "user",
            }
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            if self.via:
                headers["Via"] = "1.1 google"
            extra: dict[str, Any] = {"retry_after": self.retry_after, "global": self.is_global}
            return ApiError(429, self.message or "You are being rate limited.", 0, headers=headers, extra=extra)
        text, code = _BODIES.get(self.status, (f"{self.status}: Error", 0))
        return ApiError(self.status, self.message or text, code)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "via": self.via,
            "global": self.is_global,
            "message": self.message,
        }


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    @property
    def pending(self) -> list[Fault]:
        return list(self._faults)

    def add(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str) -> ApiError | None:
        """The injected error for this request, if a fault matches; uses up one of its count."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                log.info("injected %s for %s %s", fault.status, method, path)
                return fault.error()
        return None


@dataclass
class Hold:
    """Holds the next ``remaining`` matching REST calls until released (or ``seconds`` pass).

    The call then goes on as normal (or meets an injected :class:`Fault`). With
    ``content_prefix``, only JSON bodies whose ``content`` starts with it match, which is
    how a test picks one kind of message out of a thread (a status line, a reply).
    :attr:`arrived` is set once a call is being held, so a test can land the rest of its
    scenario while that call is in flight.
    """

    method: str
    route: str
    remaining: int = 1
    seconds: float | None = None
    """Release on its own after this long; ``None``: only :meth:`release` lets calls go."""
    content_prefix: str | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    held: int = 0
    """Calls held so far."""
    _released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.remaining < 1:
            raise ValueError("a hold's count must be at least 1")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("a hold's seconds must not be negative")
        self._regex = compile_route(self.route)

    def matches(self, method: str, path: str, content: str | None) -> bool:
        if self.method not in ("*", method.upper()) or self._regex.fullmatch(path) is None:
            return False
        return self.content_prefix is None or (content is not None and content.startswith(self.content_prefix))

    def release(self) -> None:
        self._released.set()

    async def wait(self) -> None:
        self.held += 1
        self.arrived.set()
        if self.seconds is None:
            await self._released.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.seconds):
                    await self._released.wait()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "route": self.route,
            "remaining": self.remaining,
            "seconds": self.seconds,
            "content_prefix": self.content_prefix,
            "held": self.held,
        }


class HoldBook:
    """The holds in force; each matching call uses one up and waits on it."""

    def __init__(self) -> None:
        self._holds: list[Hold] = []

    @property
    def pending(self) -> list[Hold]:
        return list(self._holds)

    @property
    def wants_content(self) -> bool:
        return any(h.content_prefix is not None for h in self._holds)

    def add(self, hold: Hold) -> Hold:
        self._holds.append(hold)
        return hold

    def clear(self) -> None:
        for hold in self._holds:
            hold.release()
        self._holds.clear()

    def take(self, method: str, path: str, content: str | None) -> Hold | None:
        for hold in self._holds:
            if hold.matches(method, path, content):
                hold.remaining -= 1
                if hold.remaining == 0:
                    self._holds.remove(hold)
                log.info("holding %s %s", method, path)
                return hold
        return None
