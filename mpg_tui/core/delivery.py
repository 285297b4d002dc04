"""Posting a reply in a thread: agent embeds or 2000-character chunks, and where to go if the thread refuses.

A thread can be locked, deleted or closed to the bot while claude works on it; the answer
then goes to the thread's channel, led by a link to the thread, rather than being lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mpg_tui.config import Agent
from mpg_tui.core.chunking import chunk_text
from mpg_tui.core.embeds import agent_embeds
from mpg_tui.core.ports import ChatError, ChatPort, Embed

log = logging.getLogger(__name__)

THREAD_REFUSED_STATUSES = frozenset({403, 404})
"""Statuses with which a thread refuses a post (locked, deleted, closed to the bot): post in its channel."""


class Delivery:
    """Posts through the chat port; chat failures are logged, never raised."""

    def __init__(self, chat: Callable[[], ChatPort], *, on_notice: Callable[[str, str], None] | None = None) -> None:
        self._chat = chat
        self._on_notice = on_notice
        """Told of every line of the gateway's own (``send``), for conversation views."""

    async def reply(self, thread_id: str, agent: Agent | None, text: str, *, parent: str | None = None) -> int:
        """Post claude's reply (agent embeds, or plain chunks); returns how many messages it took."""
        if agent is not None:
            embeds = agent_embeds(agent, text)
            for embed in embeds:
                await self.deliver(thread_id, None, embed, parent)
            return len(embeds)
        chunks = chunk_text(text)
        for chunk in chunks:
            await self.deliver(thread_id, chunk, None, parent)
        return len(chunks)

    async def send(self, channel_id: str, text: str, *, parent: str | None = None) -> None:
        if self._on_notice is not None:
            self._on_notice(channel_id, text)
        await self.deliver(channel_id, text, None, parent)

    async def deliver(self, channel_id: str, text: str | None, embed: Embed | None, parent: str | None) -> None:
        """Post in ``channel_id``; when that is a thread that refuses posts, post in ``parent`` instead.

        A thread can be locked, deleted or closed to the bot while claude works on it; the
        answer then goes to the thread's channel, led by a link to the thread, rather than
        being lost. Other failures are logged: the run's result is never lost for the rest.
        """
        try:
            await self._chat().send(channel_id, text, embed=embed)
            return
        except ChatError as exc:
            if parent is None or parent == channel_id or exc.status not in THREAD_REFUSED_STATUSES:
                log.warning("could not post in %s: %s", channel_id, exc)
                return
            log.warning("could not post in thread %s (%s); posting in its channel %s", channel_id, exc, parent)
        link = f"<#{channel_id}>"
        try:
            if embed is not None:
                await self._chat().send(parent, link, embed=embed)
            else:
                for piece in chunk_text(f"{link} {text or ''}"):
                    await self._chat().send(parent, piece)
        except ChatError as exc:
            log.warning("could not post in %s either: %s", parent, exc)
