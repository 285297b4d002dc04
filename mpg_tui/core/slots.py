"""The global run limit (``maxConcurrentSessions``): slots granted first come, first served."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class RunSlots:
    """The global run limit: a FIFO of waiters, each handed a slot directly on release."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def request(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.active < self.limit and not self.waiters:
            self.active += 1
            future.set_result(None)
        else:
            self.waiters.append(future)
        return future

    def release(self) -> None:
        if self.active > self.limit:
            self.active -= 1  # the limit was lowered: this slot goes away rather than on
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves on; ``active`` is unchanged
                return
        self.active -= 1

    def withdraw(self, future: asyncio.Future[None]) -> None:
        """Give up a request: hand the slot on if it was granted, else leave the line."""
        if future.done() and not future.cancelled():
            self.release()
            return
        with contextlib.suppress(ValueError):
            self.waiters.remove(future)
        future.cancel()

    def resize(self, limit: int) -> None:
        """A new limit; raising it lets waiters in at once, lowering it lets runs finish."""
        self.limit = limit
        while self.waiters and self.active < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    def position_for_new(self) -> int:
        """0 if a new request would get a slot at once, else its 1-based place in line."""
        if self.active < self.limit and not self.waiters:
            return 0
        return len(self.waiters) + 1
