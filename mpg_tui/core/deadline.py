"""A run's own timeout, which stops counting while the run waits for a person.

Runners time a run with :class:`RunDeadline` instead of a bare ``clock.call_later``: given
the run's :class:`~mpg_tui.core.permissions.HumanWaits`, the deadline is suspended while a
request is pending (its remaining time kept) and re-armed when none is. Time spent waiting
for a person is bounded by ``approvalTimeoutMs`` instead.
"""

from __future__ import annotations

from collections.abc import Callable

from mpg_tui.core.clock import Clock, TimerHandle
from mpg_tui.core.permissions import HumanWaits


class RunDeadline:
    """Calls ``on_expire`` once ``timeout_s`` of not-waiting time has passed."""

    def __init__(
        self, clock: Clock, timeout_s: float, on_expire: Callable[[], object], waits: HumanWaits | None = None
    ) -> None:
        self._clock = clock
        self._on_expire = on_expire
        self._remaining = max(0.0, timeout_s)
        self._armed_at = clock.monotonic()
        self._timer: TimerHandle | None = None
        self._done = False
        self._forget: Callable[[], None] | None = None
        if waits is not None:
            self._forget = waits.listen(self._on_waiting)
        if waits is None or not waits.waiting:
            self._arm()

    @property
    def paused(self) -> bool:
        return self._timer is None and not self._done

    def cancel(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._forget is not None:
            self._forget()
            self._forget = None

    def _arm(self) -> None:
        self._armed_at = self._clock.monotonic()
        self._timer = self._clock.call_later(self._remaining, self._fire)

    def _on_waiting(self, waiting: bool) -> None:
        if self._done:
            return
        if waiting and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._remaining = max(0.0, self._remaining - (self._clock.monotonic() - self._armed_at))
        elif not waiting and self._timer is None:
            self._arm()

    def _fire(self) -> None:
        if self._done:
            return
        self.cancel()
        self._on_expire()
