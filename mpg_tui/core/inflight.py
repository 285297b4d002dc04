"""Work the gateway has going: its background tasks, and the handling that must end before chat closes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


class InFlight:
    """Background tasks (kept referenced until done) and a count of messages being handled.

    At shutdown, after the sessions have answered every waiting prompt, each message's
    handler still has chat work to finish (remove its status line, say the run was cut
    short), which must happen before the chat client closes: :meth:`drain` waits for it.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._handling = 0
        self._all_handled = asyncio.Event()
        self._all_handled.set()

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> asyncio.Task[None]:
        """Run ``work`` in the background, keeping a reference to it until it is done."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @contextlib.asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        """Count work that must finish its chat calls before the chat client closes."""
        self._handling += 1
        self._all_handled.clear()
        try:
            yield
        finally:
            self._handling -= 1
            if self._handling == 0:
                self._all_handled.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the counted work to be done; True if it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._all_handled.wait()
        return self._all_handled.is_set()
