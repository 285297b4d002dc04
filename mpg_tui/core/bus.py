"""Publish/subscribe for core events.

Publishing never blocks and never fails: each subscriber owns a bounded queue, and a
subscriber that falls behind loses its oldest events (counted in ``dropped``) rather
than slowing the gateway down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from mpg_tui.core.clock import Clock, SystemClock
from mpg_tui.core.events import Event

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, kinds: tuple[type[Event], ...] | None) -> None:
        self._bus = bus
        self._kinds = kinds
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def wants(self, event: Event) -> bool:
        return self._kinds is None or isinstance(event, self._kinds)

    def offer(self, event: Event) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self, clock: Clock | None = None) -> None:
        """``clock`` stamps events published without a time (``at`` left at 0)."""
        self._clock: Clock = clock or SystemClock()
        self._subscriptions: list[Subscription] = []
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, *kinds: type[Event], maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize, kinds or None)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def listen(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` synchronously for every event; returns a function that stops it.

        For faces that have their own thread-safe hand-off (Textual's ``post_message``),
        or for metrics that must not miss an event.
        """
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def publish(self, event: Event) -> None:
        if not event.at:
            event = dataclasses.replace(event, at=self._clock.now())
        for sub in self._subscriptions:
            if sub.wants(event):
                sub.offer(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.kind)

    async def wait_for(
        self, kind: type[E], predicate: Callable[[E], bool] = lambda _e: True, timeout: float = 10.0
    ) -> E:
        """Wait for the next event of ``kind`` matching ``predicate`` (tests and scripts)."""
        with self.subscribe(kind) as sub:
            async with asyncio.timeout(timeout):
                while True:
                    event = await sub.get()
                    if isinstance(event, kind) and predicate(event):
                        return event
