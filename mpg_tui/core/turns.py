"""Per-thread state of agent chains: the handoff turn counter and the sticky last agent.

Both are kept in memory only (as in MPG) and bounded: each remembers at most
``max_threads`` threads and forgets the least recently used one first, so a long-running
gateway does not grow with every thread it has ever seen.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

DEFAULT_MAX_THREADS = 10_000

V = TypeVar("V")


def turn_limit_text(max_turns: int) -> str:
    """MPG's notice when a chain is stopped by ``maxTurnsPerAgent``."""
    return f"⚠️ Agent turn limit reached ({max_turns}) — send a message to reset."


class _RecentMap(Generic[V]):
    """A dict that keeps only the ``capacity`` most recently written keys."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def put(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class TurnCounter:
    """Counts automatic handoffs per thread; a human message resets the count.

    ``maxTurnsPerAgent`` is the number of automatic handoffs a chain may make (the
    README's "max automatic handoffs in a single agent chain"): with 5, five handoffs
    run and a sixth is refused. (MPG's own loop counted before checking and so ran one
    fewer than configured.)
    """

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        self._turns: _RecentMap[int] = _RecentMap(max_threads)

    def turns(self, thread_id: str) -> int:
        return self._turns.get(thread_id) or 0

    def try_take(self, thread_id: str, max_turns: int) -> bool:
        """Count one more handoff if the limit allows it; False means the chain must stop."""
        used = self.turns(thread_id)
        if used >= max_turns:
            return False
        self._turns.put(thread_id, used + 1)
        return True

    def reset(self, thread_id: str) -> None:
        """A human posted in the thread: the next chain starts from zero."""
        self._turns.pop(thread_id)

    def __len__(self) -> int:
        return len(self._turns)


class StickyAgents:
    """The last agent that answered in each thread, for plain follow-up messages.

    The gateway records every agent that answers, including the targets of handoffs, and
    forgets a thread when its sessions are killed.
    """

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        self._last: _RecentMap[str] = _RecentMap(max_threads)

    def get(self, thread_id: str) -> str | None:
        return self._last.get(thread_id)

    def set(self, thread_id: str, agent: str) -> None:
        self._last.put(thread_id, agent.lower())

    def forget(self, thread_id: str) -> None:
        self._last.pop(thread_id)

    def __len__(self) -> int:
        return len(self._last)
