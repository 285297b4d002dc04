"""What a thread sees while claude works: a live status line and "Still working…" pings.

One status message per run, edited in place as progress arrives (current tool and
target, elapsed time) no more often than Discord's edit limits allow, and removed when
the reply is posted. Independently, every ``stuckNotifyMs`` a long run earns MPG's
"⏳ Still working… (Nm elapsed)" note. Chat failures here are logged and never affect
the run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.embeds import still_working_text
from mpg_tui.core.ports import ChatError, ChatPort
from mpg_tui.core.runner import Progress
from mpg_tui.timefmt import format_duration

log = logging.getLogger(__name__)

STATUS_EDIT_INTERVAL_S = 2.0
"""Discord allows about five edits per five seconds per channel; stay well under."""


def status_text(label: str, step: str, elapsed_s: float) -> str:
    return f"⚙️ {label} is working — {step} ({format_duration(elapsed_s)})"


class RunStatus:
    """The live status message and stuck pings of one run in one thread."""

    def __init__(
        self,
        chat: ChatPort,
        channel_id: str,
        clock: Clock,
        *,
        label: str,
        live: bool,
        stuck_notify_s: float,
    ) -> None:
        self._chat = chat
        self._channel_id = channel_id
        self._clock = clock
        self._label = label
        self._live = live
        self._stuck_s = stuck_notify_s
        self._started = clock.monotonic()
        self._step = "starting"
        self._message_id: str | None = None
        self._last_edit = -STATUS_EDIT_INTERVAL_S
        self._edit_timer: TimerHandle | None = None
        self._stuck_timer: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._closed = False

    def start(self) -> None:
        """The run has started (it may have waited in a queue until now)."""
        self._started = self._clock.monotonic()
        if self._stuck_s > 0 and self._stuck_timer is None and not self._closed:
            self._stuck_timer = self._clock.call_later(self._stuck_s, self._stuck)

    @property
    def elapsed_s(self) -> float:
        return self._clock.monotonic() - self._started

    def on_progress(self, progress: Progress) -> None:
        if self._closed or not self._live or progress.step == "init":
            return
        self._step = " ".join(progress.text.split())[:120]
        due = self._last_edit + STATUS_EDIT_INTERVAL_S - self._clock.monotonic()
        if due <= 0:
            self._spawn(self._show)
        elif self._edit_timer is None:
            self._edit_timer = self._clock.call_later(due, lambda: self._spawn(self._show))

    async def close(self) -> None:
        """The run is over: stop pinging and remove the status message."""
        self._closed = True
        for timer in (self._edit_timer, self._stuck_timer):
            if timer is not None:
                timer.cancel()
        # Let a send or edit already on its way finish rather than cancel it: a cancelled
        # send may still post the message (never to be removed, its ID lost), and cutting a
        # chat client's request short can leave its per-channel limiter stuck. A fast run
        # (a warm claude answers in milliseconds) ends while its first status is in flight.
        pending = list(self._tasks)
        if pending:
            await asyncio.wait(pending)
        if self._message_id is not None:
            try:
                await self._chat.delete(self._channel_id, self._message_id)
            except ChatError as exc:
                log.debug("could not remove status message: %s", exc)

    def _spawn(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if self._closed:
            return
        task = asyncio.create_task(job())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _show(self) -> None:
        self._edit_timer = None
        async with self._lock:
            if self._closed:
                return
            self._last_edit = self._clock.monotonic()
            text = status_text(self._label, self._step, self.elapsed_s)
            try:
                if self._message_id is None:
                    self._message_id = await self._chat.send(self._channel_id, text)
                else:
                    await self._chat.edit(self._channel_id, self._message_id, text)
            except ChatError as exc:
                log.debug("status message update failed: %s", exc)

    def _stuck(self) -> None:
        if self._closed:
            return
        self._spawn(self._send_stuck)
        self._stuck_timer = self._clock.call_later(self._stuck_s, self._stuck)

    async def _send_stuck(self) -> None:
        try:
            await self._chat.send(self._channel_id, still_working_text(self.elapsed_s))
        except ChatError as exc:
            log.debug("still-working note failed: %s", exc)
