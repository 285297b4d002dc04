"""The ordered log of what the bot did to the sandbox, and waiting on it without polling.

Every REST call that changes something (a message sent, a reaction, a thread opened,
...) becomes one :class:`Action` with a sequence number. Tests and the demo wait for the
action they expect with :meth:`ActionLog.wait_for`, which wakes on each new record
through an :class:`asyncio.Condition`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

ActionKind = Literal[
    "message_sent",
    "message_edited",
    "message_deleted",
    "reaction",
    "reaction_removed",
    "thread_created",
    "typing",
    "channel_updated",
]
ACTION_KINDS: frozenset[str] = frozenset(get_args(ActionKind))


@dataclass(frozen=True)
class Action:
    """One thing the bot did. ``payload`` is the Discord object it produced (message, thread, ...)."""

    seq: int
    kind: ActionKind
    channel_id: str
    message_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0

    @property
    def content(self) -> str:
        """The message text of a ``message_sent``/``message_edited`` action ("" otherwise)."""
        return str(self.payload.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or [])

    @property
    def text(self) -> str:
        """Content plus every embed description: what a reader of the channel would see."""
        parts = [self.content] if self.content else []
        parts += [str(e.get("description") or "") for e in self.embeds]
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "payload": self.payload,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        kind = data["kind"]
        if kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {kind!r}")
        return cls(
            seq=int(data["seq"]),
            kind=cast(ActionKind, kind),
            channel_id=str(data["channel_id"]),
            message_id=data.get("message_id"),
            payload=dict(data.get("payload") or {}),
            at=float(data.get("at") or 0.0),
        )


class ActionLog:
    def __init__(self) -> None:
        self._actions: list[Action] = []
        self._changed = asyncio.Condition()

    @property
    def last_seq(self) -> int:
        return self._actions[-1].seq if self._actions else 0

    def snapshot(self, after: int = 0) -> list[Action]:
        """Actions with ``seq > after``, oldest first."""
        # seq n lives at index n - 1: the log is append-only and numbered from 1.
        return self._actions[max(0, after) :]

    async def record(
        self,
        kind: ActionKind,
        channel_id: str,
        message_id: str | None = None,
        payload: dict[str, Any] | None = None,
        *,
        at: float = 0.0,
    ) -> Action:
        async with self._changed:
            action = Action(len(self._actions) + 1, kind, channel_id, message_id, dict(payload or {}), at)
            self._actions.append(action)
            self._changed.notify_all()
        return action

    def find(self, predicate: Callable[[Action], bool], after: int = 0) -> Action | None:
        return next((a for a in self.snapshot(after) if predicate(a)), None)

    async def wait_for(
        self, predicate: Callable[[Action], bool] = lambda _a: True, timeout: float = 5.0, *, after: int = 0
    ) -> Action:
        """The first action after ``after`` matching ``predicate``, waiting for it if needed.

        Actions already in the log count, so a caller cannot miss one that happened
        between its trigger and its wait; pass ``after=log.last_seq`` to see only new ones.
        Raises :class:`TimeoutError` naming the last few actions, to make failures readable.
        """
        found: list[Action] = []

        def ready() -> bool:
            hit = self.find(predicate, after)
            if hit is not None:
                found.append(hit)
            return hit is not None

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(ready)
        except TimeoutError:
            recent = ", ".join(f"#{a.seq} {a.kind} in {a.channel_id}" for a in self._actions[-5:]) or "none"
            raise TimeoutError(f"no matching sandbox action within {timeout}s (last actions: {recent})") from None
        return found[0]
