"""Per-user message rate limits (``rateLimitPerUser``): a sliding window of 60 seconds.

Each (project, user) pair keeps the times of its accepted messages within the window.
A refused message is not counted, so a user who keeps trying is not locked out for
longer. Windows that empty are dropped, and every window is swept at most once per
window length, so memory stays proportional to the users active in the last minute or
two. The gateway checks after ``!`` commands (which MPG never counts) and before
anything is queued for claude.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from mpg_tui.core.clock import Clock

WINDOW_S = 60.0


def rate_limited_text(retry_after_s: int) -> str:
    """MPG's reply to a user over the limit."""
    return f"You're sending messages too quickly. Please wait {retry_after_s}s before trying again."


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0
    """Whole seconds until the oldest counted message leaves the window (0 when allowed)."""

    @property
    def reply(self) -> str | None:
        """What to tell the user, or None when the message may go through."""
        return None if self.allowed else rate_limited_text(self.retry_after_s)


class RateLimiter:
    def __init__(self, clock: Clock, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"rate window must be positive, got {window_s}")
        self._clock = clock
        self._window = window_s
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._last_sweep = clock.monotonic()

    def check(self, project_key: str, user_id: str, limit: int | None) -> RateDecision:
        """Count a message from ``user_id`` in ``project_key`` unless ``limit`` is already reached.

        ``limit`` is the project's ``rateLimitPerUser``; None (or below 1) means no limit,
        and nothing is recorded.
        """
        if limit is None or limit < 1:
            return RateDecision(allowed=True)
        now = self._clock.monotonic()
        self._sweep(now)
        key = (project_key, user_id)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        self._prune(hits, now)
        if len(hits) >= limit:
            wait = self._window - (now - hits[0])
            return RateDecision(allowed=False, retry_after_s=max(1, math.ceil(wait)))
        hits.append(now)
        return RateDecision(allowed=True)

    def reset(self, project_key: str | None = None) -> None:
        """Forget counted messages: of one project, or all (a config reload changed limits)."""
        if project_key is None:
            self._hits.clear()
            return
        for key in [k for k in self._hits if k[0] == project_key]:
            del self._hits[key]

    def __len__(self) -> int:
        """How many (project, user) windows are held in memory."""
        return len(self._hits)

    def _prune(self, hits: deque[float], now: float) -> None:
        while hits and now - hits[0] >= self._window:
            hits.popleft()

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self._window:
            return
        self._last_sweep = now
        for key, hits in list(self._hits.items()):
            self._prune(hits, now)
            if not hits:
                del self._hits[key]
