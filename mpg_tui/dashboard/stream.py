"""Live events for the dashboard: the ``/api/events`` stream and the recent-events ring.

Each stream client owns one bounded bus subscription, opened when it connects and
closed when it leaves. Publishing into it never waits: a client that reads too slowly
loses its oldest events (they are counted, reported to the client as an ``event:
dropped`` frame and added to ``mpg_dashboard_events_dropped_total``), so a stalled
browser can never hold the gateway back. Idle streams get a comment line every
``heartbeat_s`` seconds, which keeps proxies from closing them and lets the server
notice clients that went away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from mpg_tui.core.bus import EventBus, Subscription
from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.events import Event

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
QUEUE_SIZE = 256
WRITE_TIMEOUT_S = 30.0
RETRY_MS = 3000


@dataclass(frozen=True, kw_only=True)
class _Control(Event):
    """Offered straight to one client's queue to wake it; never published on the bus."""

    kind: ClassVar[str] = "control"
    action: str


_HEARTBEAT = _Control(action="heartbeat", at=0.0)
_CLOSE = _Control(action="close", at=0.0)


def _json(data: Any) -> str:
    # default=str: an event field of an unexpected type must not kill the stream.
    return json.dumps(data, separators=(",", ":"), default=str)


def encode_event(event: Event) -> bytes:
    """One server-sent event frame: the event's kind, and its ``to_dict()`` as JSON."""
    return f"event: {event.kind}\ndata: {_json(event.to_dict())}\n\n".encode()


def _frame(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {_json(data)}\n\n".encode()


class RecentEvents:
    """The last ``maxlen`` events, newest last, for pages rendered before a stream opens."""

    def __init__(self, bus: EventBus, maxlen: int = 200) -> None:
        self._bus = bus
        self._events: deque[Event] = deque(maxlen=maxlen)
        self._stop: Callable[[], None] | None = None

    def attach(self) -> None:
        if self._stop is None:
            self._stop = self._bus.listen(self._events.append)

    def detach(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def newest_first(self, limit: int) -> list[Event]:
        return list(reversed(self._events))[:limit]


class EventStreams:
    """Serves ``GET /api/events`` to any number of clients."""

    def __init__(
        self,
        bus: EventBus,
        clock: Clock,
        *,
        on_dropped: Callable[[int], None] = lambda _n: None,
        heartbeat_s: float = HEARTBEAT_S,
        queue_size: int = QUEUE_SIZE,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        if heartbeat_s <= 0 or queue_size < 1:
            raise ValueError("heartbeat_s must be positive and queue_size at least 1")
        self._bus = bus
        self._clock = clock
        self._on_dropped = on_dropped
        self._heartbeat_s = heartbeat_s
        self._queue_size = queue_size
        self._write_timeout_s = write_timeout_s
        self._clients: dict[Subscription, asyncio.Task[Any] | None] = {}
        self._timer: TimerHandle | None = None
        self._closed = False
        self._change = asyncio.Event()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        self._closed = False
        self._arm()

    def _arm(self) -> None:
        self._timer = self._clock.call_later(self._heartbeat_s, self._beat)

    def _beat(self) -> None:
        if self._closed:
            return
        for sub in self._clients:
            # A client with events waiting is about to be written to anyway.
            if sub.queue.empty():
                sub.offer(_HEARTBEAT)
        self._arm()

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def wait_for_clients(self, count: int, timeout: float = 10.0) -> None:
        """Wait until exactly ``count`` clients are connected (shutdown, tests)."""
        async with asyncio.timeout(timeout):
            while len(self._clients) != count:
                await self._change.wait()

    async def close(self, grace_s: float = 2.0) -> None:
        """End every stream: ask each to finish, then cancel the ones stuck writing."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sub in self._clients:
            sub.offer(_CLOSE)
        try:
            await self.wait_for_clients(0, timeout=grace_s)
        except TimeoutError:
            stuck = [task for task in self._clients.values() if task is not None]
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._closed:
            raise web.HTTPServiceUnavailable(text="The dashboard is shutting down.\n")
        sub = self._bus.subscribe(maxsize=self._queue_size)
        self._clients[sub] = asyncio.current_task()
        self._changed()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await self._write(response, f"retry: {RETRY_MS}\n: connected\n\n".encode())
            await self._pump(sub, response)
        except (ConnectionResetError, TimeoutError) as exc:
            log.debug("event stream client left: %s", type(exc).__name__)
        finally:
            sub.close()
            self._clients.pop(sub, None)
            self._changed()
        return response

    async def _pump(self, sub: Subscription, response: web.StreamResponse) -> None:
        reported = 0
        while True:
            event = await sub.get()
            if sub.dropped != reported:
                lost, reported = sub.dropped - reported, sub.dropped
                self._on_dropped(lost)
                await self._write(response, _frame("dropped", {"dropped": lost}))
            if event is _CLOSE:
                return
            if event is _HEARTBEAT:
                await self._write(response, b": heartbeat\n\n")
                continue
            await self._write(response, encode_event(event))

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        # A client that accepts nothing for this long is treated as gone.
        async with asyncio.timeout(self._write_timeout_s):
            await response.write(data)
