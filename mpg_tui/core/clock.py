"""The one source of time for the core.

Idle timeouts, TTLs, rate windows and "still working" pings all read time and schedule
callbacks through a :class:`Clock`, so tests drive them with :class:`FakeClock` instead
of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch (what is persisted and shown)."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; only differences mean anything."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` once after ``delay`` seconds on the event loop."""


class SystemClock:
    """Real time; timers run on the running asyncio loop."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to; timers fire inside :meth:`advance`."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._seq = itertools.count()
        self._timers: list[tuple[float, int, _FakeTimer, Callable[[], object]]] = []

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        timer = _FakeTimer()
        heapq.heappush(self._timers, (self._mono + max(0.0, delay), next(self._seq), timer, callback))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in order."""
        target = self._mono + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer, callback = heapq.heappop(self._timers)
            self._now += due - self._mono
            self._mono = due
            if not timer.cancelled:
                callback()
        self._now += target - self._mono
        self._mono = target

    @property
    def pending(self) -> int:
        return sum(1 for _, _, t, _ in self._timers if not t.cancelled)
