"""What goes alongside a turn instead of ahead of it: the journal's "running", the 👀 and typing.

A turn starts first (claude's spawn, or the line written to a warm claude); these chat
calls and this bookkeeping only follow, once the turn has started, queued or been held.
Its ``on_started`` runs on the session's worker right before the spawn, with no await in
between: what it schedules here runs on the loop's next pass, after the spawn, instead
of taking the loop ahead of it. Each chat call costs a round trip and as much CPU again
in discord.py; ahead of the spawn they were most of the gateway's added latency.

The message itself was claimed before anything was said or done about it. Its row is
written by the journal's next write: here, "queued" when the turn waits, "running" right
after the spawn, each with the session that answers it, and always before the 👀, so an
acknowledgement never acknowledges what the journal lacks. Until then the message is
"received", which a restarted gateway runs again exactly as it would a queued one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from mpg_tui.core.api import MessageState
from mpg_tui.core.embeds import EYES
from mpg_tui.core.journal import Journal
from mpg_tui.core.ports import ChatError, ChatPort, InboundMessage

Spawn = Callable[[Coroutine[Any, Any, None]], object]


async def react(chat: ChatPort, msg: InboundMessage) -> None:
    """Put 👀 on ``msg``; a failure (message gone, no permission) changes nothing else."""
    with contextlib.suppress(ChatError):
        await chat.react(msg.channel_id, msg.id, EYES)


class Alongside:
    """One turn's companions: the typing indicator in its thread, the 👀 on its message, its journal state.

    ``message_id`` is the journal's message the turn answers (marked running when it
    starts); ``react_to`` the message to acknowledge with 👀 once the turn is under way
    (a message in a thread: one that opens a thread was acknowledged before the thread,
    as MPG does). ``spawn`` runs work in the background, owned by the caller.
    """

    def __init__(
        self,
        chat: ChatPort,
        journal: Journal,
        thread_id: str,
        *,
        spawn: Spawn,
        message_id: str | None = None,
        session_key: str | None = None,
        react_to: InboundMessage | None = None,
    ) -> None:
        self._chat = chat
        self._journal = journal
        self._thread_id = thread_id
        self._spawn = spawn
        self._message_id = message_id
        self._session_key = session_key
        self._react_to = react_to
        self._queued = False
        self._begun = False
        self._done = asyncio.Event()

    def started(self) -> None:
        """The turn is starting: its spawn follows at once, the journal's "running" right after
        it, then the 👀 (scheduled in that order)."""
        if self._message_id is not None:
            asyncio.get_running_loop().call_soon(self._mark, "running")
        self._accompany()

    def waiting(self) -> None:
        """The turn is queued or held: the journal says so, the thread sees typing, the message its 👀."""
        if self._message_id is not None and not self._queued:
            self._queued = True
            self._mark("queued")
        self._accompany()

    def _mark(self, state: MessageState) -> None:
        assert self._message_id is not None
        self._journal.mark(self._message_id, state, thread_id=self._thread_id, session_key=self._session_key)

    def _accompany(self) -> None:
        if self._begun or self._done.is_set():
            return
        self._begun = True
        if self._react_to is not None:
            self._spawn(react(self._chat, self._react_to))
        self._spawn(self._keep_typing())

    def finish(self) -> None:
        """The turn is over: typing stops (without waiting for it); a message never started is seen all the same."""
        if not self._begun and self._react_to is not None:
            self._begun = True
            self._journal.write_claims()
            self._spawn(react(self._chat, self._react_to))
        self._done.set()

    async def _keep_typing(self) -> None:
        if self._done.is_set():
            return  # over before this got its turn on the loop: no indicator after the reply
        async with self._chat.typing(self._thread_id):
            await self._done.wait()
